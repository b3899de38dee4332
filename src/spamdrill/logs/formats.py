"""A log line's envelope -- time, host, program, pid, text -- for each supported format,
sans-IO.

Formats, as their writers produce them:

- ``classic``: ``Nov 29 15:55:35 mx1 postfix/smtpd[1379]: text``. rsyslog's traditional
  file format (space-padded day) and Postfix's own ``maillog_file`` (``msg_logger.c``:
  ``strftime("%b %d %H:%M:%S ")``, zero-padded day, first label of the host name); an
  optional ``.ffffff`` after the seconds. No year and no zone: the year is carried per file
  (``YearClock``), the zone is the reader's.
- ``iso``: ``journalctl -o short-iso`` (``2026-11-29T15:55:35+0000 host tag[pid]: text``;
  systemd's ``logs-show.c``, ``+00:00`` in newer versions, fractions with
  ``short-iso-precise``) and rsyslog's high-precision file format: the same shape.
- ``rfc5424``: ``<22>1 2026-11-29T15:55:35+00:00 mx1 postfix/smtpd 1379 - - text`` (RFC 5424
  section 6; rsyslog's ``RSYSLOG_SyslogProtocol23Format`` writes it to files as is).
- ``journal-json``: ``journalctl -o json``, one object per line: ``__REALTIME_TIMESTAMP``
  (microseconds, a string), ``_HOSTNAME``, ``SYSLOG_IDENTIFIER``, ``_PID``/``SYSLOG_PID``,
  ``MESSAGE`` (a string, or an array of byte values when not UTF-8).
- ``spamd-file``: what ``spamd --syslog=FILE`` writes (``Mail::SpamAssassin::Logger::File``:
  ``"%s [%s] %s: %s"`` of ``scalar localtime``, pid, level, text): ``Sun Nov 29 15:55:35
  2026 [762] info: spamd: text``.
- ``maildrop-file``: maildrop's ``logfile`` (``maildrop/log.C``): blocks of ``Date:``,
  ``From:``, ``Subj:``, ``File:``/``!Err:`` lines, and the filter's own ``log`` lines
  (no time stamp) before them; see ``spamdrill.logs.maildrop``.

Every parser takes a line without its newline and returns an ``Entry`` tuple or a ``Skip``
(a reason a line could not be read: counted and noted, never raised).
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import NamedTuple

FORMATS = ("classic", "iso", "rfc5424", "journal-json", "spamd-file", "maildrop-file")

MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}

# why a line was skipped
GARBLED = "garbled"  # NUL bytes, binary, not text
TRUNCATED = "truncated"  # a known line cut short
TIME = "bad time"  # an impossible time stamp, or one out of order (a wrong year rollover)
UNRECOGNIZED = "unrecognized"  # no known envelope
SKIP_REASONS = (GARBLED, TRUNCATED, TIME, UNRECOGNIZED)


class Entry(NamedTuple):
    """One line's envelope. ``ts`` is seconds since the epoch."""

    ts: float
    host: str
    prog: str
    pid: str
    msg: str


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


_SKIPS = {r: Skip(r) for r in SKIP_REASONS}

# A program's reader: (ts, host, pid, text, input, line number, whole line).
Read = Callable[[float, str, str, str, int, int, str], None]
# What a reader calls after a line unless the join took it and nothing is due: (True
# when the join took the line, False when it does not need it, a Skip for a known line
# cut short; ts, input, line number, whole line).
After = Callable[[bool | Skip, float, int, int, str], None]


def skip(reason: str) -> Skip:
    return _SKIPS.get(reason) or Skip(reason)


_new = tuple.__new__


def entry(ts: float, host: str, prog: str, pid: str, msg: str) -> Entry:
    """An ``Entry`` without the NamedTuple's own ``__new__`` (every line makes one)."""
    return _new(Entry, (ts, host, prog, pid, msg))


def garbled(line: str) -> bool:
    """Binary rather than text: a NUL, or mostly replacement and control characters."""
    if "\x00" in line:
        return True
    bad = sum(1 for c in line[:200] if c == "\ufffd" or (c < " " and c != "\t"))
    return bad > 4 and bad * 4 > min(len(line), 200)


