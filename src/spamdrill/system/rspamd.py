"""rspamd's timeouts and workers from its configuration directory (sans-IO: file texts in,
values with their sources out), and Postfix's milter settings from main.cf.

rspamd reads ``/etc/rspamd/rspamd.conf``, which includes each shipped file and, after it,
``local.d/<file>`` (merged, priority 1) and ``override.d/<file>`` (priority 10): for a
single value, override.d wins over local.d, which wins over the shipped file
(https://rspamd.com/doc/faq.html#what-are-the-locald-and-overrided-directories). The
values read, and rspamd 3.4's own defaults where no file sets them:

- ``options.inc``: ``task_timeout`` (Debian ships 8 s: "must be larger than any internal
  timeout used"), ``soft_reject_on_timeout`` (false): past the task timeout rspamd answers
  with what it has (a partial verdict), or with soft reject
  (https://rspamd.com/doc/configuration/options.html);
- ``options.inc``'s ``dns`` section: ``timeout`` (1 s) and ``retransmits`` (5): a lookup
  of rspamd's resolver gives up after ``timeout`` x ``retransmits`` (measured: 5.0 s with
  Debian's; https://rspamd.com/doc/configuration/options.html, ``dns``);
- ``redis.conf`` (the common ``redis`` section): ``timeout``, 1 s by default
  (lualib/lua_redis.lua, ``timeout = 1.0``);
- ``worker-normal.inc``: ``count``, by default CPUs - 2 between 1 and 4 (cfg_utils.c);
- ``worker-proxy.inc``: ``milter`` and ``timeout`` (Debian ships ``milter = yes;
  timeout = 120s``: https://rspamd.com/doc/workers/rspamd_proxy.html).

UCL is read only as far as these need: ``key = value;`` (or ``key value;``, ``key:
value``) at the top of a file, ``#`` comments, nested sections skipped (but for the keys
of options.inc's ``dns`` section, read the same way within it); an ``.include``
of another file is not followed (Debian's are the local.d/override.d ones read here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from spamdrill.system.postfix import MainCf
from spamdrill.system.values import Sourced, at, bad

RSPAMD = "rspamd 3.4"
FILES = ("options.inc", "redis.conf", "worker-normal.inc", "worker-proxy.inc")
# the keys read from each file, with rspamd's own default where no file sets one
_KEY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|:)?\s*(.*?)\s*;?\s*$")
_TIME = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|min|m|h|d)?$")
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
               None: 1.0}
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _strip_comment(line: str) -> str:
    """The line without a ``#`` comment outside double quotes."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
    return line


def top_level(text: str, path: str) -> dict[str, Sourced[str]]:
    """The top-level ``key = value`` pairs of one UCL file (the last one wins, as UCL's
    own duplicate rule for a scalar), each with ``path:line``."""
    out: dict[str, Sourced[str]] = {}
    depth = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        opens, closes = line.count("{") + line.count("["), line.count("}") + line.count("]")
        if depth == 0 and not line.startswith(".") and opens == 0:
            m = _KEY.match(line)
            if m and m[2]:
                out[m[1]] = Sourced(m[2].strip().strip('"'), at(path, n))
        depth = max(0, depth + opens - closes)
    return out


def section(text: str, path: str, name: str) -> dict[str, Sourced[str]]:
    """The ``key = value`` pairs directly inside the top-level section ``name { ... }`` of
    one UCL file (several of them, or one per line, or all on one line), with
    ``path:line``; nested sections inside it skipped."""
    out: dict[str, Sourced[str]] = {}
    depth, inside = 0, False
    head = re.compile(rf"^{re.escape(name)}\s*(?:=\s*)?\{{")
    for n, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if depth == 0 and head.match(line):
            inside, line = True, line[line.index("{") + 1:]
            depth = 1
        elif depth == 0:
            depth = max(0, line.count("{") + line.count("[") - line.count("}")
                        - line.count("]"))
            continue
        for part in line.split(";"):
            part = part.strip()
            if inside and depth == 1 and part and "{" not in part and "}" not in part:
                m = _KEY.match(part)
                if m and m[2]:
                    out[m[1]] = Sourced(m[2].strip().strip('"'), at(path, n))
            depth += part.count("{") + part.count("[") - part.count("}") - part.count("]")
            if depth <= 0:
                depth, inside = 0, False
    return out


def seconds(value: Sourced[str], name: str) -> Sourced[float]:
    """A UCL time (``8s``, ``500ms``, ``2min``, a bare number of seconds)."""
    m = _TIME.match(value.value.strip().lower())
    if not m:
        raise bad(value.source, f"{name} = {value.value!r} is not a time")
    return Sourced(float(m[1]) * _TIME_UNITS[m[2]], value.source)


def boolean(value: Sourced[str], name: str) -> Sourced[bool]:
    word = value.value.strip().lower()
    if word not in _BOOLS:
        raise bad(value.source, f"{name} = {value.value!r} is not true or false")
    return Sourced(_BOOLS[word], value.source)


