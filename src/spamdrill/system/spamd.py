"""spamd's command line as the system starts it (sans-IO).

- Debian's ``/etc/default/spamd``: shell assignments; ``OPTIONS`` holds the flags.
- The systemd unit (``spamd.service``, with drop-ins): ``EnvironmentFile=``,
  ``Environment=``, the last ``ExecStart=`` (an empty one resets the list). In
  ``ExecStart`` ``$NAME`` splits into words and ``${NAME}`` stays one (systemd.service(5)).
- spamd 4.0.1 reads its flags with Perl's Getopt::Long, ``bundling`` configured
  (``/usr/sbin/spamd``): ``--name=value`` or ``--name value``, unique abbreviations of long
  names, ``--no-name`` for negatable ones, single-letter flags bundled after one ``-``
  (``-m5``); an integer flag's value must be an integer; anything else is
  "Unknown option" and spamd prints its usage and exits.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from spamdrill.system.values import Sourced, at, bad

VERSION = "spamd 4.0.1"
# Getopt::Long specs from spamd 4.0.1's GetOptions call: names|aliases, then = or : type
SPECS = (
    "allow-tell", "allowed-ips|A=s", "configpath|C=s", "c", "create-prefs!", "daemonize!",
    "debug|D:s", "default-user|U=s", "d", "groupname|g=s", "helper-home-dir|H:s",
    "help|h", "4|ipv4only|ipv4-only|ipv4", "6", "ldap-config!",
    "listen|listen-ip|ip-address|i:s", "local!", "L", "l", "round-robin!",
    "min-children=i", "max-children|m=i", "min-spare=i", "max-spare=i",
    "max-conn-per-child=i", "nouser-config|x", "paranoid!", "P", "pidfile|r=s",
    "port|p=s", "Q", "q", "server-cert=s", "server-key=s", "setuid-with-ldap",
    "setuid-with-sql", "siteconfigpath=s", "pre=s", "cf=s", "socketgroup=s",
    "socketmode=s", "socketowner=s", "socketpath=s", "sql-config!", "ssl", "ssl-verify",
    "ssl-ca-file=s", "ssl-ca-path=s", "ssl-port=s", "syslog-socket=s", "syslog|s=s",
    "log-timestamp-fmt:s", "timeout-tcp|T=i", "timeout-child|t=i", "timing",
    "user-config", "username|u=s", "version|V", "virtual-config-dir=s", "v", "vpopmail!",
    "F:i", "add-from!", "stop-at-threshold|S",
)
DEFAULTS = {"max-children": 5, "min-children": 1, "min-spare": 1, "max-spare": 2,
            "max-conn-per-child": 200, "timeout-tcp": 30, "timeout-child": 300}
ALIASES = {"q": "sql-config", "Q": "setuid-with-sql", "c": "create-prefs", "d": "daemonize",
           "L": "local", "l": "allow-tell", "P": "paranoid", "v": "vpopmail"}


@dataclass(frozen=True)
class _Spec:
    name: str  # the first name: the key of the value
    names: tuple[str, ...]
    arg: str  # "" | "=s" | "=i" | ":s" | ":i"
    negatable: bool


def _specs() -> list[_Spec]:
    out = []
    for spec in SPECS:
        m = re.fullmatch(r"([^=:!]+)(!?)([=:][si])?", spec)
        assert m
        names = tuple(m.group(1).split("|"))
        out.append(_Spec(ALIASES.get(names[0], names[0]), names, m.group(3) or "",
                         bool(m.group(2))))
    return out


_SPECS = _specs()
_LONG = {n: s for s in _SPECS for n in s.names if len(n) > 1}
_SHORT = {n: s for s in _SPECS for n in s.names if len(n) == 1}


@dataclass
class SpamdCommand:
    """spamd's options: name -> (value, where); values are str, int or bool (lists for
    repeatable ones, joined)."""

    options: dict[str, Sourced[object]] = field(default_factory=dict)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def number(self, name: str) -> Sourced[int]:
        if name in self.options:
            v = self.options[name]
            return Sourced(int(v.value), v.source)  # type: ignore[call-overload]
        return Sourced(DEFAULTS[name], f"default of {VERSION}")

    def flag(self, name: str) -> bool:
        return bool(name in self.options and self.options[name].value)

    def text(self, name: str) -> Sourced[str] | None:
        v = self.options.get(name)
        return None if v is None else Sourced(str(v.value), v.source)


def parse_options(sourced: list[tuple[str, str]], source: str = "") -> SpamdCommand:
    """spamd's flags, each (word, where it was read), as Getopt::Long (bundling) reads
    them."""
    cmd = SpamdCommand(source=source)
    words = [w for w, _ in sourced]
    i = 0
    while i < len(words):
        w, where = sourced[i]
        if w == "--":
            break
        if w.startswith("--"):
            i = _long(cmd, words, i, where)
        elif w.startswith("-") and len(w) > 1:
            i = _bundle(cmd, words, i, where)
        else:
            cmd.notes.append(f"{where}: spamd ignores the word {w!r} (not a flag)")
            i += 1
    return cmd


def _long(cmd: SpamdCommand, words: list[str], i: int, where: str) -> int:
    body, eq, inline = words[i][2:].partition("=")
    spec, negated = _find(body, where)
    value: str | None = inline if eq else None
    i += 1
    if spec.arg.startswith("=") and value is None:
        if i >= len(words):
            raise bad(where, f"spamd: Option {body} requires an argument (spamd prints its "
                      "usage and exits)")
        value, i = words[i], i + 1
    elif spec.arg.startswith(":") and value is None and i < len(words) \
            and not words[i].startswith("-"):
        value, i = words[i], i + 1
    _store(cmd, spec, value, not negated, where, words[i - 1])
    return i


def _find(body: str, where: str) -> tuple[_Spec, bool]:
    if body in _LONG:
        return _LONG[body], False
    for prefix in ("no-", "no"):
        if body.startswith(prefix) and body[len(prefix):] in _LONG and \
                _LONG[body[len(prefix):]].negatable:
            return _LONG[body[len(prefix):]], True
    matches = {s.name: s for n, s in _LONG.items() if n.startswith(body)}
    if len(matches) == 1:
        return next(iter(matches.values())), False
    if len(matches) > 1:
        raise bad(where, f"spamd: Option {body} is ambiguous ({', '.join(sorted(matches))})")
    raise bad(where, f"spamd: Unknown option: {body} (spamd prints its usage and exits)",
              "its flags: spamd --help")


def _bundle(cmd: SpamdCommand, words: list[str], i: int, where: str) -> int:
    w = words[i]
    i += 1
    k = 1
    while k < len(w):
        letter = w[k]
        spec = _SHORT.get(letter)
        if spec is None:
            raise bad(where, f"spamd: Unknown option: {letter} (in {w!r}; spamd prints its "
                      "usage and exits)", "its flags: spamd --help")
        if spec.arg:
            value: str | None = w[k + 1:] or None
            if value is None and i < len(words) and (spec.arg.startswith("=") or
                                                     not words[i].startswith("-")):
                value, i = words[i], i + 1
            if value is None and spec.arg.startswith("="):
                raise bad(where, f"spamd: Option {letter} requires an argument")
            _store(cmd, spec, value, True, where, w)
            return i
        _store(cmd, spec, None, True, where, w)
        k += 1
    return i


def _store(cmd: SpamdCommand, spec: _Spec, value: str | None, on: bool, where: str,
           word: str) -> None:
    if spec.name in ("F", "add-from"):
        raise bad(where, f"spamd: {word} has been removed from spamd (it exits 2)")
    if spec.arg.endswith("i") and value is not None:
        if not re.fullmatch(r"[-+]?\d+", value):
            raise bad(where, f"spamd: Value {value!r} invalid for option {spec.name} "
                      "(number expected)", "a whole number")
        cmd.options[spec.name] = Sourced(int(value), where)
        return
    if spec.name in ("listen", "allowed-ips", "pre", "cf") and spec.name in cmd.options:
        value = f"{cmd.options[spec.name].value} {value or ''}".strip()
    cmd.options[spec.name] = Sourced(value if value is not None else on, where)


def shell_assignments(text: str, path: str) -> dict[str, Sourced[str]]:
    """``NAME=value`` lines of a shell or EnvironmentFile (``export`` allowed)."""
    out: dict[str, Sourced[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(("#", ";")):
            continue
        s = s.removeprefix("export ").strip()
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", s)
        if not m:
            continue
        try:
            words = shlex.split(m.group(2), comments=True)
        except ValueError as exc:
            raise bad(at(path, n), f"{m.group(1)}=…: {exc}", "quote it as a shell would")\
                from None
        out[m.group(1)] = Sourced(" ".join(words), at(path, n))
    return out


@dataclass
class Unit:
    """What spamdrill needs of a systemd service unit."""

    exec_start: Sourced[str] | None = None
    environment_files: list[tuple[str, bool]] = field(default_factory=list)  # (path, optional)
    environment: dict[str, Sourced[str]] = field(default_factory=dict)


def parse_unit(text: str, path: str, unit: Unit | None = None) -> Unit:
    """Read one unit file or drop-in into ``unit`` (later files override)."""
    unit = unit or Unit()
    section = ""
    for n, raw in _unit_lines(text):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]" or "=" not in line:
            continue
        key, _, value = (p.strip() for p in line.partition("="))
        where = at(path, n)
        if key == "ExecStart":
            unit.exec_start = Sourced(value, where) if value else None
        elif key == "EnvironmentFile":
            unit.environment_files.append((value.lstrip("-"), value.startswith("-")))
        elif key == "Environment":
            for word in shlex.split(value):
                name, _, v = word.partition("=")
                unit.environment[name] = Sourced(v, where)
    return unit


def _unit_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line), backslash continuations joined onto their first line."""
    out: list[tuple[int, str]] = []
    held: tuple[int, str] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        held = (held[0], held[1][:-1] + " " + line.strip()) if held else (n, line)
        if not held[1].endswith("\\"):
            out.append(held)
            held = None
    if held:
        out.append(held)
    return out


def exec_words(exec_start: str, env: dict[str, Sourced[str]], where: str
               ) -> list[tuple[str, str]]:
    """``ExecStart``'s words after systemd's substitution: ``$NAME`` splits on
    whitespace, ``${NAME}`` stays one word; each word with where it came from."""
    line = exec_start.lstrip("-@:+!")
    out: list[tuple[str, str]] = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            v = env.get(m.group(1))
            if v is not None:
                out += [(w, v.source) for w in v.value.split()]
            continue
        out.append((re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda mm: _env(env, mm), word), where))
    return out


def _env(env: dict[str, Sourced[str]], m: re.Match[str]) -> str:
    v = env.get(m.group(1) or m.group(2))
    return v.value if v else ""