class YearClock:
    """Turns year-less ``Mon dd hh:mm:ss`` stamps into epoch seconds, one file at a time.

    The year starts as given (the reader derives it from the file's modification time) and
    advances when the month falls from December to January. Any other step back of more
    than ``tolerance`` seconds is a line whose year cannot be right (a line from another
    year, a clock reset, a file out of order): it is refused, not silently placed a year
    away; so is a line more than ``ahead`` seconds (half a year) after the last (a December
    line after January's: a year off). Stamps repeat within a second, so each is converted
    once, and the minute it falls in too (zones change their offset on the minute): a
    stamp of whole seconds whose minute was converted for the same year takes its
    seconds only.
    """

    def __init__(self, year: int, tz: tzinfo | None, tolerance: float = 3600.0,
                 ahead: float = 180 * 86400.0) -> None:
        self.year = year
        self.tz = tz
        self.tolerance = tolerance
        self.ahead = ahead
        self.last: float | None = None
        self.last_month = 0
        self._cache: dict[str, float] = {}
        self._minutes: dict[tuple[int, int, int, int, int], float] = {}
        # a whole-second stamp's first 13 characters (its minute) -> month, year, minute
        self._seen: dict[str, tuple[int, int, float]] = {}

    def _minute(self, year: int, month: int, day: int, hour: int, minute: int) -> float:
        key = (year, month, day, hour, minute)
        base = self._minutes.get(key)
        if base is None:
            base = epoch(datetime(year, month, day, hour, minute), self.tz)
            if len(self._minutes) > 4096:
                self._minutes.clear()
            self._minutes[key] = base
        return base

    def _convert(self, stamp: str) -> float | None:
        whole_second = len(stamp) == 15 and stamp[13:].isdigit() and stamp[13:].isascii()
        if whole_second:  # "Mon dd hh:mm:ss": its minute converted before, with this year?
            seen = self._seen.get(stamp[:13])
            if seen is not None and seen[1] == self.year + (
                    1 if seen[0] < self.last_month and self.last_month == 12
                    and seen[0] == 1 else 0):
                whole = int(stamp[13:])
                return seen[2] + whole + 0.0 if whole <= 59 else None
        parts = stamp.split()  # the day may be space-padded
        if len(parts) != 3:
            return None
        month = MONTHS.get(parts[0])
        hms = parts[2].split(":")
        if month is None or len(hms) != 3 or not parts[1].isdigit():
            return None
        year = self.year + (1 if month < self.last_month and self.last_month == 12
                            and month == 1 else 0)
        try:
            sec = float(hms[2])
            whole = int(sec)
            if not 0 <= whole <= 59:
                return None
            base = self._minute(year, month, int(parts[1]), int(hms[0]), int(hms[1]))
        except (ValueError, OverflowError):
            return None
        if whole_second:
            if len(self._seen) > 4096:
                self._seen.clear()
            self._seen[stamp[:13]] = (month, year, base)
        return base + whole + (sec - whole)

    def __call__(self, stamp: str) -> float | None:
        ts = self._cache.get(stamp)
        fresh = ts is None
        if ts is None:
            ts = self._convert(stamp)
            if ts is None:
                return None
        last = self.last
        if last is not None and (ts < last - self.tolerance or ts > last + self.ahead):
            return None  # back in time, or most of a year ahead: its year cannot be right
        if fresh:  # only a line that is kept moves the year on
            month = MONTHS.get(stamp[:3], 0)
            if self.last_month == 12 and month == 1:
                self.year += 1
                self._cache.clear()
            self.last_month = month
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[stamp] = ts
        if last is None or ts > last:
            self.last = ts
        return ts


def epoch(dt: datetime, tz: tzinfo | None) -> float:
    if tz is None:  # the reader's local zone, as syslog wrote it
        return time.mktime(dt.timetuple())
    return dt.replace(tzinfo=tz).timestamp()


def _split_tag(rest: str) -> tuple[str, str, str, str] | None:
    """``host tag[pid]: text`` -> host, prog, pid, text."""
    host, sep, rest = rest.partition(" ")
    if not sep:
        return None
    tag, sep, msg = rest.partition(": ")
    if not sep:
        if rest.endswith(":"):
            tag, msg = rest[:-1], ""
        else:
            return None
    prog, _, pid = tag.partition("[")
    return host, prog, pid[:-1] if pid.endswith("]") else pid, msg


