"""Faults of the database server: limits, locks, killed connections, a frozen or killed
mariadbd; each kind a small class, and the process list sampled while it holds."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql

from spamdrill.drills.nemesis.base import Fault
from spamdrill.errors import SpamdrillError
from spamdrill.lab import faults as lab_faults
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import mariadb
from spamdrill.lab.config import LabConfig
from spamdrill.lab.procs import Journal
from spamdrill.load.spamc import Action


def _processlist(state: lab_ops.LabState) -> str:
    """What the database shows: SpamAssassin's connections and what they wait for."""
    try:
        with mariadb.admin(state.layout, timeout=1) as conn, conn.cursor() as cur:
            cur.execute("SELECT command, state, time, LEFT(info, 60) FROM "
                        "information_schema.processlist WHERE user = %s", (mariadb.SA_USER,))
            rows = cur.fetchall()
    except pymysql.MySQLError as exc:
        return f"process list unavailable: {exc.args[-1] if exc.args else exc}"
    if not rows:
        return "no SpamAssassin connections"
    counts: dict[str, int] = {}
    for command, st, _t, _info in rows:
        key = f"{command}/{st or '-'}"
        counts[key] = counts.get(key, 0) + 1
    longest = max(int(t or 0) for _c, _s, t, _i in rows)
    return (", ".join(f"{n}x {k}" for k, n in sorted(counts.items()))
            + f" (longest {longest} s)")


