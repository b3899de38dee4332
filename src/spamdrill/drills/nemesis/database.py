"""Faults of the database server, one kind each: limits, locks, killed connections, a
frozen or killed mariadbd. Each samples what the server shows while it holds (the process
list) and keeps that as its evidence."""

from __future__ import annotations

import contextlib
import threading
from typing import Annotated

import msgspec

from spamdrill.drills.control import DbLock, DbUnavailable, LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec, until
from spamdrill.drills.timing import Scale
from spamdrill.evidence import NOT_OCCURRED, FaultReport
from spamdrill.vocab import Mode


def processlist(ctl: LabControl) -> str:
    """What the database shows: SpamAssassin's connections and what they wait for."""
    try:
        with ctl.db_sessions() as sessions:
            rows = sessions.list()
    except DbUnavailable as exc:
        return f"process list unavailable: {exc}"
    if not rows:
        return "no SpamAssassin connections"
    counts: dict[str, int] = {}
    for row in rows:
        key = f"{row.command}/{row.state or '-'}"
        counts[key] = counts.get(key, 0) + 1
    longest = max(row.seconds for row in rows)
    return (", ".join(f"{n}x {k}" for k, n in sorted(counts.items()))
            + f" (longest {longest} s)")


class DbFault(Fault):
    """Base of the database faults: keeps the process-list samples."""

    def __init__(self) -> None:
        self.snapshots: list[str] = []

    def notes(self) -> list[str]:
        """What the database showed, first and last (it is sampled every second)."""
        shown = self.snapshots if len(self.snapshots) <= 3 else \
            [self.snapshots[0], "...", *self.snapshots[-2:]]
        return [f"database showed: {s}" for s in shown if s != "..."]


class MaxConnectionsSpec(FaultSpec, tag="db-max-connections", frozen=True):
    """MariaDB 10.11 will not set max_connections below 10 (the field report's 5 becomes
    10); the per-account max_user_connections limits SpamAssassin's one account to the
    number asked for."""

    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 5

    def failure_mode(self) -> Mode:
        return Mode.DB_TOO_MANY_CONNECTIONS

    def build(self, scale: Scale) -> Fault:
        return MaxConnections(self.max_connections)


class MaxConnections(DbFault):
    """The limit's evidence is what it did, not its setting: refusals in spamd's log.
    The lift waits (bounded) for the first one, since spamd's children reach SQL only
    once they have parsed a request, which may be after a compressed load has ended."""

    name = "db-max-connections"
    REFUSAL = "max_user_connections"  # in spamd's "SQL error: User ... already has more
    REFUSAL_WITHIN_S = 30.0  # than 'max_user_connections' active connections"

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._undo: list[Undo] = []
        self._seen: int | None = None
        self._refusals = 0

    def inject(self, ctl: LabControl) -> str:
        for var in ("max_connections", "max_user_connections"):
            self._undo.append(ctl.set_db_variable(var, self.limit))
        self._seen = ctl.db_variable("max_user_connections")
        return (f"max_connections = {self.limit} (MariaDB keeps >= 10), "
                f"max_user_connections = {self.limit}")

    def lift(self, ctl: LabControl) -> str:
        undo, self._undo = self._undo, []
        if undo:
            until(lambda: self.REFUSAL in ctl.spamd_log(), self.REFUSAL_WITHIN_S)
            self._refusals = ctl.spamd_log().count(self.REFUSAL)
        for u in reversed(undo):
            with contextlib.suppress(DbUnavailable, OSError):
                u.heal()
        return "limits restored" if undo else "not in effect"

    def evidence(self, ctl: LabControl) -> FaultReport:
        detail = (f"the server read back max_user_connections = {self._seen}; spamd logged "
                  f"{self._refusals} refusal(s) for it while it held")
        if self._seen == self.limit and not self._refusals:
            detail = NOT_OCCURRED + detail
        return self.report(self._seen == self.limit and self._refusals > 0, detail)


class LockSpec(FaultSpec, tag="db-read-lock", frozen=True):
    """``FLUSH TABLES WITH READ LOCK`` held by a connection of the drill's own."""

    def failure_mode(self) -> Mode:
        return Mode.DB_LOCKED

    def build(self, scale: Scale) -> Fault:
        return Lock("db-read-lock", "global-read")


class WriteLockSpec(FaultSpec, tag="db-write-lock", frozen=True):
    """``LOCK TABLES … WRITE`` on the Bayes and user-pref tables: readers block too."""

    def failure_mode(self) -> Mode:
        return Mode.DB_LOCKED

    def build(self, scale: Scale) -> Fault:
        return Lock("db-write-lock", "bayes-write")


class Lock(DbFault):
    """A lock held by a connection of this process (MariaDB drops it if we die)."""

    def __init__(self, name: str, lock: DbLock) -> None:
        super().__init__()
        self.name = name
        self.lock = lock
        self.held: Undo | None = None

    def inject(self, ctl: LabControl) -> str:
        # what bounds a blocked query's wait (the field report asked which variable)
        seconds = ctl.db_variable("lock_wait_timeout")
        self.held = ctl.hold_db_lock(self.lock)
        wait = "unknown" if seconds is None else f"{seconds} s"
        return f"lock held; lock_wait_timeout = {wait} bounds a blocked query's wait"

    def observe(self, ctl: LabControl) -> None:
        if self.held is not None:
            self.snapshots.append(processlist(ctl))

    def lift(self, ctl: LabControl) -> str:
        if self.held is None:
            return "not held"
        # the queries still waiting when the fault ends outlived their spamc
        self.snapshots.append(f"at the end of the fault: {processlist(ctl)}")
        self.held.heal()
        self.held = None
        return "lock released"

    def evidence(self, ctl: LabControl) -> FaultReport:
        waiting = [s for s in self.snapshots if "Waiting for" in s]
        return self.report(bool(waiting), waiting[0] if waiting else
                           "no SpamAssassin query was seen waiting on the lock: "
                           + ("; ".join(self.snapshots) or "never sampled"))