class ClassicParser:
    """``Mon dd hh:mm:ss[.ffffff] host tag[pid]: text``.

    Every line of a mail log passes here, so the common shape takes one ``str.split`` and
    a cached stamp; anything else takes the careful path. The reader's loop over a whole
    block (``reader``) takes the same path inline: ``stamp`` and ``tag`` are its steps."""

    def __init__(self, clock: YearClock) -> None:
        self.clock = clock
        self.cache = clock._cache

    def stamp(self, stamp: str) -> float | None:
        """A ``Mon dd hh:mm:ss`` stamp's time (None: refused), converted once."""
        ts = self.cache.get(stamp)
        clock = self.clock
        last = clock.last
        if ts is None or last is None or ts < last - clock.tolerance or ts > last + clock.ahead:
            return clock(stamp)
        if ts > last:
            clock.last = ts
        return ts

    @staticmethod
    def tag(tag: str) -> tuple[str, str] | None:
        """``prog[pid]:`` -> prog, pid; None if it does not end the envelope."""
        if tag[-1:] != ":":
            return None
        if tag.endswith("]:"):
            prog, _, pid = tag.partition("[")
            return prog, pid[:-2]
        return tag[:-1], ""

    def __call__(self, line: str) -> Entry | Skip:
        parts = line.split(None, 5)
        if len(parts) == 6 and len(line) > 16 and line[15] == " ":
            ts = self.stamp(line[:15])
            tag = self.tag(parts[4]) if ts is not None else None
            if ts is not None and tag is not None:
                return _new(Entry, (ts, parts[3], tag[0], tag[1], parts[5]))
        return self.careful(line)

    def careful(self, line: str) -> Entry | Skip:
        if len(line) < 16 or line[3] != " " or line[15] not in " .":
            return skip(TRUNCATED if len(line) < 16 and line[:3] in MONTHS else UNRECOGNIZED)
        end = 15
        if line[15] == ".":
            end = line.find(" ", 15)
            if end < 0:
                return skip(TRUNCATED)
        ts = self.clock(line[:end])
        if ts is None:
            return skip(TIME if line[:3] in MONTHS else UNRECOGNIZED)
        parts = _split_tag(line[end + 1:])
        if parts is None:
            return skip(TRUNCATED)
        return entry(ts, *parts)


class IsoClock:
    """ISO 8601 stamps with a zone; each distinct stamp converted once."""

    def __init__(self) -> None:
        self._cache: dict[str, float] = {}

    def __call__(self, stamp: str) -> float | None:
        ts = self._cache.get(stamp)
        if ts is None:
            try:
                dt = datetime.fromisoformat(stamp)
            except ValueError:
                return None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            ts = dt.timestamp()
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[stamp] = ts
        return ts


class IsoParser:
    """``2026-11-29T15:55:35+0000 host tag[pid]: text`` (journalctl short-iso, rsyslog)."""

    def __init__(self) -> None:
        self.clock = IsoClock()

    def __call__(self, line: str) -> Entry | Skip:
        stamp, sep, rest = line.partition(" ")
        if not sep or len(stamp) < 19 or stamp[10] != "T":
            return skip(UNRECOGNIZED)
        ts = self.clock(stamp)
        if ts is None:
            return skip(TIME)
        parts = _split_tag(rest)
        if parts is None:
            return skip(TRUNCATED)
        return entry(ts, *parts)


def _structured_data_end(text: str) -> int:
    """Index just past RFC 5424's STRUCTURED-DATA (``-`` or ``[..]...``), or -1."""
    if text.startswith("-"):
        return 1
    i = 0
    while i < len(text) and text[i] == "[":
        j = i + 1
        while j < len(text) and text[j] != "]":
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            return -1
        i = j + 1
    return i if i else -1


class Rfc5424Parser:
    """``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`` (RFC 5424 section 6)."""

    def __init__(self) -> None:
        self.clock = IsoClock()

    def __call__(self, line: str) -> Entry | Skip:
        if not line.startswith("<"):
            return skip(UNRECOGNIZED)
        head = line.split(" ", 6)
        if len(head) < 7:
            return skip(TRUNCATED)
        _pri, stamp, host, app, procid, _msgid, rest = head
        ts = self.clock(stamp) if stamp != "-" else None
        if ts is None:
            return skip(TIME)
        end = _structured_data_end(rest)
        if end < 0:
            return skip(TRUNCATED)
        msg = rest[end + 1:]
        if msg.startswith("\ufeff"):  # the BOM RFC 5424 allows before UTF-8 text
            msg = msg[1:]
        return entry(ts, "" if host == "-" else host, "" if app == "-" else app,
                     "" if procid == "-" else procid, msg)


def _journal_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        return bytes(b & 0xFF for b in value).decode("utf-8", "replace")
    if isinstance(value, list) and value:  # a field given more than once: the first
        return _journal_text(value[0])
    return None


