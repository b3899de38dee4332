"""Postfix's main.cf and master.cf, read the way Postfix reads them (sans-IO).

From Postfix 3.7's sources and manuals (``util/readlline.c``, ``util/mac_expand.c``,
``global/mail_conf.c``, ``postconf(5)``, ``master(5)``), and checked against
``postconf -c DIR -h``/``-hx``/``-M`` on the same files (tests/test_system_postfix.py):

- a logical line starts with non-whitespace; a line starting with whitespace continues it
  (joined with one space, as ``postconf -h`` shows); empty lines, whitespace-only lines and
  lines whose first non-whitespace character is ``#`` are skipped, also between a line and
  its continuation; ``name = value``, surrounding whitespace stripped; a later definition
  of a name wins.
- values expand ``$name``, ``${name}``, ``$(name)``, ``${name?text}`` (text when name is
  non-empty, else nothing), ``${name:text}`` (text when empty, else nothing),
  ``${name?{t}:{f}}``, and ``$$``; an
  undefined name expands to nothing; expansion is recursive.
- time values are a number and an optional unit s, m, h, d or w (``conv_time``).
- master.cf: service, type, private, unpriv, chroot, wakeup, maxproc, command and its
  arguments; ``-o name=value`` (or ``-o { name = value }``) overrides main.cf for that
  service; pipe(8)'s ``argv=`` takes the rest of the line, split on whitespace (no shell
  quoting; ``{ ... }`` groups words with spaces).

Defaults are Postfix 3.7.11's (``postconf -d``, shipped in ``data/``) less the host's own
(``myhostname``, ``mydomain``...): those, and names Postfix does not know, expand to
nothing when main.cf does not set them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from spamdrill.system.values import Sourced, at, bad

VERSION = "Postfix 3.7"
DEFAULTS = {
    "command_time_limit": "1000s",
    "default_process_limit": "100",
    "default_destination_recipient_limit": "50",
    "default_destination_concurrency_limit": "20",
    "default_transport": "smtp",
    "local_transport": "local:$myhostname",
    "virtual_transport": "virtual",
    "mailbox_transport": "",
    "fallback_transport": "",
    "mailbox_command": "",
    "transport_maps": "",
    "maillog_file": "",
    "mail_name": "Postfix",
    "mail_version": "3.7.11",
}
# per-transport parameters and the parameter they default to
TRANSPORT_DEFAULTS = {
    "time_limit": "$command_time_limit",
    "destination_recipient_limit": "$default_destination_recipient_limit",
    "destination_concurrency_limit": "$default_destination_concurrency_limit",
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class MainCf:
    path: str
    params: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (raw, line)
    services: tuple[str, ...] = ()  # master.cf service names: <service>_* defaults apply

    def raw(self, name: str) -> Sourced[str] | None:
        """The value as written (``postconf -h``), or Postfix's default."""
        if name in self.params:
            value, line = self.params[name]
            return Sourced(value, at(self.path, line))
        if name in DEFAULTS:
            return Sourced(DEFAULTS[name], f"default of {VERSION}")
        shipped = all_defaults().get(name)
        if shipped is not None:
            return Sourced(shipped, f"default of {VERSION}")
        for key, default in TRANSPORT_DEFAULTS.items():
            if name.endswith("_" + key) and name[: -len(key) - 1] in self.services:
                return Sourced(default, f"default of {VERSION}")
        return None

    def expanded(self, name: str, overrides: dict[str, tuple[str, str]] | None = None
                 ) -> Sourced[str] | None:
        """The value with every ``$name`` expanded (``postconf -hx``); ``overrides``: a
        master.cf service's ``-o`` settings (name -> (value, where))."""
        overrides = overrides or {}
        if name in overrides:
            value, where = overrides[name]
            return Sourced(expand(value, self._lookup(overrides), where), where)
        raw = self.raw(name)
        if raw is None:
            return None
        return Sourced(expand(raw.value, self._lookup(overrides), raw.source), raw.source)

    def _lookup(self, overrides: dict[str, tuple[str, str]]) -> _Lookup:
        table = {n: v for n, (v, _) in self.params.items()}
        return _Lookup(self, table, {n: v for n, (v, _) in overrides.items()})

    def time(self, name: str, overrides: dict[str, tuple[str, str]] | None = None
             ) -> Sourced[float] | None:
        value = self.expanded(name, overrides)
        if value is None:
            return None
        return Sourced(time_value(value.value, value.source, name), value.source)

    def integer(self, name: str, overrides: dict[str, tuple[str, str]] | None = None
                ) -> Sourced[int] | None:
        value = self.expanded(name, overrides)
        if value is None:
            return None
        if not value.value.strip().isdigit():
            raise bad(value.source, f"{name} = {value.value!r} is not a whole number")
        return Sourced(int(value.value), value.source)