class CutMidQuerySpec(FaultSpec, tag="db-cut-mid-query", frozen=True):
    """Every connection of SpamAssassin's killed as soon as it shows, its queries caught
    mid-way by a write lock on the user-pref table."""

    def failure_mode(self) -> Mode:
        return Mode.DB_REFUSED

    def build(self, scale: Scale) -> Fault:
        return CutMidQuery()


class CutMidQuery(DbFault):
    """Kills SpamAssassin's connections, and every one of its queries mid-way.

    SpamAssassin's queries take milliseconds, so a killer that only polls catches one
    mid-query by luck: which of spamd's queries it hit decided the finding (a killed Bayes
    query is survived and the message scanned; a killed user-pref query is "service
    unavailable" and the message unscanned), and full runs disagreed. A write lock on
    ``userpref``, held by a connection of the fault's own, makes spamd's first query of each
    scan wait until it is killed: mid-query every time, as the field report's "DB
    connection goes away in the middle of doing things" asks."""

    name = "db-cut-mid-query"

    def __init__(self) -> None:
        super().__init__()
        self.killed = self.mid_query = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: Undo | None = None

    def inject(self, ctl: LabControl) -> str:
        # the lock first, before any mail can pass: held until this connection closes
        # (MariaDB drops it if this process dies)
        self._lock = ctl.hold_db_lock("userpref-write")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(ctl,), daemon=True)
        self._thread.start()
        return "holding a write lock on userpref, killing SpamAssassin's connections mid-query"

    def _loop(self, ctl: LabControl) -> None:
        with contextlib.suppress(DbUnavailable), ctl.db_sessions() as sessions:
            while True:  # one pass at least, however soon the lift comes
                for s in sessions.list():
                    if sessions.kill(s.id):
                        self.killed += 1
                        self.mid_query += s.command == "Query"
                if self._stop.wait(0.01):
                    return

    def lift(self, ctl: LabControl) -> str:
        if self._thread is None:
            return "not running"
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        if self._lock is not None:
            self._lock.heal()
            self._lock = None
        self.snapshots.append(f"{self.killed} SpamAssassin connection(s) killed, "
                              f"{self.mid_query} of them mid-query")
        return "stopped killing connections; lock released"

    def evidence(self, ctl: LabControl) -> FaultReport:
        # a query killed mid-way is the fault; connections killed between queries alone
        # would be a different test
        return self.report(self.mid_query > 0, f"{self.killed} connection(s) killed, "
                           f"{self.mid_query} mid-query")


class FrozenSpec(FaultSpec, tag="db-frozen", frozen=True):
    """mariadbd SIGSTOPped: the kernel completes handshakes, nothing answers."""

    def failure_mode(self) -> Mode:
        return Mode.DB_UNREACHABLE

    def build(self, scale: Scale) -> Fault:
        return Frozen()


class Frozen(DbFault):
    name = "db-frozen"

    def __init__(self) -> None:
        super().__init__()
        self._undo: Undo | None = None
        self.states: list[str] = []

    def inject(self, ctl: LabControl) -> str:
        self._undo = ctl.pause_db()
        return "mariadbd SIGSTOPped"

    def observe(self, ctl: LabControl) -> None:
        if self._undo is not None:
            self.states.append(ctl.db_process_state())

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not frozen"
        self.states.append(ctl.db_process_state())  # still stopped up to this moment
        self._undo.heal()
        self._undo = None
        return "mariadbd continued (SIGCONT)"

    def evidence(self, ctl: LabControl) -> FaultReport:
        stopped = self.states.count("T")
        return self.report(stopped > 0, f"mariadbd seen stopped (state T) {stopped} of "
                           f"{len(self.states)} time(s) looked")


class DownSpec(FaultSpec, tag="db-down", frozen=True):
    """mariadbd killed outright; clients are refused until the lift starts it again."""

    def failure_mode(self) -> Mode:
        return Mode.DB_REFUSED

    def build(self, scale: Scale) -> Fault:
        return Down()


class Down(DbFault):
    name = "db-down"
    REFUSED_WITHIN = 5.0  # seconds for a SIGKILLed mariadbd's port to refuse

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[bool] = []
        self._undo: Undo | None = None

    def inject(self, ctl: LabControl) -> str:
        self._undo = ctl.kill_db()
        ep = ctl.db_endpoint()
        self.refused.append(until(lambda: not ctl.accepts(ep), self.REFUSED_WITHIN))
        return "mariadbd killed"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not down"
        self._undo.heal()
        self._undo = None
        ctl.start_db()
        return "mariadbd started again"

    def evidence(self, ctl: LabControl) -> FaultReport:
        return self.report(any(self.refused), "the database's port refused connections "
                           "once mariadbd was killed" if any(self.refused)
                           else "the database's port still accepted connections")
