"""The join, sans-IO: Postfix queue ids -> delivery attempts -> spamd scans, in one pass over
the lines in time order, with memory bounded whatever the log's length.

The parsers (``postfix``, ``spamd``, ``maildrop``) call the join's methods with the values a
line carries -- no event object per line: most of a mail log is mail that went fine, and
per-line objects were most of the time it took (benchmarks/README.md). After each line it
took, ``advance`` moves the join's clock on.

- A ``Message`` is one Postfix queue file (host, queue id): arrival, Message-ID, sender,
  size. It lives until qmgr logs ``removed`` (or, for a log without those lines, until
  ``max_open`` younger messages push it out, or it has been idle for ``idle`` seconds).
- An ``Attempt`` is one delivery line (one recipient, one try): it started when the
  command started (the line's time minus ``delays``' last field, pipe(8)'s run time) and
  ended at the line. It is diagnosed ``late_window`` seconds after it ended, since spamd
  may finish a scan after spamc gave up (the field report's "scanned late").
- A ``Scan`` is one spamd child's work on one connection, from ``connection from`` to its
  ``result:`` (or its error), keyed by the child's pid.

Scans join attempts by Message-ID when spamd logged one, else by spamc's user (``-u``, the
recipient's local part or address) and time -- spamd fails some scans before it reads the
message (a user-prefs SQL error), and logs no Message-ID for those. Other lines join by
time and recipient: the maildroprc's own lines, spamc's syslog lines; spamdrill-deliver's
by queue id. What spamd's log said around an attempt (its gaps, stops, busy children) is
``spamdhosts``'s; the windows are ``timeindex.TimeIndex``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spamdrill.logs.events import (
    AgentWarning,
    Delivery,
    Key,
    Line,
    MaildropEvent,
    RawLine,
    SpamcEvent,
    SpamdEvent,
    WrapperEvent,
)
from spamdrill.logs.maildrop import filter_event
from spamdrill.logs.spamdhosts import NO_CONTEXT as _NO_CONTEXT
from spamdrill.logs.spamdhosts import SpamdContext, SpamdHosts
from spamdrill.logs.timeindex import TimeIndex

_NEVER = float("-inf")


@dataclass(frozen=True)
class Settings:
    late_window: float = 330.0  # how long after a delivery its late scan may still end
    horizon: float = 1800.0  # how long a scan or a timed line is kept for joining
    skew: float = 2.0  # clock difference allowed between the Postfix and spamd hosts
    gap: float = 1.0  # spamd quiet for longer than this is a gap in its log
    max_open: int = 50_000  # Postfix messages open at once (beyond: the oldest is closed)
    idle: float = 5 * 86400.0  # a message not seen for this long has left the queue
    # (Postfix's maximal_queue_lifetime; its "removed" line is not in the inputs)
    max_scans: int = 200_000  # scans kept for joining at once


@dataclass(slots=True, eq=False)
class Scan:
    host: str
    pid: str
    start: float
    lines: list[Line]
    last: float = 0.0  # its latest line
    end: float | None = None
    mid: str = ""
    user: str = ""
    seconds: float | None = None  # spamd's own figure
    size: int | None = None
    spam: bool | None = None
    tests: tuple[str, ...] = ()
    time_limit: bool = False
    errors: tuple[SpamdEvent, ...] = ()
    finished: bool = False  # a verdict was logged
    claimed: bool = False
    attempt: Attempt | None = None  # the delivery it was joined to

    @property
    def duration(self) -> float:
        return (self.end if self.end is not None else self.last) - self.start

    @property
    def useful(self) -> bool:
        """A scan of a message, or one that failed (not a PING)."""
        return bool(self.mid or self.errors or self.finished or self.user)


@dataclass(slots=True, eq=False)
class Message:
    key: Key
    last: float  # its latest line
    client: str = ""
    mid: str = ""
    sender: str | None = None
    size: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    removed: float | None = None




@dataclass(slots=True, eq=False)
class Attempt:
    """One delivery line. What is joined to it stays empty (shared, never changed in place)
    until the join fills it: most attempts need their scans only."""

    message: Message
    delivery: Delivery
    start: float
    end: float
    number: int  # 1 for the first try of this recipient
    plain: bool = False  # delivered in time and scanned: nothing more was joined
    warnings: Sequence[AgentWarning] = ()
    scans: Sequence[Scan] = ()
    joined_by: str = ""  # "message-id" or "user and time"
    wrappers: Sequence[WrapperEvent] = ()
    maildrop: Sequence[MaildropEvent] = ()
    spamc: Sequence[SpamcEvent] = ()
    spamd: SpamdContext = _NO_CONTEXT

    @property
    def recipient(self) -> str:
        return self.delivery.to

    def release(self) -> None:
        """Diagnosed: let go of what was joined to it (its message may stay queued for
        days, and keeps this attempt); once its message has left the queue, the message
        lets go of it too, so neither waits for the cycle collector."""
        self.scans = self.warnings = self.wrappers = self.maildrop = self.spamc = ()
        self.spamd = _NO_CONTEXT
        msg = self.message
        if msg.removed is not None and self in msg.attempts:
            msg.attempts.remove(self)


def _mentions(ev: MaildropEvent, users: tuple[str, ...]) -> bool:
    if ev.kind in ("file", "error"):
        path = ev.path.lower()
        return any(f"/{u}/" in path for u in users)
    said = ev.words  # lowercased when the line was parsed
    return any(u in said for u in users)


def _users(address: str) -> tuple[str, ...]:
    """What spamc's ``-u`` may have been for a recipient: its local part or the address."""
    address = address.lower()
    local = address.split("@", 1)[0]
    return (local, address) if local != address else (local,)