class _Lookup(dict[str, str]):
    """Parameter names for ``expand``: overrides, then main.cf, then defaults."""

    def __init__(self, cf: MainCf, table: dict[str, str], overrides: dict[str, str]) -> None:
        super().__init__({**table, **overrides})
        self.cf = cf

    def __missing__(self, name: str) -> str:
        raw = self.cf.raw(name)
        if raw is None:
            raise KeyError(name)
        return raw.value


@functools.cache
def all_defaults() -> dict[str, str]:
    """Every default ``postconf -d`` printed for Postfix 3.7.11 on Debian 12 (a shipped
    table, less the host-dependent ones: myhostname, mydomain, mynetworks...)."""
    text = (Path(__file__).parent / "data" / "postfix-3.7-defaults.txt").read_text()
    out = {}
    for line in text.splitlines():
        name, eq, value = line.partition(" =")
        if eq and not line.startswith("#"):
            out[name] = value.strip()
    return out


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line, as ``readllines`` joins them."""
    out: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace() and out:
            out[-1] = (out[-1][0], out[-1][1].rstrip() + " " + line.strip())
        elif line[0].isspace():
            continue  # postconf ignores a continuation with nothing to continue
        else:
            out.append((n, line))
    return out


def parse_main_cf(text: str, path: str, services: tuple[str, ...] = ()) -> MainCf:
    params: dict[str, tuple[str, int]] = {}
    for n, line in logical_lines(text):
        name, eq, value = line.partition("=")
        name = name.strip()
        if not eq or not _NAME.fullmatch(name):
            raise bad(at(path, n), f"not a 'name = value' line: {line.strip()[:60]!r}",
                      "main.cf lines are 'name = value'; continuation lines start with "
                      "whitespace")
        params[name] = (value.strip(), n)
    return MainCf(path, params, services)


def expand(value: str, table: dict[str, str], where: str, depth: int = 0) -> str:
    """``mac_expand``: ``$name``, ``${name}``, ``$(name)``, conditionals, ``$$``."""
    if depth > 100:
        raise bad(where, "parameter expansion does not end (a loop of $names)")
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        text, i = _one(value, i + 1, table, where, depth)
        out.append(text)
    return "".join(out)


def _one(value: str, i: int, table: dict[str, str], where: str, depth: int
         ) -> tuple[str, int]:
    """Expand the reference after a ``$`` at ``i``; returns (text, next index)."""
    if value[i:i + 1] == "$":
        return "$", i + 1
    if value[i:i + 1] in ("{", "("):
        close = "}" if value[i] == "{" else ")"
        end = _matching(value, i, close)
        if end < 0:
            raise bad(where, f"unbalanced {value[i]} in {value!r}")
        inner = value[i + 1:end]
        m = _NAME.match(inner)
        if not m:
            raise bad(where, f"bad parameter reference ${value[i:end + 1]}")
        name, rest = m.group(), inner[m.end():]
        return _conditional(name, rest, table, where, depth), end + 1
    m = _NAME.match(value, i)
    if not m:
        return "$", i  # a lone $ stays as it is
    return _lookup(m.group(), table, where, depth), m.end()


def _conditional(name: str, rest: str, table: dict[str, str], where: str,
                 depth: int) -> str:
    if not rest:
        return _lookup(name, table, where, depth)
    if rest[0] not in "?:":
        raise bad(where, f"unsupported expansion ${{{name}{rest}}}",
                  "spamdrill reads $name, ${name}, $(name), ${name?text}, ${name:text}")
    value = _lookup(name, table, where, depth)
    when_set, when_empty = rest[1:], ""
    m = re.fullmatch(r"\{(.*)\}:\{(.*)\}", rest[1:], re.S) if rest[0] == "?" else None
    if m:
        when_set, when_empty = m.group(1), m.group(2)
        chosen = when_set if value else when_empty
    elif rest[0] == "?":
        chosen = when_set if value else ""
    else:  # ${name:text}: the text when name is empty, else nothing (mac_expand.c)
        chosen = "" if value else rest[1:]
    return expand(chosen, table, where, depth + 1)


def _lookup(name: str, table: dict[str, str], where: str, depth: int) -> str:
    try:
        raw = table[name]
    except KeyError:
        return ""  # Postfix warns "undefined parameter" and expands to nothing
    return expand(raw, table, where, depth + 1)


def _matching(value: str, i: int, close: str) -> int:
    opening, level = value[i], 0
    for j in range(i, len(value)):
        if value[j] == opening:
            level += 1
        elif value[j] == close:
            level -= 1
            if level == 0:
                return j
    return -1


def time_value(value: str, where: str, name: str = "") -> float:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", value)
    if not m:
        label = f"{name} = " if name else ""
        raise bad(where, f"{label}{value!r} is not a Postfix time value",
                  "a whole number with an optional unit s, m, h, d or w, e.g. 300s or 5m")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass(frozen=True)
class MasterEntry:
    """One master.cf service (``postconf -M``'s fields)."""

    service: str
    type: str
    private: str
    unpriv: str
    chroot: str
    wakeup: str
    maxproc: str
    command: str
    args: tuple[str, ...]
    line: int
    path: str
    options: dict[str, tuple[str, str]] = field(default_factory=dict)  # -o name=value

    @property
    def where(self) -> str:
        return at(self.path, self.line)

    def normalised(self) -> str:
        """As ``postconf -M`` prints it, for comparison."""
        return " ".join([self.service, self.type, self.private, self.unpriv, self.chroot,
                         self.wakeup, self.maxproc, self.command, *self.args])

    def pipe_argv(self) -> list[str]:
        """pipe(8)'s ``argv=``: the rest of the line, split on whitespace."""
        words: list[str] = []
        for j, arg in enumerate(self.args):
            if arg.startswith("argv="):
                words = [arg[5:], *self.args[j + 1:]]
                break
        return _braced([w for w in words if w])

    def attribute(self, name: str) -> str | None:
        """A pipe(8) attribute before ``argv=`` (``flags=``, ``user=``)."""
        for arg in self.args:
            if arg.startswith("argv="):
                break
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
        return None


def _braced(words: list[str]) -> list[str]:
    """Postfix 3.0's ``{ word with spaces }`` grouping in pipe(8) arguments."""
    out: list[str] = []
    group: list[str] | None = None
    for w in words:
        if group is None and w == "{":
            group = []
        elif group is not None and w == "}":
            out.append(" ".join(group))
            group = None
        elif group is not None:
            group.append(w)
        else:
            out.append(w)
    return out


def parse_master_cf(text: str, path: str) -> list[MasterEntry]:
    entries = []
    for n, line in logical_lines(text):
        fields = line.split()
        if len(fields) < 8:
            raise bad(at(path, n), f"a master.cf entry has 8 fields or more, got "
                      f"{len(fields)}: {line.strip()[:60]!r}",
                      "service type private unpriv chroot wakeup maxproc command")
        args, options = _options(fields[8:], at(path, n))
        entries.append(MasterEntry(fields[0], fields[1], fields[2], fields[3], fields[4],
                                   fields[5], fields[6], fields[7], tuple(args), n, path,
                                   options))
    return entries


def _options(words: list[str], where: str) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Split ``-o name=value`` overrides from the command's own arguments; the arguments
    keep them too (``postconf -M`` prints them)."""
    options: dict[str, tuple[str, str]] = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w == "-o" and i + 1 < len(words):
            if words[i + 1] == "{":
                end = words.index("}", i + 2) if "}" in words[i + 2:] else len(words)
                setting = " ".join(words[i + 2:end])
                i = end + 1
            else:
                setting, i = words[i + 1], i + 2
        elif w.startswith("-o") and len(w) > 2 and "=" in w:
            setting, i = w[2:], i + 1
        else:
            if w.startswith("argv="):
                break  # pipe(8): everything after argv= is the command
            i += 1
            continue
        name, eq, value = setting.partition("=")
        if not eq:
            raise bad(where, f"-o {setting!r} is not name=value")
        options[name.strip()] = (value.strip(), f"{where} (-o {name.strip()})")
    return words, options
