"""spamdrill-deliver's policy file: read and validated, each refusal a one-line
PolicyError. Only what a config file or a command-line setting needs: a delivery with
neither never imports this (``deliver.args.policy_for``). ``system.reader`` reads
spamdrill-deliver's deadline through it, as the wrapper does.

Every way a value could reach the delivery path as something it cannot use is refused
here: a deadline that is not finite or not bounded (NaN made poll() raise after maildrop
had delivered), a status of ``true`` (a bool is an int in Python), a rule key misspelt
(it would match everything), a regex too long or that ``re.compile`` refuses in any of its
ways, a file that is no regular file (a FIFO blocks open()), not UTF-8, or nested deeper
than tomllib's recursion allows.
"""

from __future__ import annotations

import posix as os  # as on the rest of the delivery path (run.py)

from spamdrill.proto.deliver_policy import (
    MAX_CONFIG_BYTES,
    MAX_DEADLINE,
    MAX_NAME,
    MAX_PATTERN,
    MAX_REASON,
    TRANSIENT_STATUSES,
    Policy,
    PolicyError,
    Rule,
    default_rules,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (~2 ms) per delivery
if TYPE_CHECKING:
    from os import PathLike
    from typing import Any

S_IFMT, S_IFREG = 0o170000, 0o100000  # <sys/stat.h>


def _dsn_ok(dsn: str) -> bool:
    parts = dsn.split(".")
    return (len(parts) == 3 and parts[0] in ("4", "5")
            and all(p.isdigit() and 1 <= len(p) <= 3 for p in parts[1:]))


def _show(value: object) -> str:
    """A value for an error message: short, one line (a 400-digit int stays readable)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        return "a number that large"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def read_config(path: str | PathLike[str]) -> dict[str, Any]:
    """The policy file's table. Opened without blocking (a FIFO would wait for a writer
    forever), only a regular file, at most 1 MiB, strict UTF-8, TOML."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if os.fstat(fd).st_mode & S_IFMT != S_IFREG:
            raise PolicyError(f"{path} is not a regular file")
        data = b""
        while chunk := os.read(fd, MAX_CONFIG_BYTES + 1 - len(data)):
            data += chunk
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise PolicyError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    import tomllib  # only when there is a file to read

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path} is not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise PolicyError(f"{path}: arrays or tables nested too deeply") from None
    except ValueError as exc:  # TOMLDecodeError, and ints past Python's digit limit
        raise PolicyError(f"{path} is not valid TOML: {_one_line(str(exc))}") from None


def load_policy(path: str | PathLike[str] | None,
                overrides: dict[str, Any] | None = None) -> Policy:
    """The one validator: the delivery path, ``--check-config`` and ``spamdrill budget
    --deliver-config`` all call this. ``path`` None means the built-in policy;
    ``overrides`` (the command line's ``deadline``, ``over_quota``) replace the file's
    settings, after the file has been found valid on its own. Raises PolicyError, whose
    text is one line."""
    if path is None and not overrides:
        return Policy()
    raw = read_config(path) if path is not None else {}
    if overrides:
        from_dict(raw)
        raw = {**raw, **overrides}
    return from_dict(raw)


def deadline_of(value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value <= MAX_DEADLINE):  # NaN fails every comparison
        raise PolicyError(f"deadline must be seconds above 0 and at most {MAX_DEADLINE:g} "
                          f"(keep it below Postfix's time limit), not {_show(value)}")
    return float(value)


KNOWN = ("deadline", "over_quota", "rule")
RULE_KEYS = ("action", "bounce_transient", "dsn", "name", "output", "reason", "status")


def from_dict(raw: dict[str, Any]) -> Policy:
    """Build a policy from the config file's table. Extra rules come before the defaults.

    ``deliver`` is not an action a rule may choose: only a real exit 0 is a delivery.
    """
    if not isinstance(raw, dict):
        raise PolicyError("the policy must be a table")
    unknown = sorted(str(k)[:40] for k in set(raw) - set(KNOWN))
    if unknown:
        raise PolicyError(f"unknown setting(s): {', '.join(unknown[:5])} "
                          f"(known: {', '.join(KNOWN)})")
    over_quota = raw.get("over_quota", "defer")
    if over_quota not in ("defer", "bounce"):
        raise PolicyError(f"over_quota must be 'defer' or 'bounce', not {_show(over_quota)}")
    deadline = deadline_of(raw.get("deadline", 600))
    tables = raw.get("rule", [])
    if not isinstance(tables, list):
        raise PolicyError("rule must be an array of tables: write each as [[rule]]")
    rules = [_rule(f"rule {i + 1}", r) for i, r in enumerate(tables)]
    return Policy(rules=rules + default_rules(over_quota), deadline=deadline)


def _rule(where: str, r: object) -> Rule:
    if not isinstance(r, dict):
        raise PolicyError(f"{where}: must be a table ([[rule]])")
    unknown = sorted(str(k)[:40] for k in set(r) - set(RULE_KEYS))
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown[:5])} "
                          f"(known: {', '.join(RULE_KEYS)})")
    action, dsn = r.get("action"), r.get("dsn", "")
    if action not in ("defer", "bounce"):
        raise PolicyError(f"{where}: action must be 'defer' or 'bounce'")
    if not isinstance(dsn, str) or not _dsn_ok(dsn) or (dsn[0] == "4") != (action == "defer"):
        raise PolicyError(f"{where}: dsn must be a string, 4.x.y for defer, 5.x.y for bounce")
    statuses = _statuses(where, r.get("status", []))
    _transient_ok(where, action, statuses, r.get("bounce_transient", False))
    rule = Rule(_text(where, "name", r.get("name", where), MAX_NAME), action, dsn,
                _text(where, "reason", r.get("reason", ""), MAX_REASON) or dsn, statuses,
                _pattern_source(where, r.get("output")))
    _compile(where, rule)
    return rule


def _statuses(where: str, value: object) -> frozenset[int]:
    # bool is an int in Python: status = [true] would silently mean status 1
    if not isinstance(value, list) or not all(
            type(s) is int and 1 <= s <= 255 for s in value):
        raise PolicyError(f"{where}: status must be a list of exit codes 1-255")
    return frozenset(value)


def _transient_ok(where: str, action: str, statuses: frozenset[int], mark: object) -> None:
    if not isinstance(mark, bool):
        raise PolicyError(f"{where}: bounce_transient must be true or false")
    if action != "bounce" or mark:
        return
    hit = sorted(statuses & TRANSIENT_STATUSES) if statuses else sorted(TRANSIENT_STATUSES)
    if hit:
        which = "any status, " if not statuses else ""
        raise PolicyError(
            f"{where}: bounces {which}{'/'.join(map(str, hit))}, which mean 'try again' "
            "(maildrop's timeout is 75); name other statuses, or set "
            "bounce_transient = true if you mean it")


def _text(where: str, key: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise PolicyError(f"{where}: {key} must be one line of text, at most {limit} "
                          "characters")
    return value


def _pattern_source(where: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_PATTERN:
        raise PolicyError(f"{where}: output must be a regex of at most {MAX_PATTERN} "
                          "characters")
    return value


def _compile(where: str, rule: Rule) -> None:
    import re  # not at the top: a file without regexes need not pay for it

    try:
        rule.pattern()
    except (re.error, OverflowError, RecursionError, ValueError, MemoryError) as exc:
        raise PolicyError(f"{where}: bad output regex: {_one_line(str(exc))}") from None
