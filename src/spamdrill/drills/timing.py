"""Time compression, sans-IO. Scenarios state their timings in *production* seconds (what
the field report ran: ``spamc -t 100``, maildrop's 300 s). A drill runs them compressed by
``scale`` (production seconds per drill second; default 100/3, so ``-t 100`` runs as ``-t 3``
and the 300 s budget as 9 s). Whole-second values are rounded and never below 1 s.

What does not compress (``UNCOMPRESSED``) changes what a compressed drill means wherever it
matters: a drill whose outcome is a count of scans that fit in a timeout runs at production
timings instead (``[timing] compress = false``), because 33x compression would mean 33x
fewer scans fit. Every result states its scale and why.

Placeholders in spamc args: ``{t:100}`` becomes the scaled value of 100 s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_SCALE = 100 / 3
MAILDROP_BUDGET_S = 300.0  # maildrop/globaltimer.C, Debian's --enable-global-timeout
UNCOMPRESSED = ("spamc's --retry-sleep (whole seconds, 1 s by default)", "scan time",
                "process start-up",
                "the kernel's TCP timers (a dropped SYN is sent again after 1 s, then 3 s)")
SPAMD_TIME_KEYS = frozenset({"timeout_tcp", "timeout_child", "rbl_timeout"})
_PLACEHOLDER = re.compile(r"\{t:(\d+(?:\.\d+)?)\}")
_ANY_BRACE = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Scale:
    """A drill's time compression, ``factor`` production seconds per drill second: every
    production value a drill turns into drill time goes through here, so what compresses
    (and how it rounds) is decided once."""

    factor: float = DEFAULT_SCALE

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"a time scale must be positive, got {self.factor}")

    def seconds(self, production_s: float) -> float:
        """A duration in drill seconds."""
        return production_s / self.factor

    def maybe(self, production_s: float | None) -> float | None:
        return None if production_s is None else production_s / self.factor

    def rate(self, per_production_s: float) -> float:
        """A rate (per second, bytes or messages) in drill time."""
        return per_production_s * self.factor

    def whole_seconds(self, production_s: float) -> int:
        """A whole-second flag value (spamc and spamd take integers), >= 1."""
        return max(1, round(production_s / self.factor))

    def expand(self, args: list[str]) -> list[str]:
        """spamc args with each ``{t:N}`` as N production seconds in whole drill seconds."""
        return [_PLACEHOLDER.sub(lambda m: str(self.whole_seconds(float(m.group(1)))), a)
                for a in args]

    def spamd(self, settings: dict[str, object]) -> dict[str, object]:
        """A ``[lab.spamd]`` table with its time keys (``SPAMD_TIME_KEYS``) scaled."""
        return {k: self.whole_seconds(float(v))  # type: ignore[arg-type]
                if k in SPAMD_TIME_KEYS else v for k, v in settings.items()}


def expand_args(args: list[str], scale: float) -> list[str]:
    """``Scale.expand``, for callers holding the factor alone (the command line)."""
    return Scale(scale).expand(args)


def bad_placeholders(args: list[str] | tuple[str, ...]) -> list[str]:
    """Brace expressions that are not ``{t:N}``: a typo would reach spamc verbatim."""
    return [m.group(0) for a in args for m in _ANY_BRACE.finditer(a)
            if not _PLACEHOLDER.fullmatch(m.group(0))]


# production seconds: spamc's timeouts, and spamdrill-spamc's --deadline (a deadline left
# at 270 s while -t and maildrop's timer are compressed would never fire)
_TIMED_FLAGS = {"-t", "--timeout", "-n", "--connect-timeout", "--deadline"}


def as_placeholders(args: list[str] | tuple[str, ...]) -> list[str]:
    """A system's own spamc flags made scalable: the values of -t and -n (production
    seconds) become ``{t:N}``; the rest stays as it is (``--retry-sleep`` is whole
    seconds spamc sleeps, which do not compress)."""
    out: list[str] = []
    timed = False
    for a in args:
        name, eq, value = a.partition("=")
        if eq and name in _TIMED_FLAGS and value.isdigit():
            out.append(f"{name}={{t:{value}}}")
        elif timed and a.isdigit():
            out.append(f"{{t:{a}}}")
        else:
            out.append(a)
        timed = a in _TIMED_FLAGS
    return out