def journal_json(line: str) -> Entry | Skip:
    """One ``journalctl -o json`` object."""
    try:
        doc = json.loads(line)
    except ValueError:
        return skip(TRUNCATED if line.startswith("{") else UNRECOGNIZED)
    if not isinstance(doc, dict):
        return skip(UNRECOGNIZED)
    msg = _journal_text(doc.get("MESSAGE"))
    try:
        ts = int(str(doc.get("__REALTIME_TIMESTAMP"))) / 1e6
    except ValueError:
        return skip(TIME)
    if msg is None:
        return skip(TRUNCATED)
    ident = _journal_text(doc.get("SYSLOG_IDENTIFIER")) or _journal_text(doc.get("_COMM"))
    pid = _journal_text(doc.get("_PID")) or _journal_text(doc.get("SYSLOG_PID")) or ""
    return entry(ts, _journal_text(doc.get("_HOSTNAME")) or "", ident or "", pid, msg)


class SpamdFileParser:
    """``Sun Nov 29 15:55:35 2026 [762] info: spamd: text`` (``spamd --syslog=FILE``).

    The level (info, warn, error, dbg) is kept as a prefix of the text only for ``dbg``,
    which the replay reads; syslog carries it as the priority, so other levels drop it
    and the text reads as it does in a mail log.
    """

    def __init__(self, tz: tzinfo | None, host: str = "") -> None:
        self.tz = tz
        self.host = host
        self._cache: dict[str, float] = {}

    def _ts(self, stamp: str) -> float | None:
        ts = self._cache.get(stamp)
        if ts is None:
            try:
                dt = datetime.strptime(" ".join(stamp.split()), "%a %b %d %H:%M:%S %Y")
            except ValueError:
                return None
            ts = epoch(dt, self.tz)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[stamp] = ts
        return ts

    def __call__(self, line: str) -> Entry | Skip:
        if len(line) < 27 or line[24] != " " or line[25] != "[":
            return skip(TRUNCATED if len(line) < 27 and line[:3].isalpha()
                        else UNRECOGNIZED)
        ts = self._ts(line[:24])
        if ts is None:
            return skip(TIME)
        pid, sep, rest = line[26:].partition("] ")
        level, sep2, msg = rest.partition(": ")
        if not sep or not sep2:
            return skip(TRUNCATED)
        return entry(ts, self.host, "spamd", pid, f"dbg: {msg}" if level == "dbg" else msg)


def _looks_classic(line: str) -> bool:
    return len(line) > 16 and line[:3] in MONTHS and line[3] == " " and line[15] in " ."


def _looks_spamd_file(line: str) -> bool:
    return len(line) > 27 and line[24:26] == " [" and line[4:7] in MONTHS


def _looks_iso(line: str) -> bool:
    return len(line) > 20 and line[4] == "-" and line[10] == "T" and line[:4].isdigit()


def _looks_maildrop(line: str) -> bool:
    return line.startswith(("Date: ", "File: ", "!Err: ", "Subj: "))


_SNIFFERS = (
    ("journal-json", lambda ln: ln.startswith("{") and "__REALTIME_TIMESTAMP" in ln),
    ("rfc5424", lambda ln: ln.startswith("<") and ">1 " in ln[:6]),
    ("spamd-file", _looks_spamd_file),
    ("classic", _looks_classic),
    ("iso", _looks_iso),
    ("maildrop-file", _looks_maildrop),
)


def sniff(lines: list[str]) -> str | None:
    """The format most of ``lines`` (a file's first lines) are in, or None."""
    votes: dict[str, int] = {}
    for line in lines:
        for name, test in _SNIFFERS:
            if test(line):
                votes[name] = votes.get(name, 0) + 1
                break
    if not votes:
        return None
    return max(votes.items(), key=lambda kv: kv[1])[0]


def year_for(first_month: int, first_day: int, mtime: float) -> int:
    """The year of a year-less log's first line: the file's year, unless that would put the
    line after the file was last written (then the year before)."""
    written = datetime.fromtimestamp(mtime)
    if (first_month, first_day) > (written.month, written.day + 1):
        return written.year - 1
    return written.year


def zone(name: str | None) -> tzinfo | None:
    """``None`` (the local zone), ``UTC``, ``+01:00``, or an IANA name."""
    if name is None:
        return None
    if name.upper() in ("UTC", "Z"):
        return UTC
    if name[:1] in "+-" and ":" in name:
        hours, minutes = name[1:].split(":", 1)
        sign = -1 if name[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
