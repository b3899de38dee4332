"""maildrop's, the delivery wrappers' and spamc's lines as events, sans-IO.

maildrop logs nothing to syslog by itself. Sites log from their maildroprc: the field
report's ``logger -t maildrop -pmail.info "Checking for spam: $FR $TO"`` (then ``Found
spam: ...`` or ``Delivering: ...``); the lab's maildroprc writes the same words with
maildrop's ``log`` to its ``logfile``, where maildrop itself adds a record per delivery
(``maildrop/log.C``): ``Date: <ctime>``, ``From: <header, 72 chars>``, ``Subj: <72
chars>``, then ``File: <mailbox> (<size>)`` or ``!Err: <mailbox> (<size>)`` and a blank
line. Those records have the only time stamps in the file: the filter's own lines before
a record take its time. maildrop may repeat a header on a continuation line (seen with
``xfilter``); such lines are ignored.

spamdrill-deliver logs one line per delivery (``QID: to=<...> from=<...> mda status=N
outcome=... dsn=... rule=... delay=Ns``); the field report's Perl wrapper logged
``WRAPPER: maildrop exit = N; safe_args = ...; error_msg = ...`` under the tag
``wrapper``. spamc logs to syslog when it cannot reach spamd (``libspamc.c``:
``connect to spamd on H failed, retrying (#1 of 3): ...``). spamdrill-spamc logs one line
when a check failed, met its deadline or was slow (``spamdrill.spamc.main``: ``deadline:
<where it stopped>; message passed through 0 after 3.012s kept=DIR/F.eml``), read here
as spamc's are, with the kept message's path.

A maildroprc's lines are kept unparsed (``RawLine``) until a delivery in trouble asks for
them (``filter_event``): most deliveries never do.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from spamdrill.logs.events import MaildropEvent, SpamcEvent, WrapperEvent, line
from spamdrill.logs.formats import TIME, TRUNCATED, After, Entry, Read, Skip, entry, epoch, skip
from spamdrill.proto.spamc_result import reason_from_stderr

if TYPE_CHECKING:
    from spamdrill.logs.join import Joiner

_KINDS = (("Checking for spam", "checking"), ("Found spam", "found-spam"),
          ("Delivering", "delivering"))
_DELIVER = re.compile(r"(?P<qid>\S+): to=<(?P<to>[^>]*)> from=<[^>]*> mda (?P<mda>\S+) "
                      r"outcome=(?P<outcome>\S+) dsn=(?P<dsn>\S+) rule=(?P<rule>\S+)")
_WRAPPER = re.compile(r"WRAPPER: maildrop exit = (?P<code>-?\d+);")
_RECORD = re.compile(r"(?P<path>.*?)\s*\((?P<size>\d{1,15})\)\Z")
_KEPT = re.compile(r" kept=(?P<path>\S+\.eml)\Z")


def words(text: str) -> tuple[str, ...]:
    """A logged line's words, without the brackets and punctuation around them."""
    return tuple(w.strip("()<>,;") for w in text.split() if w.strip("()<>,;"))


def filter_event(host: str, ts: float, msg: str, src: int, no: int,
                 text: str) -> MaildropEvent:
    """A maildroprc's own line (``logger -t maildrop`` or ``log``), kept as a ``RawLine``."""
    kind = "other"
    said = msg
    for prefix, name in _KINDS:
        if said.startswith(prefix):
            kind, said = name, said[len(prefix):].lstrip(": ")
            break
    return MaildropEvent(kind, host, ts, line(src, no, text),
                         tuple(w.lower() for w in words(said)))