class Joiner:
    """Give it the lines' values in time order, ``advance`` after each; get back attempts
    ready to diagnose, each with its scans and the lines around it."""

    # read on every line by the compiled loop: slots, not an instance dictionary
    __slots__ = ("by_mid", "by_start", "by_user", "children", "dirty", "evicted",
                 "fast_scan", "fast_tick", "hosts", "kept", "maildrop", "messages",
                 "next_trim", "now", "on_scan", "open_mids", "pending", "plain", "ready", "s",
                 "scans_seen", "spamc", "spamd", "timed_wrappers", "warnings",
                 "wrapper_order", "wrappers")

    def __init__(self, settings: Settings | None = None) -> None:
        self.s = settings or Settings()
        self.now = 0.0
        self.dirty = False  # something was queued that the next ``advance`` may release
        self.messages: OrderedDict[Key, Message] = OrderedDict()
        # open scans by spamd child, least recently active first; and by Message-ID
        self.children: OrderedDict[tuple[str, str], Scan] = OrderedDict()
        self.open_mids: dict[str, Scan] = {}
        self.by_mid: dict[str, list[Scan]] = {}
        self.by_user: dict[str, list[Scan]] = {}
        self.kept: deque[Scan] = deque()
        self.by_start = TimeIndex[Scan]()
        self.on_scan: Callable[[Scan], None] | None = None  # each scan, once filed
        # what the compiled loop does in its place while it is on_scan: (on_scan, the
        # counts whose ``scans`` it adds to, the slow-scan threshold, the call for a scan
        # that ran that long, hit its time limit or failed)
        self.fast_scan: tuple[object, object, float, Callable[[Scan], None]] | None = None
        # what the compiled loop does in its place while it is the readers' ``after``
        # (``Analysis._tick``; the tuple's parts in _jointick.pxi)
        self.fast_tick: tuple[object, ...] | None = None
        self.pending: deque[Attempt] = deque()
        self.warnings: dict[tuple[str, str, str], list[AgentWarning]] = {}
        self.wrappers: dict[str, list[WrapperEvent]] = {}  # queue id -> spamdrill-deliver
        self.wrapper_order: deque[tuple[float, str]] = deque()
        self.timed_wrappers = TimeIndex[WrapperEvent]()
        # the maildroprc's lines, unparsed until an attempt in trouble asks (RawLine), and
        # maildrop's logfile records
        self.maildrop = TimeIndex[MaildropEvent | RawLine]()
        self.spamc = TimeIndex[SpamcEvent]()
        self.spamd = SpamdHosts(self.s)
        self.scans_seen = 0
        self.evicted = 0  # messages closed by max_open or idle, not by "removed"
        self.hosts: set[str] = set()  # the Postfix hosts of the messages it saw
        self.ready: list[Attempt] = []  # attempts to diagnose: the caller takes them
        # an attempt that needs nothing more than its scans (delivered in time, scanned)
        self.plain: Callable[[Attempt], bool] | None = None
        self.next_trim = 0.0

    # -- the clock ------------------------------------------------------------------------

    def advance(self, ts: float) -> None:
        """After a line the join took: the clock moves on to its time; attempts whose late
        window has passed go to ``ready``; windows are trimmed every 10 s of log time."""
        if ts > self.now:
            self.now = ts
        self.dirty = False
        now = self.now
        pending = self.pending
        late = self.s.late_window
        while pending and pending[0].end + late < now:
            self.ready.append(self._associate(pending.popleft()))
        if now >= self.next_trim:  # windows are minutes long: every 10 s is enough
            self._trim()
            self.next_trim = now + 10.0

    def finish(self) -> None:
        """End of input: every open scan closes; every pending attempt is ready."""
        for scan in list(self.children.values()):
            self._file(scan)
        self.children.clear()
        self.open_mids.clear()
        while self.pending:
            self.ready.append(self._associate(self.pending.popleft()))

    def hosts_seen(self) -> set[str]:
        """The host names of every Postfix message and spamd line it read."""
        return self.hosts | set(self.spamd.first)

    def open_messages(self) -> list[Message]:
        return list(self.messages.values())

    # -- Postfix --------------------------------------------------------------------------

    def message(self, key: Key, ts: float) -> Message:
        """The queue file a line names, now its latest line (new if not seen yet)."""
        messages = self.messages
        msg = messages.get(key)
        if msg is None:
            msg = messages[key] = Message(key, ts)
            self.hosts.add(key[0])
            if len(messages) > self.s.max_open:
                messages.popitem(last=False)
                self.evicted += 1
            return msg
        messages.move_to_end(key)
        msg.last = ts
        return msg

    def delivery(self, ev: Delivery) -> None:
        msg = self.message(ev.key, ev.ts)
        to = ev.to
        number = 1
        for a in msg.attempts:
            if a.delivery.to == to:
                number += 1
        attempt = Attempt(msg, ev, ev.ts - ev.delays[3], ev.ts, number)
        if self.warnings:
            attempt.warnings = self.warnings.pop((ev.key[0], ev.agent, ev.pid), ())
        msg.attempts.append(attempt)
        if len(msg.attempts) > 50:  # a message retried for days: keep the recent tries
            del msg.attempts[:10]
        if not self.pending:
            self.dirty = True
        self.pending.append(attempt)

    def removed(self, key: Key, ts: float) -> None:
        msg = self.messages.pop(key, None)
        if msg is not None:
            msg.removed = ts

    def warning(self, ev: AgentWarning) -> None:
        found = self.warnings.setdefault((ev.host, ev.agent, ev.pid), [])
        found.append(ev)
        if len(found) > 5 or len(self.warnings) > 10_000:
            self.warnings.clear()  # agents that warn without delivering: not ours to keep

    # -- spamd ------------------------------------------------------------------------------

    def spamd_line(self, kind: str, host: str, pid: str, ts: float, ln: Line) -> Scan | None:
        """Any spamd line the join reads: the host's log goes on, and the line joins its
        child's scan (a new one on a connection, or a message with no connection seen);
        the scan, or None when the child has none open."""
        spamd = self.spamd
        if ts > spamd.last.get(host, _NEVER):  # its log goes on later (or begins)
            spamd.saw(host, ts)
        child = (host, pid)
        children = self.children
        scan = children.get(child)
        if kind == "connection" or (scan is None and kind == "processing"):
            if scan is not None:
                self._file(scan)
                del children[child]
            scan = children[child] = Scan(host, pid, ts, [ln], ts)
            return scan
        if scan is None:
            return None
        children.move_to_end(child)
        scan.lines.append(ln)
        scan.last = ts
        return scan

    def server_changed(self, host: str, ts: float, started: bool, ln: Line) -> None:
        """``server started`` or ``server killed``: the scans its children had open ended
        with them (unfinished), so none of them holds a child any more."""
        self.spamd.changed(host, ts, started, ln)
        for child in [c for c in self.children if c[0] == host]:
            scan = self.children.pop(child)
            if scan.end is None:
                scan.end = ts
            self._file(scan)

    def processing(self, scan: Scan, mid: str, user: str) -> None:
        scan.mid, scan.user = mid, user
        self.open_mids[mid] = scan

    def error(self, scan: Scan, ev: SpamdEvent, ends: bool) -> None:
        """A scan's failure: SQL, its child's timeout, service unavailable, bad protocol."""
        scan.errors += (ev,)
        scan.end = ev.ts
        if ev.user and not scan.user:
            scan.user = ev.user
        if ends:
            self.end_scan(scan)

    def end_scan(self, scan: Scan) -> None:
        del self.children[(scan.host, scan.pid)]
        self._file(scan)

    def _file(self, scan: Scan) -> None:
        """A scan ended (or its child went quiet): kept for joining, by Message-ID, by
        user and by when it started."""
        mid, user = scan.mid, scan.user
        if mid and self.open_mids.get(mid) is scan:
            del self.open_mids[mid]
        if not (mid or scan.errors or scan.finished or user):  # not useful: a PING
            return
        self.scans_seen += 1
        if mid and mid != "(unknown)":
            _index(self.by_mid, mid, scan)
        if user:
            _index(self.by_user, user.lower(), scan)
        self.kept.append(scan)
        self.by_start.add(scan.start, scan)
        if self.on_scan is not None:
            self.on_scan(scan)

    def scans_between(self, a: float, b: float) -> list[Scan]:
        """Scans (filed or still running) that started between ``a`` and ``b``."""
        return self.by_start.window(a, b) + [s for s in self._open_scans()
                                             if a <= s.start <= b]

    def _trim(self) -> None:
        oldest = self.now - self.s.horizon
        while self.kept and (self.kept[0].start < oldest or len(self.kept) > self.s.max_scans):
            self._forget(self.kept.popleft())
        idle = self.now - self.s.idle
        messages = self.messages
        while messages:  # least recently seen first
            key, msg = next(iter(messages.items()))
            if msg.last >= idle:
                break
            del messages[key]
            self.evicted += 1
        stale = self.now - self.s.late_window
        children = self.children
        while children:  # children quiet that long ended (killed, or a PING): file them
            child, scan = next(iter(children.items()))
            if max(scan.last, scan.start) >= stale:
                break
            del children[child]
            self._file(scan)
        self.by_start.drop_before(oldest)
        for index in (self.maildrop, self.spamc, self.timed_wrappers):
            index.drop_before(oldest)
        self.spamd.trim(oldest)
        while self.wrapper_order and self.wrapper_order[0][0] < oldest:
            self.wrappers.pop(self.wrapper_order.popleft()[1], None)

    def _forget(self, scan: Scan) -> None:
        for index, name in ((self.by_mid, scan.mid), (self.by_user, scan.user.lower())):
            scans = index.get(name)
            if scans is not None:
                if scan in scans:
                    scans.remove(scan)
                if not scans:
                    del index[name]

    # -- the rest ---------------------------------------------------------------------------

    def wrapper(self, ev: WrapperEvent) -> None:
        if ev.qid:
            self.wrappers.setdefault(ev.qid, []).append(ev)
            self.wrapper_order.append((ev.ts, ev.qid))
        else:
            self.timed_wrappers.add(ev.ts, ev)

    # -- association ------------------------------------------------------------------------

    def _associate(self, attempt: Attempt) -> Attempt:
        skew = self.s.skew
        a, b = attempt.start - skew, self._upper(attempt)
        scans = attempt.scans = self._scans_by_mid(attempt, a, b)
        if scans:
            attempt.joined_by = "message-id"
            for scan in scans:
                scan.claimed = True
                scan.attempt = attempt
        if self.wrappers:
            wrappers = self.wrappers.get(attempt.message.key[1])
            if wrappers:
                attempt.wrappers = [w for w in wrappers if w.to == attempt.delivery.to]
        if self.plain is not None and self.plain(attempt):
            attempt.plain = True
            return attempt  # delivered in time, and scanned: nothing more to look at
        self._context(attempt, a, b)
        return attempt

    def _context(self, attempt: Attempt, a: float, b: float) -> None:
        """Everything else around an attempt in trouble: scans by user and time, the
        maildroprc's and spamc's lines, wrappers by time, what spamd's log says."""
        skew = self.s.skew
        if not attempt.scans:
            attempt.scans = self._scans_by_user(attempt, a, b)
            attempt.joined_by = "user and time" if attempt.scans else ""
            for scan in attempt.scans:
                scan.claimed = True
                scan.attempt = attempt
        users = _users(attempt.recipient)
        maildrop = _maildrop_events(self.maildrop, a, attempt.end + skew)
        attempt.maildrop = [m for m in maildrop if _mentions(m, users)]
        attempt.spamc = [e for e in self.spamc.window(a, attempt.end + skew)
                         if e.host == attempt.message.key[0]]
        attempt.wrappers = [*attempt.wrappers,
                            *self.timed_wrappers.window(a, attempt.end + skew)]
        attempt.spamd = self.spamd.context(attempt.start, attempt.end, self.now)
        attempt.spamd.busy = self._busy(attempt)
        if attempt.spamd.busy:
            attempt.spamd.silent = None  # quiet because its children were busy scanning

    def _busy(self, attempt: Attempt) -> list[Scan]:
        """Scans already running when this delivery's spamc connected, still running a
        moment later: they held spamd's children."""
        t = attempt.start + self.s.skew
        running = [s for s in self.scans_between(t - self.s.late_window, t)
                   if s not in attempt.scans
                   and (s.end if s.end is not None else self.now) > t]
        return sorted(running, key=lambda s: s.start)[:3]

    def _upper(self, attempt: Attempt) -> float:
        """Scans of this try start before the next try of the same recipient starts."""
        upper = attempt.end + self.s.late_window
        attempts = attempt.message.attempts
        if len(attempts) > 1:
            to = attempt.delivery.to
            for later in attempts:
                if later.delivery.to == to and later.number > attempt.number:
                    return min(upper, later.start - self.s.skew)
        return upper

    def _open_scans(self) -> list[Scan]:
        return [s for s in self.children.values() if s.useful]

    def _scans_by_mid(self, attempt: Attempt, a: float, b: float) -> list[Scan]:
        mid = attempt.message.mid
        if not mid:
            return []
        found = []
        for s in self.by_mid.get(mid, ()):  # a loop: a comprehension's frame costs more
            if not s.claimed and a <= s.start <= b:
                found.append(s)
        running = self.open_mids.get(mid)
        if running is not None and a <= running.start <= b:
            found.append(running)
        return found

    def _scans_by_user(self, attempt: Attempt, a: float, b: float) -> list[Scan]:
        found: list[Scan] = []
        for user in _users(attempt.recipient):
            found += [s for s in self.by_user.get(user, ())
                      if not s.claimed and a <= s.start <= b
                      and (not s.mid or s.mid == "(unknown)"
                           or (s.mid != attempt.message.mid and not attempt.message.mid))]
            found += [s for s in self._open_scans() if s.user.lower() == user and not s.mid
                      and a <= s.start <= b]
        return found[:1]  # by time alone, only the first is this attempt's


def _index(index: dict[str, list[Scan]], name: str, scan: Scan) -> None:
    found = index.get(name)
    if found is None:
        index[name] = [scan]
    else:
        found.append(scan)


def _maildrop_events(index: TimeIndex[MaildropEvent | RawLine], a: float,
                     b: float) -> list[MaildropEvent]:
    """The maildroprc's lines between ``a`` and ``b``, parsed when an attempt in trouble
    first asks for them, and kept parsed: an incident's attempts ask for the same minutes
    again and again."""
    i, j = index.bounds(a, b)
    items = index.items
    for k in range(i, j):
        item = items[k]
        if type(item) is tuple:
            items[k] = filter_event(*item)
    return items[i:j]  # type: ignore[return-value]
