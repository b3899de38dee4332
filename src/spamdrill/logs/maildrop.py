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
``connect to spamd on H failed, retrying (#1 of 3): ...``).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from spamdrill.logs.events import MaildropEvent, SpamcEvent, WrapperEvent, line
from spamdrill.logs.formats import TIME, TRUNCATED, Entry, Skip, entry, epoch, skip
from spamdrill.proto.spamc_result import reason_from_stderr

_KINDS = (("Checking for spam", "checking"), ("Found spam", "found-spam"),
          ("Delivering", "delivering"))
_DELIVER = re.compile(r"(?P<qid>\S+): to=<(?P<to>[^>]*)> from=<[^>]*> mda (?P<mda>\S+) "
                      r"outcome=(?P<outcome>\S+) dsn=(?P<dsn>\S+) rule=(?P<rule>\S+)")
_WRAPPER = re.compile(r"WRAPPER: maildrop exit = (?P<code>-?\d+);")
_RECORD = re.compile(r"(?P<path>.*?)\s*\((?P<size>\d+)\)\Z")


def words(text: str) -> tuple[str, ...]:
    """A logged line's words, without the brackets and punctuation around them."""
    return tuple(w.strip("()<>,;") for w in text.split() if w.strip("()<>,;"))


def parse_filter_line(entry: Entry, src: int, no: int, text: str) -> MaildropEvent:
    """A maildroprc's own line (``logger -t maildrop`` or ``log``)."""
    kind = "other"
    said = entry.msg
    for prefix, name in _KINDS:
        if said.startswith(prefix):
            kind, said = name, said[len(prefix):].lstrip(": ")
            break
    return MaildropEvent(kind, entry.host, entry.ts, line(src, no, text), words(said))


def parse_wrapper(entry: Entry, src: int, no: int, text: str) -> WrapperEvent | Skip | None:
    """spamdrill-deliver's or the field report's wrapper line."""
    if entry.prog == "spamdrill-deliver":
        m = _DELIVER.match(entry.msg)
        if m is None:
            return skip(TRUNCATED)
        return WrapperEvent(entry.host, entry.ts, line(src, no, text), m.group("qid"),
                            m.group("to"),
                            m.group("mda"), m.group("outcome"), m.group("dsn"),
                            m.group("rule"))
    m = _WRAPPER.match(entry.msg)
    if m is None:
        return None
    return WrapperEvent(entry.host, entry.ts, line(src, no, text),
                        mda=f"status={m.group('code')}")


def parse_spamc(entry: Entry, src: int, no: int, text: str) -> SpamcEvent | None:
    reason = reason_from_stderr(entry.msg)
    return SpamcEvent(entry.host, entry.ts, reason, line(src, no, text)) if reason else None


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


def parse_record(entry: Entry, src: int, no: int, text: str) -> MaildropEvent | Skip:
    """A logfile record's ``File: PATH (SIZE)`` / ``!Err: PATH (SIZE)``."""
    m = _RECORD.match(entry.msg[6:])
    if m is None:
        return skip(TRUNCATED)
    kind = "file" if entry.msg.startswith("File: ") else "error"
    return MaildropEvent(kind, entry.host, entry.ts, line(src, no, text), (),
                         m.group("path"), int(m.group("size")))
