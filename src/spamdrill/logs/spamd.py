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

The reader hands what a line says to the join (``join.Joiner``): a scan's lines add to its
``Scan``; only a failure makes an object of its own (``SpamdEvent``, kept as evidence).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from spamdrill.logs.events import Line, SpamdEvent, line
from spamdrill.logs.formats import TRUNCATED, After, Read, Skip, skip

if TYPE_CHECKING:
    from spamdrill.logs.join import Joiner, Scan

# a number Python converts: "1.2.3" or 5,000 digits in a forged line must not be a traceback
_NUM = r"\d{1,15}(?:\.\d{1,15})?"
# the user is whatever comes before the last ":UID" (the patterns match at one place only,
# so a lazy ".*?" finds what a greedy one would, without backtracking from the line's end)
_PROCESSING = re.compile(r"(?:processing|checking) message (?P<mid>\S+)(?: aka \S+)? "
                         r"for (?P<user>.*?):\d+\Z")
_VERDICT = re.compile(r"(?P<what>identified spam|clean message) \((?P<score>[-\d.]+)/"
                      rf"[-\d.]+\) for (?P<user>.*?):\d+ in (?P<secs>{_NUM}) seconds, "
                      r"(?P<size>\d{1,15}) bytes\.\Z")
_RESULT = re.compile(r"result: (?P<flag>[Y.]) +-?\d+ - (?P<tests>\S*) (?P<extra>\S*)")
_EXTRA = re.compile(rf"scantime=({_NUM}),size=(\d{{1,15}}),user=([^,]*),")
_SQL_USER = re.compile(r"failed to load user \((?P<user>[^)]*)\) scores from SQL database: "
                       r"(?P<why>.*)")
_DB_TROUBLE = ("SQL database", "SQL error", "DBI connect", "Can't connect to",
               "Too many connections", "Lost connection", "server has gone away",
               "Lock wait timeout", "Unknown MySQL server host", "Unknown server host")
_line = tuple.__new__  # a Line without NamedTuple's __new__ (see events.line)
BODY = 7  # len("spamd: ")


def _verdict(scan: Scan, ts: float, spam: bool, seconds: float, size: int,
             user: str) -> None:
    scan.seconds, scan.size, scan.spam, scan.end = seconds, size, spam, ts
    scan.user = scan.user or user
    scan.finished = True


# "spamd: ..." lines: (join, ts, host, pid, msg, src, no, text) -> True (the join took it),
# False (not a line it reads), or a Skip
Step = Callable[["Joiner", float, str, str, str, int, int, str], "bool | Skip"]


def _result(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int, no: int,
            text: str) -> bool | Skip:
    if not msg.startswith("result: ", BODY):
        return False
    m = _RESULT.match(msg, BODY)
    if m is None:
        return skip(TRUNCATED)
    flag, tests, extra = m.groups()
    x = _EXTRA.match(extra)
    at = extra.find(",mid=")
    if x is None or at < 0:
        return skip(TRUNCATED)
    scan = join.spamd_line("result", host, pid, ts, _line(Line, (src, no, text)))
    if scan is None:
        return True
    end = extra.find(",", at + 5)
    seconds, size, user = x.groups()
    scan.seconds, scan.size, scan.spam, scan.end = float(seconds), int(size), flag == "Y", ts
    scan.user = scan.user or user
    scan.finished = True
    scan.mid = scan.mid or extra[at + 5: end if end > 0 else None]
    if tests:
        scan.tests = tuple(tests.split(","))
        if "TIME_LIMIT_EXCEEDED" in scan.tests:
            scan.time_limit = True
    else:
        scan.tests = ()
    join.end_scan(scan)
    return True


def _processing(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int,
                no: int, text: str) -> bool | Skip:
    if not msg.startswith(("processing message ", "checking message "), BODY):
        return False
    m = _PROCESSING.match(msg, BODY)
    if m is None:
        return skip(TRUNCATED)
    scan = join.spamd_line("processing", host, pid, ts, _line(Line, (src, no, text)))
    if scan is not None:
        join.processing(scan, m.group(1), m.group(2))
    return True


