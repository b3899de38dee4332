"""spamd's log lines as events, sans-IO.

From SpamAssassin 4.0.1's ``spamd`` (Debian's ``/usr/sbin/spamd``) and its modules:

- ``spamd: connection from HOST [ADDR]:PORT to port N, fd N`` (3.x: ``... at port N``);
- ``spamd: processing message <MID>[ aka <RMID>] for USER:UID`` (``checking`` for CHECK);
  MID is ``(unknown)`` when the message has none;
- ``spamd: identified spam (S/R) for USER:UID in N seconds, B bytes.`` or ``clean
  message (...)``, then ``spamd: result: Y|. SCORE - TESTS scantime=N,size=B,user=U,...,
  mid=<MID>,...``;
- ``check: exceeded time limit in ..., skipping further tests`` (``Plugin/Check.pm``: the
  rules ran past their time limit, which spamd derives from ``--timeout-child``; the result
  then lists ``TIME_LIMIT_EXCEEDED``) and ``spamd: timeout: (N second timeout while trying
  to PROCESS)`` (``service_timeout``: the child's own alarm);
- ``config: failed to load user (U) scores from SQL database: config: SQL error: ...`` and
  ``spamd: service unavailable: Error fetching user preferences via SQL``;
- ``prefork: server reached --max-children setting, consider raising it`` and ``prefork:
  child states: BII`` (``SpamdForkScaling.pm``);
- ``spamd: server started on ...``, ``spamd: server killed by SIGTERM, shutting down``.

The child's pid ties a scan's lines together: the syslog tag's ``spamd[PID]``, or the
``[PID]`` of ``spamd --syslog=FILE``.
"""

from __future__ import annotations

import re

from spamdrill.logs.events import SpamdEvent, line
from spamdrill.logs.formats import TRUNCATED, Entry, Skip, skip

_PROCESSING = re.compile(r"(?:processing|checking) message (?P<mid>\S+)(?: aka \S+)? "
                         r"for (?P<user>.*):\d+\Z")
_VERDICT = re.compile(r"(?P<what>identified spam|clean message) \((?P<score>[-\d.]+)/"
                      r"[-\d.]+\) for (?P<user>.*):\d+ in (?P<secs>[\d.]+) seconds, "
                      r"(?P<size>\d+) bytes\.\Z")
_RESULT = re.compile(r"result: (?P<flag>[Y.]) +-?\d+ - (?P<tests>\S*) (?P<extra>\S*)")
_EXTRA = re.compile(r"scantime=([\d.]+),size=(\d+),user=([^,]*),")
_SQL_USER = re.compile(r"failed to load user \((?P<user>[^)]*)\) scores from SQL database: "
                       r"(?P<why>.*)")
_DB_TROUBLE = ("SQL database", "SQL error", "DBI connect", "Can't connect to",
               "Too many connections", "Lost connection", "server has gone away",
               "Lock wait timeout", "Unknown MySQL server host", "Unknown server host")


def _result(ev: SpamdEvent, body: str) -> SpamdEvent | Skip:
    m = _RESULT.match(body)
    if m is None:
        return skip(TRUNCATED)
    extra = m.group("extra")
    x = _EXTRA.match(extra)
    at = extra.find(",mid=")
    if x is None or at < 0:
        return skip(TRUNCATED)
    end = extra.find(",", at + 5)
    ev.kind = "result"
    ev.spam = m.group("flag") == "Y"
    ev.tests = tuple(m.group("tests").split(",")) if m.group("tests") else ()
    ev.mid = extra[at + 5: end if end > 0 else None]
    ev.seconds, ev.size, ev.user = float(x.group(1)), int(x.group(2)), x.group(3)
    return ev


def _processing(ev: SpamdEvent, body: str) -> SpamdEvent | Skip:
    m = _PROCESSING.match(body)
    if m is None:
        return skip(TRUNCATED)
    ev.kind, ev.mid, ev.user = "processing", m.group("mid"), m.group("user")
    return ev


def _verdict(ev: SpamdEvent, body: str) -> SpamdEvent | Skip:
    m = _VERDICT.match(body)
    if m is None:
        return skip(TRUNCATED)
    ev.kind, ev.user = "verdict", m.group("user")
    ev.spam = m.group("what") == "identified spam"
    ev.seconds, ev.size = float(m.group("secs")), int(m.group("size"))
    return ev


def _sql(ev: SpamdEvent, text: str) -> SpamdEvent:
    m = _SQL_USER.search(text)
    ev.kind = "sql-error"
    ev.user = m.group("user") if m else ""
    ev.text = m.group("why") if m else text
    return ev


# "spamd: <prefix>" -> what the rest means
_SPAMD_PREFIXES: tuple[tuple[str, str], ...] = (
    ("connection from ", "connection"),
    ("timeout: ", "timeout"),
    ("service unavailable: ", "unavailable"),
    ("bad protocol: ", "protocol"),
    ("server started on ", "started"),
    ("server killed by ", "stopped"),
)


def _event(entry: Entry, src: int, no: int, text: str) -> SpamdEvent:
    return SpamdEvent("", entry.host, entry.pid, entry.ts, line(src, no, text))


def _spamd_body(entry: Entry, body: str, src: int, no: int,
                text: str) -> SpamdEvent | Skip | None:
    if body.startswith("result: "):
        return _result(_event(entry, src, no, text), body)
    if body.startswith(("processing message ", "checking message ")):
        return _processing(_event(entry, src, no, text), body)
    if body.startswith(("identified spam ", "clean message ")):
        # SpamAssassin 3.x logged no "result:" line (the field report's spamd did not):
        # this one then ends the scan
        return _verdict(_event(entry, src, no, text), body)
    for prefix, kind in _SPAMD_PREFIXES:
        if body.startswith(prefix):
            ev = _event(entry, src, no, text)
            ev.kind, ev.text = kind, body[len(prefix):]
            return ev
    return None


def _prefork(entry: Entry, msg: str, src: int, no: int, text: str) -> SpamdEvent | None:
    if "max-children" in msg:
        ev = _event(entry, src, no, text)
        ev.kind = "max-children"
        return ev
    if msg.startswith("prefork: child states: "):
        ev = _event(entry, src, no, text)
        ev.kind, ev.text = "child-states", msg[23:].strip()
        return ev
    return None


def parse(entry: Entry, src: int, no: int, text: str) -> SpamdEvent | Skip | None:
    """The event of one spamd line; None for lines the join does not need."""
    msg = entry.msg
    if msg.startswith("spamd: "):
        return _spamd_body(entry, msg[7:], src, no, text)
    if msg.startswith("prefork: "):
        return _prefork(entry, msg, src, no, text)
    if msg.startswith("check: exceeded time limit"):
        ev = _event(entry, src, no, text)
        ev.kind, ev.text = "time-limit", msg
        return ev
    if msg.startswith("dbg: "):
        ev = _event(entry, src, no, text)
        ev.kind, ev.text = "dbg", msg[5:]
        return ev
    if any(t in msg for t in _DB_TROUBLE):
        return _sql(_event(entry, src, no, text), msg)
    return None