class _DbKind:
    """One kind of database fault: what injects it and what lifts it. ``reachable``: the
    server still answers the admin's process-list query while the fault holds."""

    reachable = True

    def inject(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> str:
        raise NotImplementedError

    def lift(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> None:
        """Undo ``inject``; runs once, and only after ``inject`` was attempted."""


class _MaxConnections(_DbKind):
    """MariaDB 10.11 will not set max_connections below 10 (the field report's 5 becomes
    10); the per-account max_user_connections limits SpamAssassin's one account to the
    number asked for."""

    def __init__(self) -> None:
        self.restore: list[tuple[str, str, object]] = []

    def inject(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> str:
        for name in ("max_connections", "max_user_connections"):
            self.restore.append((name, *lab_faults.set_db_global(
                journal, st.layout, name, f.max_connections)))
        return (f"max_connections = {f.max_connections} (MariaDB keeps >= 10), "
                f"max_user_connections = {f.max_connections}")

    def lift(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> None:
        for name, fid, old in self.restore:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                lab_faults.restore_db_global(journal, st.layout, fid, name, old)


class _Lock(_DbKind):
    """A lock held by a connection of this process (MariaDB drops it if we die)."""

    def __init__(self, statement: str) -> None:
        self.statement = statement
        self.conn: Any = None

    def inject(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> str:
        self.conn = mariadb.admin(st.layout)
        with self.conn.cursor() as cur:
            # what bounds a blocked query's wait (the field report asked which variable)
            cur.execute("SELECT @@GLOBAL.lock_wait_timeout")
            row = cur.fetchone()
            cur.execute(self.statement)
        wait = f"{row[0]} s" if row else "unknown"
        return f"lock held; lock_wait_timeout = {wait} bounds a blocked query's wait"

    def lift(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> None:
        if self.conn is not None:
            with contextlib.suppress(pymysql.MySQLError):
                self.conn.close()
            self.conn = None


class _CutMidQuery(_DbKind):
    """Every connection of SpamAssassin's killed as soon as it shows, between queries or
    inside one: its queries take milliseconds, so "mid-query" alone is rarely caught."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def inject(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> str:
        self.thread = threading.Thread(target=self._loop, args=(f, st), daemon=True)
        self.thread.start()
        return "killing SpamAssassin's connections mid-query"

    def _loop(self, f: DbFault, st: lab_ops.LabState) -> None:
        killed = mid_query = 0
        with contextlib.suppress(pymysql.MySQLError), mariadb.admin(st.layout) as c:
            while not self.stop.wait(0.01):
                with c.cursor() as cur:
                    cur.execute("SELECT id, command FROM information_schema.processlist "
                                "WHERE user = %s", (mariadb.SA_USER,))
                    for qid, command in cur.fetchall():
                        with contextlib.suppress(pymysql.MySQLError):
                            cur.execute(f"KILL CONNECTION {int(qid)}")
                            killed += 1
                            mid_query += command == "Query"
        f.snapshots.append(f"{killed} SpamAssassin connection(s) killed, {mid_query} of "
                           "them mid-query")

    def lift(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def _mariadbd(st: lab_ops.LabState) -> tuple[int, int | None]:
    pid, ticks = st.pids["mariadb"]
    assert isinstance(pid, int)
    return pid, ticks if isinstance(ticks, int) else None


class _Frozen(_DbKind):
    """mariadbd SIGSTOPped: the kernel completes handshakes, nothing answers."""

    reachable = False

    def __init__(self) -> None:
        self.fid = ""

    def inject(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> str:
        pid, ticks = _mariadbd(st)
        self.fid = lab_faults.pause(journal, pid, ticks)
        return f"mariadbd {pid} SIGSTOPped"

    def lift(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> None:
        if self.fid:
            lab_faults.resume(journal, self.fid, *_mariadbd(st))


class _Down(_DbKind):
    """mariadbd killed outright; clients are refused until lift restarts it."""

    reachable = False

    def inject(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> str:
        pid, _ = _mariadbd(st)
        os.killpg(pid, signal.SIGKILL)
        return f"mariadbd {pid} killed"

    def lift(self, f: DbFault, st: lab_ops.LabState, journal: Journal) -> None:
        if f.config is not None:
            lab_ops.start_mariadb(st, f.config)


def _bayes_write_lock() -> _DbKind:
    return _Lock("LOCK TABLES " + ", ".join(f"{mariadb.SA_DB}.{t} WRITE"
                                            for t in BAYES_TABLES))


DB_KINDS: dict[str, Callable[[], _DbKind]] = {
    "max-connections": _MaxConnections,
    "read-lock": lambda: _Lock("FLUSH TABLES WITH READ LOCK"),
    "write-lock": _bayes_write_lock,
    "cut-mid-query": _CutMidQuery,
    "frozen": _Frozen,
    "down": _Down,
}


@dataclass
class DbFault(Fault):
    """A database fault (one of ``KINDS``, each a small class above) on the load's clock,
    with the process list sampled while it holds.

    ``at``/``duration`` are drill seconds; a duration of 0 holds the fault to the end.
    Every injection is journaled by ``spamdrill.lab.faults`` or held by a connection that
    dies with this process, so nothing outlives a killed drill.
    """

    state: lab_ops.LabState | None = None
    config: LabConfig | None = None
    kind: str = "read-lock"
    at: float = 0.0
    duration: float = 0.0
    max_connections: int = 5
    snapshots: list[str] = field(default_factory=list)
    _impl: _DbKind | None = None
    _injected: bool = False
    _lifted: bool = False

    KINDS = tuple(DB_KINDS)

    def __post_init__(self) -> None:
        if self.kind not in DB_KINDS:
            raise SpamdrillError(f"unknown database fault {self.kind!r}",
                                 "known: " + ", ".join(DB_KINDS))
        self._impl = DB_KINDS[self.kind]()

    def actions(self) -> list[Action]:
        acts = [Action(self.at, f"db-{self.kind}", self._inject),
                Action(self.at + max(0.5, self.duration or 1.0) * 0.5, "db-processlist",
                       self._snapshot)]
        if self.duration:
            acts.append(Action(self.at + self.duration, f"db-{self.kind}-lifted", self._lift))
        return acts

    def _snapshot(self) -> str:
        assert self.state is not None and self._impl is not None
        if not self._impl.reachable:
            return "(server not reachable)"
        shown = _processlist(self.state)
        self.snapshots.append(shown)
        return shown

    def _inject(self) -> str:
        assert self.state is not None and self._impl is not None
        self._open(f"database {self.kind}")
        self._injected = True
        return self._impl.inject(self, self.state, Journal(self.state.layout.journal))

    def _lift(self) -> str:
        if self._lifted:
            return "already lifted"
        self._lifted = True
        st = self.state
        assert st is not None and self._impl is not None
        if self._injected and self._impl.reachable:
            # the queries still waiting when the fault ends outlived their spamc
            self.snapshots.append(f"at the end of the fault: {_processlist(st)}")
        if self._injected:
            self._impl.lift(self, st, Journal(st.layout.journal))
        self._close_all()
        return f"database {self.kind} lifted"

    def heal(self) -> None:
        if self.state is not None:
            self._lift()



BAYES_TABLES = ("bayes_token", "bayes_vars", "bayes_seen", "bayes_expire",
                "bayes_global_vars", "userpref")
