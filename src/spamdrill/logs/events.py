"""The values the join keeps of a line, where it keeps more than a count or a field.

Most lines become no object at all: the parsers hand their fields to the join (``join``).
What is kept for the diagnosis -- a delivery, a warning, a failed scan's error, a wrapper's
or spamc's line -- keeps its source ``Line`` (input, line number, text): the diagnosis
quotes it as evidence, so a postmaster can find the line in the original file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Line(NamedTuple):
    src: int  # index of the input (file) it came from
    no: int  # 1-based line number in that input
    text: str


_new = tuple.__new__


def line(src: int, no: int, text: str) -> Line:
    """A ``Line`` for the hot path: ``tuple.__new__`` skips the NamedTuple's own
    ``__new__``, a third of the cost, and this runs for most lines kept as evidence."""
    return _new(Line, (src, no, text))


Key = tuple[str, str]  # (host, Postfix queue id): queue ids are unique per host only
# a line kept unparsed until a delivery in trouble asks for it: host, ts, the program's
# text, input, line number, the whole line
RawLine = tuple[str, float, str, int, int, str]


# -- Postfix -------------------------------------------------------------------------------

@dataclass(slots=True)
class Delivery:
    """A delivery agent's ``QID: to=<...>, relay=..., delay=..., delays=a/b/c/d, dsn=...,
    status=... (text)`` (``log_adhoc.c``): one attempt for one recipient."""

    key: Key
    ts: float
    agent: str  # pipe, local, virtual, smtp, lmtp, error, ...
    pid: str
    to: str
    orig_to: str
    relay: str
    delay: float
    delays: tuple[float, float, float, float]  # before qmgr, in qmgr, conn setup, transmit
    dsn: str
    status: str  # sent, deferred, bounced, expired, ...
    text: str
    line: Line


@dataclass(slots=True)
class AgentWarning:
    """A delivery agent's ``warning: ...`` without a queue id (``pipe_command_read: read time
    limit exceeded``): kept for the agent process's next delivery."""

    host: str
    agent: str
    pid: str
    ts: float
    text: str
    line: Line


# -- spamd ---------------------------------------------------------------------------------

@dataclass(slots=True)
class SpamdEvent:
    """A spamd line that failed a scan, kept with the scan. ``kind``: timeout,
    unavailable, sql-error, protocol."""

    kind: str
    host: str
    pid: str
    ts: float
    line: Line
    user: str = ""
    text: str = ""


# -- maildrop, wrappers, spamc -------------------------------------------------------------

@dataclass(slots=True)
class MaildropEvent:
    """maildrop's side: a filter's ``logger``/``log`` lines (``Checking for spam: ...``) and
    its logfile's delivery records (``File: PATH (SIZE)``, ``!Err: ...``)."""

    kind: str  # checking, found-spam, delivering, file, error, other
    host: str
    ts: float
    line: Line
    # the line's words (sender, recipient, user, ...), lowercased once: an incident's
    # attempts ask each line for their users again and again (``join._mentions``)
    words: tuple[str, ...] = ()
    path: str = ""
    size: int | None = None


@dataclass(slots=True)
class WrapperEvent:
    """A delivery wrapper's line: spamdrill-deliver (``QID: to=<...> ... mda status=75
    outcome=defer dsn=4.4.7 rule=... delay=...``, joined by queue id) or the field report's
    ``WRAPPER: maildrop exit = 75; ...`` (joined by time)."""

    host: str
    ts: float
    line: Line
    qid: str = ""
    to: str = ""
    mda: str = ""  # status=75, signal=9, deadline, ...
    outcome: str = ""
    dsn: str = ""
    rule: str = ""


@dataclass(slots=True)
class SpamcEvent:
    """spamc's own syslog line (``connect to spamd on H failed, retrying (#1 of 3): ...``)."""

    host: str
    ts: float
    reason: str
    line: Line
    extra: dict[str, str] = field(default_factory=dict)