def maildrop_reader(join: Joiner, after: After) -> Read:
    """maildrop's lines: a logfile record's ``File:``/``!Err:``, or the maildroprc's own."""
    add = join.maildrop.add

    def read(ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> None:
        if msg.startswith(("File: ", "!Err: ")):
            after(_record(join, ts, host, msg, src, no, text), ts, src, no, text)
            return
        add(ts, (host, ts, msg, src, no, text))
        if ts > join.now or join.dirty:
            after(True, ts, src, no, text)

    # what the compiled reader loop (_fastloop.pyx) does itself
    read.__dict__["inline"] = ("maildrop", join, after, join.maildrop)
    return read


def _wrapper(prog: str, ts: float, host: str, msg: str, src: int, no: int,
             text: str) -> WrapperEvent | Skip | None:
    if prog == "spamdrill-deliver":
        m = _DELIVER.match(msg)
        if m is None:
            return skip(TRUNCATED)
        qid, to, mda, outcome, dsn, rule = m.groups()
        return WrapperEvent(host, ts, line(src, no, text), qid, to, mda, outcome, dsn, rule)
    m = _WRAPPER.match(msg)
    if m is None:
        return None
    return WrapperEvent(host, ts, line(src, no, text), mda=f"status={m.group(1)}")


def wrapper_reader(join: Joiner, after: After, prog: str) -> Read:
    """spamdrill-deliver's or the field report's wrapper's lines."""

    def read(ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> None:
        ev = _wrapper(prog, ts, host, msg, src, no, text)
        if ev is None:
            return
        if isinstance(ev, Skip):
            after(ev, ts, src, no, text)
            return
        join.wrapper(ev)
        after(True, ts, src, no, text)

    if prog == "spamdrill-deliver":  # what the compiled reader loop does itself
        read.__dict__["inline"] = ("wrapper", join, after, WrapperEvent)
    return read


def spamc_reader(join: Joiner, after: After, prog: str = "spamc") -> Read:
    """spamc's own syslog lines: why it could not reach spamd; spamdrill-spamc's too."""
    add = join.spamc.add
    ours = prog.rsplit("/", 1)[-1] == "spamdrill-spamc"

    def read(ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> None:
        reason = spamdrill_spamc_reason(msg) if ours else reason_from_stderr(msg)
        if reason:
            kept = _KEPT.search(msg) if ours else None
            add(ts, SpamcEvent(host, ts, reason, line(src, no, text),
                               {"kept": kept.group("path")} if kept else {}))
            after(True, ts, src, no, text)

    return read


def spamdrill_spamc_reason(msg: str) -> str:
    """What stopped a spamdrill-spamc check, in spamc's reasons where it is one of them
    (refused, connect-timeout, ...); ``deadline`` where the deadline cut a scan short
    (slow or silent: spamd's own log tells which), ``stdin-deadline``, ``slow``."""
    if msg.startswith("slow: "):
        return "slow"
    if not msg.startswith(("deadline: ", "failed: ")):
        return ""
    if msg.startswith("deadline: reading the message from stdin"):
        return "stdin-deadline"
    if msg.startswith("deadline: timed out at the deadline") or "(no time for" in msg:
        return "deadline"  # a scan cut short, or a retry with no time left
    return reason_from_stderr(msg) or msg.partition(":")[0]


class LogfileParser:
    """maildrop's ``logfile``, line by line: the filter's lines wait for the next record's
    ``Date:``; a record's ``File:``/``!Err:`` line completes it."""

    def __init__(self, tz: tzinfo | None, host: str = "") -> None:
        self.tz = tz
        self.host = host
        self.pending: list[str] = []  # the filter's lines before a record
        self.ts: float | None = None

    def __call__(self, line: str) -> list[Entry] | Skip | None:
        if not line.strip():
            return None
        if line.startswith("Date: "):
            try:
                dt = datetime.strptime(" ".join(line[6:].split()), "%a %b %d %H:%M:%S %Y")
            except ValueError:
                return skip(TIME)
            self.ts = epoch(dt, self.tz)
            return None
        if line.startswith(("File: ", "!Err: ")):
            return self._record(line)
        if line.startswith(("From: ", "Subj: ")) or self.ts is not None:
            return None  # a header of the record being read (or maildrop's repeat of one)
        self.pending.append(line)
        return None

    def _record(self, line: str) -> list[Entry] | Skip:
        if self.ts is None:
            self.pending.clear()
            return skip(TRUNCATED)
        ts, self.ts = self.ts, None
        entries = [entry(ts, self.host, "maildrop", "", text) for text in self.pending]
        self.pending.clear()
        return [*entries, entry(ts, self.host, "maildrop", "", line)]


def _record(join: Joiner, ts: float, host: str, msg: str, src: int, no: int,
            text: str) -> bool | Skip:
    """A logfile record's ``File: PATH (SIZE)`` / ``!Err: PATH (SIZE)``."""
    m = _RECORD.match(msg[6:])
    if m is None:
        return skip(TRUNCATED)
    kind = "file" if msg.startswith("File: ") else "error"
    join.maildrop.add(ts, MaildropEvent(kind, host, ts, line(src, no, text), (),
                                        m.group("path"), int(m.group("size"))))
    return True
