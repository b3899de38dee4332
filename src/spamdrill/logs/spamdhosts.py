"""What spamd's log says around a delivery, per spamd host, sans-IO: when each host's log
starts and ends, its gaps (spamd silent), its stops and starts, its ``--max-children`` and
child-state lines; one ``SpamdContext`` per attempt in trouble (``join.Joiner``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spamdrill.logs.events import Line
from spamdrill.logs.timeindex import TimeIndex

if TYPE_CHECKING:
    from spamdrill.logs.join import Scan, Settings


@dataclass(slots=True, eq=False)
class SpamdContext:
    """What spamd's log said around one attempt, from every spamd host seen."""

    seen: bool = False  # any spamd line at all in the inputs
    covered: bool = False  # spamd lines before the attempt and after it
    down: list[Line] = field(default_factory=list)  # the server was stopped, not restarted
    # the first of ``down`` was never logged: a later start with no stop before it shows
    # the server died (its line is that start's)
    unlogged: bool = False
    silent: tuple[float, float] | None = None  # spamd logged nothing over the attempt
    max_children: list[Line] = field(default_factory=list)
    busy: list[Scan] = field(default_factory=list)  # scans holding children as it began
    all_busy: Line | None = None  # the last "child states" before it: no idle child


NO_CONTEXT = SpamdContext()  # an attempt not in trouble: shared, never changed


class SpamdHosts:
    """Per spamd host: when its log starts and ends, its gaps, its stops and starts, and
    its ``--max-children`` lines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.gaps: dict[str, TimeIndex[float]] = {}  # keyed by the gap's start: its end
        # per host: (when, started, its line, logged); a stop not logged has the line of
        # the start that showed it
        self.updown: dict[str, list[tuple[float, bool, Line, bool]]] = {}
        self.max_children = TimeIndex[Line]()
        self.states = TimeIndex[tuple[str, Line]]()  # prefork child states

    def saw(self, host: str, ts: float) -> None:
        """Any spamd line the join reads: the span of this host's log, and its gaps."""
        last = self.last.get(host)
        if last is None:
            self.first[host] = ts
            self.last[host] = ts
            self.gaps[host] = TimeIndex()
            return
        if ts > last:
            if ts - last > self.settings.gap:
                self.gaps[host].add(last, ts)
            self.last[host] = ts

    def changed(self, host: str, ts: float, started: bool, ln: Line) -> None:
        """``server started`` or ``server killed``."""
        changes = self.updown.setdefault(host, [])
        last = self.last.get(host)
        if started and last is not None and (not changes or changes[-1][1]):
            # started again with no stop logged since the last start (or since the log
            # began): the server before it died unlogged (SIGKILL, a crash) after its last
            # line; the new start is what shows it. Even a SIGTERM can leave no line:
            # SpamAssassin's Logger drops a line logged while another is being written
            # (lib/Mail/SpamAssassin/Logger.pm, log_message's $LOG_ENTERED guard), and
            # spamd's kill_handler logs "server killed" then exits, so a TERM handled in
            # the middle of "child states" loses both lines (spamd.raw, kill_handler)
            changes.append((last, False, ln, False))
        changes.append((ts, started, ln, True))
        if len(changes) > 64:  # the latest are what the joins ask about
            del changes[:32]

    def context(self, start: float, end: float, now: float) -> SpamdContext:
        ctx = SpamdContext(seen=bool(self.last))
        if not ctx.seen:
            return ctx
        hosts = list(self.last)
        ctx.covered = any(self.first[h] <= start and self.last[h] >= end for h in hosts)
        # stopped when it began (spamc connects first: a restart during the attempt came
        # too late for it), or before it ended
        downs = [self._down_at(h, start) or self._down_at(h, end) for h in hosts]
        if all(d is not None for d in downs):
            ctx.down = [d[0] for d in downs if d is not None]
            ctx.unlogged = downs[0] is not None and not downs[0][1]
        silent = [self._silent(h, start, end, now) for h in hosts]
        if all(s is not None for s in silent):
            ctx.silent = min(s for s in silent if s is not None)
        skew = self.settings.skew
        ctx.max_children = self.max_children.window(start - skew, end)[:3]
        last = self.states.last_before(start + skew)
        if last is not None and last[0] > start - self.settings.horizon / 4 and \
                last[1][0] and "I" not in last[1][0] and \
                not self._changed_since(last[0], last[1][1], start + skew):
            ctx.all_busy = last[1][1]
        return ctx

    def _changed_since(self, a: float, states: Line, b: float) -> bool:
        """A server stopped or started after the ``states`` line (by time, or by line in
        the same second), up to ``b``: those states describe children that are gone."""
        for changes in self.updown.values():
            for when, _, ln, _ in changes:
                if a < when <= b or (when == a and ln.src == states.src and ln.no > states.no):
                    return True
        return False

    def _down_at(self, host: str, ts: float) -> tuple[Line, bool] | None:
        """The stop in force at ``ts`` (its line, and whether spamd logged it), if any."""
        for when, started, line, logged in reversed(self.updown.get(host, ())):
            if when <= ts:
                return None if started else (line, logged)
        return None

    def _silent(self, host: str, start: float, end: float,
                now: float) -> tuple[float, float] | None:
        """The gap in this host's log that covers [start, end], if any."""
        gaps = self.gaps[host]
        found = gaps.last_before(start + self.settings.skew)
        if found is not None and found[1] >= end - self.settings.skew:
            return found[0], found[1]
        last = self.last[host]
        if last <= start + self.settings.skew and now >= end:
            return last, now  # nothing logged since
        return None

    def trim(self, before: float) -> None:
        for gaps in self.gaps.values():
            gaps.drop_before(before)
        self.max_children.drop_before(before)
        self.states.drop_before(before)