def _verdict_line(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int,
                  no: int, text: str) -> bool | Skip:
    """``identified spam (S/R) for U:N in N seconds, B bytes.`` (or ``clean message``).
    SpamAssassin 3.x logged no ``result:`` line (the field report's spamd did not): this
    one then ends the scan."""
    if not msg.startswith(("identified spam ", "clean message "), BODY):
        return False
    m = _VERDICT.match(msg, BODY)
    if m is None:
        return skip(TRUNCATED)
    scan = join.spamd_line("verdict", host, pid, ts, _line(Line, (src, no, text)))
    if scan is not None:
        _verdict(scan, ts, m.group(1) == "identified spam", float(m.group(4)),
                 int(m.group(5)), m.group(3))
    return True


def _connection(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int,
                no: int, text: str) -> bool | Skip:
    if not msg.startswith("connection from ", BODY):
        return False
    join.spamd_line("connection", host, pid, ts, _line(Line, (src, no, text)))
    return True


def _error(join: Joiner, ev: SpamdEvent) -> bool:
    scan = join.spamd_line(ev.kind, ev.host, ev.pid, ev.ts, ev.line)
    if scan is not None:
        join.error(scan, ev, ev.kind != "sql-error")
    return True


def _sql(join: Joiner, ts: float, host: str, pid: str, msg: str, ln: Line) -> bool:
    m = _SQL_USER.search(msg)
    return _error(join, SpamdEvent("sql-error", host, pid, ts, ln, m.group("user") if m else "",
                                   m.group("why") if m else msg))


# "spamd: <prefix>" of a scan's failure -> its kind
_FAILURES = (("timeout: ", "timeout"), ("service unavailable: ", "unavailable"),
             ("bad protocol: ", "protocol"))


def _failure(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> bool | Skip:
    for prefix, kind in _FAILURES:
        if msg.startswith(prefix, BODY):
            return _error(join, SpamdEvent(kind, host, pid, ts, line(src, no, text),
                                           text=msg[BODY + len(prefix):]))
    return False


def _server(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int, no: int,
            text: str) -> bool | Skip:
    """``server started on ...`` or ``server killed by ...``."""
    if not msg.startswith(("server started on ", "server killed by "), BODY):
        return _failure(join, ts, host, pid, msg, src, no, text)
    ln = line(src, no, text)
    join.server_changed(host, ts, msg.startswith("server started on ", BODY), ln)
    join.spamd_line("started", host, pid, ts, ln)
    return True


# "spamd: ..." by the four characters after it
_STEPS: dict[str, Step] = {"resu": _result, "proc": _processing, "chec": _processing,
                           "iden": _verdict_line, "clea": _verdict_line,
                           "conn": _connection, "serv": _server}


def _prefork(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> bool | Skip:
    if "max-children" in msg:
        ln = _line(Line, (src, no, text))
        join.spamd.max_children.add(ts, ln)
    elif msg.startswith("child states: ", 9):
        ln = _line(Line, (src, no, text))
        join.spamd.states.add(ts, (msg[23:].strip(), ln))
    else:
        return False
    join.spamd_line("", host, pid, ts, ln)
    return True


def _other(join: Joiner, ts: float, host: str, pid: str, msg: str, src: int, no: int,
           text: str) -> bool | Skip:
    """The time limit, a debug line, an SQL error, or a line spamd's reader skips."""
    if msg.startswith("check: exceeded time limit"):  # the rules ran past their limit
        scan = join.spamd_line("time-limit", host, pid, ts, line(src, no, text))
        if scan is not None:
            scan.time_limit = True
        return True
    if msg.startswith("dbg: "):  # spamd's log goes on (its child's scan keeps it)
        join.spamd_line("", host, pid, ts, line(src, no, text))
        return True
    if any(t in msg for t in _DB_TROUBLE):
        return _sql(join, ts, host, pid, msg, line(src, no, text))
    return False


def reader(join: Joiner, after: After) -> Read:
    """The reader of spamd's lines."""
    steps = _STEPS

    def read(ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> None:
        if msg.startswith("spamd: "):
            step = steps.get(msg[BODY:BODY + 4], _failure)
        else:
            step = _prefork if msg.startswith("prefork: ") else _other
        took = step(join, ts, host, pid, msg, src, no, text)
        if took is not False and (took is not True or ts > join.now or join.dirty):
            after(took, ts, src, no, text)

    # what the compiled reader loop (_fastloop.pyx) does itself: the dispatch, and a
    # scan's steps and _prefork as twins of these (with what they use)
    from spamdrill.logs.join import Scan

    fast = (Line, Scan, _PROCESSING, _VERDICT, _RESULT, _EXTRA, skip(TRUNCATED))
    read.__dict__["inline"] = ("spamd", join, after, steps, _failure, _prefork, _other,
                               fast)
    return read