@dataclass(frozen=True)
class RspamdConf:
    """What the budget needs of rspamd, each value with its source."""

    task_timeout: Sourced[float]
    soft_reject_on_timeout: Sourced[bool]
    redis_timeout: Sourced[float]
    workers: Sourced[int] | None  # None: rspamd's default, CPUs - 2 between 1 and 4
    proxy_milter: Sourced[bool]
    proxy_timeout: Sourced[float]
    dns_timeout: Sourced[float]
    dns_retransmits: Sourced[int]


def _layers(texts: Mapping[str, str | None], name: str, root: str,
            ) -> dict[str, Sourced[str]]:
    """One file's keys: shipped, then local.d, then override.d (the later wins)."""
    merged: dict[str, Sourced[str]] = {}
    for rel in (name, f"local.d/{name}", f"override.d/{name}"):
        text = texts.get(rel)
        if text is not None:
            merged.update(top_level(text, f"{root}/{rel}"))
    return merged


def parse(texts: Mapping[str, str | None], root: str = "/etc/rspamd") -> RspamdConf:
    """rspamd's values from its files' texts, by path relative to ``root`` (``options.inc``,
    ``local.d/options.inc``, ``override.d/options.inc``, ...; None or absent: no file)."""
    default = f"default of {RSPAMD}"
    options = _layers(texts, "options.inc", root)
    redis = _layers(texts, "redis.conf", root)
    normal = _layers(texts, "worker-normal.inc", root)
    proxy = _layers(texts, "worker-proxy.inc", root)
    task = options.get("task_timeout") or options.get("check_timeout")  # its old alias
    dns: dict[str, Sourced[str]] = {}
    for rel in ("options.inc", "local.d/options.inc", "override.d/options.inc"):
        text = texts.get(rel)
        if text is not None:
            dns.update(section(text, f"{root}/{rel}", "dns"))
    retransmits = dns.get("retransmits")
    if retransmits is not None and (not retransmits.value.isdigit()
                                    or int(retransmits.value) < 1):
        raise bad(retransmits.source, f"retransmits = {retransmits.value!r} is not a "
                  "positive whole number")
    workers = None
    if "count" in normal:
        c = normal["count"]
        if not c.value.isdigit() or int(c.value) < 1:
            raise bad(c.source, f"count = {c.value!r} is not a positive whole number")
        workers = Sourced(int(c.value), c.source)
    return RspamdConf(
        task_timeout=seconds(task, "task_timeout") if task else Sourced(8.0, default),
        soft_reject_on_timeout=boolean(options["soft_reject_on_timeout"],
                                       "soft_reject_on_timeout")
        if "soft_reject_on_timeout" in options else Sourced(False, default),
        redis_timeout=seconds(redis["timeout"], "timeout") if "timeout" in redis
        else Sourced(1.0, f"{default} (lua_redis.lua)"),
        workers=workers,
        proxy_milter=boolean(proxy["milter"], "milter") if "milter" in proxy
        else Sourced(False, default),
        proxy_timeout=seconds(proxy["timeout"], "timeout") if "timeout" in proxy
        else Sourced(120.0, default),
        dns_timeout=seconds(dns["timeout"], "timeout") if "timeout" in dns
        else Sourced(1.0, default),
        dns_retransmits=Sourced(int(retransmits.value), retransmits.source)
        if retransmits is not None else Sourced(5, default))


@dataclass(frozen=True)
class MilterConf:
    """Postfix's milter settings (main.cf, with Postfix 3.7's defaults): the milters smtpd
    runs, what it does when one is unavailable, and how long it waits for each stage
    (https://www.postfix.org/MILTER_README.html, postconf(5))."""

    milters: Sourced[str]
    default_action: Sourced[str]
    connect_timeout: Sourced[float]
    command_timeout: Sourced[float]
    content_timeout: Sourced[float]


MILTER_ACTIONS = ("accept", "reject", "tempfail", "quarantine")


def milter(cf: MainCf, overrides: dict[str, tuple[str, str]] | None = None) -> MilterConf:
    """The milter settings the port-25 smtpd runs with: main.cf's, or its master.cf
    service's ``-o`` overrides (name -> (value, where))."""

    def text(name: str) -> Sourced[str]:
        v = cf.expanded(name, overrides)
        assert v is not None  # every one has a Postfix 3.7 default
        return Sourced(v.value.strip(), v.source)

    def time(name: str) -> Sourced[float]:
        v = cf.time(name, overrides)
        assert v is not None
        return v

    action = text("milter_default_action")
    if action.value not in MILTER_ACTIONS:
        raise bad(action.source, f"milter_default_action = {action.value!r}: one of "
                  + ", ".join(MILTER_ACTIONS))
    return MilterConf(text("smtpd_milters"), action, time("milter_connect_timeout"),
                      time("milter_command_timeout"), time("milter_content_timeout"))
