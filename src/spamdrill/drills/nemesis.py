"""Faults on the spamd side, each with inject and heal, recorded as events in the history.

Injection runs on the load's clock (``load.spamc.Action``) and never blocks the release of
messages: slow work (spamd's SIGTERM shutdown) happens in a thread. ``heal()`` always runs
(the runner calls it in a ``finally``), so a drill never leaves spamd stopped or a fake
listening.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql

from spamdrill.errors import SpamdrillError
from spamdrill.history import FaultEvent
from spamdrill.lab import faults as lab_faults
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import mariadb
from spamdrill.lab.config import LabConfig
from spamdrill.lab.procs import Journal
from spamdrill.lab.proxy import FaultProxy, Shape
from spamdrill.load.spamc import Action


@dataclass
class Fault:
    """Base: no fault."""

    name: str = "none"
    events: list[FaultEvent] = field(default_factory=list)

    def before_load(self) -> None:
        """Set-up that must hold before the first message is released."""

    def actions(self) -> list[Action]:
        return []

    def heal(self) -> None:
        """Undo everything; idempotent."""

    def _open(self, detail: str) -> FaultEvent:
        ev = FaultEvent(self.name, time.monotonic_ns(), None, detail)
        self.events.append(ev)
        return ev

    def _close_all(self) -> None:
        now = time.monotonic_ns()
        for ev in self.events:
            if ev.end_ns is None:
                ev.end_ns = now


@dataclass
class SpamdDown(Fault):
    """spamd not running for the whole load."""

    state: lab_ops.LabState | None = None
    config: LabConfig | None = None

    def before_load(self) -> None:
        assert self.state is not None
        lab_ops.stop_spamd(self.state)
        self._open("spamd stopped before the load")

    def heal(self) -> None:
        if self.state is not None and self.config is not None and \
                "spamd" not in self.state.pids:
            lab_ops.start_spamd(self.state, self.config, wait=True)
        self._close_all()


@dataclass
class SpamdStop(SpamdDown):
    """SIGTERM to spamd ``at`` seconds into the load (shutdown in a thread)."""

    at: float = 0.0
    _thread: threading.Thread | None = None

    def before_load(self) -> None:
        pass

    def actions(self) -> list[Action]:
        def inject() -> str:
            assert self.state is not None
            self._open("SIGTERM to spamd during the load")
            state = self.state
            self._thread = threading.Thread(target=lab_ops.stop_spamd, args=(state,),
                                            daemon=True)
            self._thread.start()
            return "SIGTERM sent"
        return [Action(self.at, "spamd-stop", inject)]

    def heal(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
        super().heal()


@dataclass
class SpamdStart(SpamdDown):
    """spamd stopped before the load and started (not awaited) ``at`` seconds into it."""

    at: float = 0.0

    def actions(self) -> list[Action]:
        def inject() -> str:
            assert self.state is not None and self.config is not None
            lab_ops.start_spamd(self.state, self.config, wait=False)
            self._close_all()
            self._open("spamd starting during the load")
            return "spamd started"
        return [Action(self.at, "spamd-start", inject)]


@dataclass
class StallingClients(Fault):
    """Clients that connect to spamd and stall mid-request, holding a child until spamd's
    --timeout-tcp gives up on them. Records how long spamd took to close each."""

    host: str = "127.0.0.1"
    port: int = 0
    count: int = 1
    at: float = 0.0
    closed_after: list[float] = field(default_factory=list)
    _socks: list[socket.socket] = field(default_factory=list)

    def actions(self) -> list[Action]:
        def inject() -> str:
            for _ in range(self.count):
                s = socket.create_connection((self.host, self.port), timeout=5)
                s.sendall(b"CHECK SPAMC/1.5\r\n")  # ...and nothing more
                self._socks.append(s)
                threading.Thread(target=self._watch, args=(s, time.monotonic()),
                                 daemon=True).start()
            self._open(f"{self.count} client(s) stalled mid-request")
            return f"{self.count} stalled"
        return [Action(self.at, "stalling-clients", inject)]

    def _watch(self, s: socket.socket, t0: float) -> None:
        s.settimeout(None)
        with contextlib.suppress(OSError):
            while s.recv(4096):
                pass
            self.closed_after.append(time.monotonic() - t0)

    def heal(self) -> None:
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        self._close_all()


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


PACKET_HOSTS = ("spamd", "db")


@dataclass
class PacketFault(Fault):
    """nftables on a host of the multi-host topology, for TCP to its service's port
    (spamd's or MariaDB's): dropped, reset, or answered with ICMP port unreachable; new
    connections only or established ones too. Journaled; the rules also die with the
    namespace."""

    state: lab_ops.LabState | None = None
    host: str = "db"
    action: str = "drop"
    established: bool = False
    at: float = 0.0
    duration: float = 0.0
    _ns: str = ""
    _fid: str = ""

    def before_load(self) -> None:
        st = self.state
        assert st is not None
        net = st.network
        if net is None:
            raise SpamdrillError(f"packet faults need the {self.host} on a host of its own",
                                 'set [lab.topology] kind = "hosts" (root only)')
        self._ns = net.host(self.host).ns
        if self.at <= 0:
            self._inject()

    def actions(self) -> list[Action]:
        acts = [] if self.at <= 0 else [Action(self.at, f"packets-{self.action}",
                                               self._inject)]
        if self.duration:
            acts.append(Action(self.at + self.duration, "packets-lifted", self._lift))
        return acts

    def _inject(self) -> str:
        st = self.state
        assert st is not None
        port = st.spamd_port if self.host == "spamd" else st.db_port
        self._fid = lab_faults.packet_rule(Journal(st.layout.journal), self._ns, port,
                                           self.action, self.established)
        which = "all" if self.established else "new"
        detail = f"nftables in {self._ns}: {self.action} {which} connections to :{port}"
        self._open(detail)
        return detail

    def _lift(self) -> str:
        if self._fid and self.state is not None:
            lab_faults.clear_packet_rule(Journal(self.state.layout.journal), self._ns,
                                         self._fid)
            self._fid = ""
        self._close_all()
        return "packet rule removed"

    def heal(self) -> None:
        self._lift()


BAYES_TABLES = ("bayes_token", "bayes_vars", "bayes_seen", "bayes_expire",
                "bayes_global_vars", "userpref")


@dataclass
class DnsFault(Fault):
    """The lab DNS switched per name: ``rules`` of (name, mode, delay drill s)."""

    state: lab_ops.LabState | None = None
    rules: list[tuple[str, str, float]] = field(default_factory=list)
    at: float = 0.0
    _fid: str = ""

    def before_load(self) -> None:
        if self.at <= 0:
            self._apply()

    def actions(self) -> list[Action]:
        return [] if self.at <= 0 else [Action(self.at, "dns", lambda: self._apply())]

    def _apply(self) -> str:
        assert self.state is not None
        self._fid = lab_faults.dns_rules(Journal(self.state.layout.journal),
                                         self.state.layout, self.rules)
        detail = ", ".join(f"{n}: {m}" + (f" {d:g}s" if m == "delay" else "")
                           for n, m, d in self.rules)
        self._open(f"DNS {detail}")
        return detail

    def heal(self) -> None:
        if self.state is not None and self._fid:
            lab_faults.clear_dns(Journal(self.state.layout.journal), self.state.layout,
                                 self._fid)
            self._fid = ""
        self._close_all()


PROXY_LINKS = ("spamc-spamd", "spamd-db")


@dataclass
class ProxyFault(Fault):
    """The TCP fault proxy on one link, shaped from ``at`` to the end of the load.

    ``spamc-spamd``: a proxy in this process, which spamc is pointed at instead of spamd
    (on the control link's address when the clients live on a host of their own).
    ``spamd-db``: the lab's own proxy process, through which spamd's DSN always goes when
    ``[lab.database] proxy = true``; its shape is switched through a journaled file.
    """

    state: lab_ops.LabState | None = None
    shape: Shape = field(default_factory=Shape)
    link: str = "spamc-spamd"
    at: float = 0.0
    proxy: FaultProxy | None = None
    _fid: str = ""

    def start(self) -> tuple[str, int] | None:
        """Where spamc must connect instead of spamd, if this proxy sits in front of it."""
        st = self.state
        assert st is not None
        if self.link == "spamd-db":
            if not st.db_proxy_port:
                raise SpamdrillError("a spamd-db proxy fault needs the lab's database proxy",
                                     "set [lab.database] proxy = true in the scenario")
            return None
        net = st.network
        here = net.ip("control") if net is not None else "127.0.0.1"
        self.proxy = FaultProxy((st.spamd_host, st.spamd_port), listen=(here, 0))
        return here, self.proxy.port

    def before_load(self) -> None:
        if self.at <= 0:
            self._apply()

    def actions(self) -> list[Action]:
        return [] if self.at <= 0 else [Action(self.at, f"proxy-{self.shape.mode}",
                                               self._apply)]

    def _apply(self) -> str:
        st = self.state
        assert st is not None
        sh = self.shape
        if self.proxy is not None:
            self.proxy.set_shape(sh)
        else:
            self._fid = lab_faults.proxy_shape(Journal(st.layout.journal),
                                               st.layout.db_proxy_shape, sh)
        detail = (f"proxy {self.link} {sh.mode}: latency {sh.latency:g} s "
                  f"(jitter {sh.jitter:g} s), rate "
                  f"{sh.rate:g} B/s, slice {sh.slice} every {sh.interval:g} s, "
                  f"after {sh.after} B")
        self._open(detail)
        return detail

    def heal(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self._fid and self.state is not None:
            lab_faults.clear_proxy(Journal(self.state.layout.journal),
                                   self.state.layout.db_proxy_shape, self._fid)
            self._fid = ""
        self._close_all()
