"""The narrow interface through which faults act on a lab (httpcore's shape: a backend
interface, a real backend, and a mock backend that lets logic be tested without sockets).

``LabControl`` is every verb a fault may use; ``RealLab`` carries them out on a running lab
(journaled through ``spamdrill.lab.faults`` where they must outlive this process);
``RecordingLab`` only records the calls and answers as told, so the unit tier checks each
fault's inject / lift / lift-again sequence in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pymysql

from spamdrill.lab import faults as lab_faults
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import mariadb
from spamdrill.lab.journal import DbVariable
from spamdrill.lab.proxy import Counters, FaultProxy, read_counters
from spamdrill.lab.state import Endpoint, LabState, ProcRef
from spamdrill.lab.toxics import Shape


class Undo(Protocol):
    """A fault in effect that ``heal()`` undoes (once; again is a no-op)."""

    def heal(self) -> None: ...


class Proxy(Protocol):
    """A TCP fault proxy in this process."""

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def counters(self) -> Counters: ...

    def set_shape(self, shape: Shape) -> None: ...

    def close(self) -> None: ...


class LabControl(Protocol):
    # spamd
    def spamd_endpoint(self) -> Endpoint: ...
    def stop_spamd(self) -> Undo: ...
    def start_spamd(self) -> None: ...  # not awaited: a drill sends mail while it starts
    def spamd_answers(self) -> bool: ...  # PING: PONG
    def spamd_log(self) -> str: ...
    # where the lab's clients connect (a proxy in front of spamd moves them)
    def client_endpoint(self) -> Endpoint: ...
    def proxy_before_spamd(self) -> Proxy: ...
    # database
    def db_endpoint(self) -> Endpoint: ...
    def db_admin(self) -> Any: ...  # a pymysql connection of this process (its locks die with it)
    def set_db_variable(self, name: DbVariable, value: int) -> Undo: ...
    def db_variable(self, name: DbVariable) -> int | None: ...
    def pause_db(self) -> Undo: ...
    def kill_db(self) -> Undo: ...
    def start_db(self) -> None: ...
    def db_process_state(self) -> str: ...  # /proc state letter; "" when gone
    def shape_db_link(self, shape: Shape) -> Undo: ...
    def db_link_counters(self) -> Counters | None: ...
    # DNS and packets
    def dns_rules(self, rules: list[tuple[str, str, float]]) -> Undo: ...
    def dns_mark(self) -> int: ...
    def dns_actions_since(self, mark: int) -> dict[str, int]: ...
    def packet_rule(self, role: str, action: str, established: bool) -> Undo: ...
    def packet_count(self, role: str) -> int | None: ...
    # the recipients' mailboxes
    def fill_quota(self, user: str) -> Undo: ...
    def quota_usage(self, user: str) -> tuple[int, int | None]: ...
    def user_known(self, user: str) -> bool: ...  # to maildrop -d: a passwd entry
    # any endpoint
    def accepts(self, ep: Endpoint) -> bool: ...


def _accepts(ep: Endpoint, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ep.host, ep.port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class _InProcessProxy:
    proxy: FaultProxy

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.proxy.host, self.proxy.port)

    @property
    def counters(self) -> Counters:
        return self.proxy.counters

    def set_shape(self, shape: Shape) -> None:
        self.proxy.set_shape(shape)

    def close(self) -> None:
        self.proxy.close()


class RealLab:
    """``LabControl`` on a running lab."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.journal = state.journal
        self._clients_to: Endpoint | None = None

    def spamd_endpoint(self) -> Endpoint:
        return self.state.spamd

    def stop_spamd(self) -> Undo:
        undo = lab_faults.stopped(self.journal, "spamd")
        lab_ops.stop_spamd(self.state)
        return undo

    def start_spamd(self) -> None:
        lab_ops.start_spamd(self.state, wait=False)

    def spamd_answers(self) -> bool:
        from spamdrill.lab import spamd

        return spamd.ping(self.state.spamd.host, self.state.spamd.port)

    def spamd_log(self) -> str:
        try:
            return self.state.layout.spamd_log.read_text(errors="replace")
        except OSError:
            return ""

    def client_endpoint(self) -> Endpoint:
        return self._clients_to or self.state.spamd

    def proxy_before_spamd(self) -> Proxy:
        """A proxy in this process on the control link's address when the clients live on
        a host of their own, else on loopback; the clients are pointed at it."""
        net = self.state.network
        here = net.ip("control") if net is not None else "127.0.0.1"
        spamd = self.state.spamd
        proxy = _InProcessProxy(FaultProxy((spamd.host, spamd.port), listen=(here, 0)))
        self._clients_to = proxy.endpoint
        return proxy

    def db_endpoint(self) -> Endpoint:
        return self.state.db

    def db_admin(self) -> Any:
        return mariadb.admin(self.state.layout)

    def set_db_variable(self, name: DbVariable, value: int) -> Undo:
        return lab_faults.set_db_global(self.journal, name, value)

    def db_variable(self, name: DbVariable) -> int | None:
        with contextlib.suppress(pymysql.MySQLError), \
                mariadb.admin(self.state.layout, timeout=1) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT @@GLOBAL.{name}")
            row = cur.fetchone()
            return int(row[0]) if row else None
        return None

    def _db_ref(self) -> ProcRef:
        return self.state.pids["mariadb"]

    def pause_db(self) -> Undo:
        ref = self._db_ref()
        return lab_faults.pause(self.journal, ref.pid, ref.ticks)

    def kill_db(self) -> Undo:
        import signal

        undo = lab_faults.stopped(self.journal, "mariadb")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._db_ref().pid, signal.SIGKILL)
        return undo

    def start_db(self) -> None:
        lab_ops.start_mariadb(self.state)

    def db_process_state(self) -> str:
        from spamdrill.lab.procs import proc_state

        ref = self._db_ref()
        return proc_state(ref.pid, ref.ticks)

    def shape_db_link(self, shape: Shape) -> Undo:
        return lab_faults.proxy_shape(self.journal, shape)

    def db_link_counters(self) -> Counters | None:
        return read_counters(self.state.layout.db_proxy_shape)

    def dns_rules(self, rules: list[tuple[str, str, float]]) -> Undo:
        return lab_faults.dns_rules(self.journal, rules)

    def dns_mark(self) -> int:
        try:
            return self.state.layout.dns_log.stat().st_size
        except OSError:
            return 0

    def dns_actions_since(self, mark: int) -> dict[str, int]:
        """What the lab DNS did with each query logged after ``mark`` (a byte offset)."""
        counts: dict[str, int] = {}
        try:
            with self.state.layout.dns_log.open("rb") as fh:
                fh.seek(mark)
                lines = fh.read().splitlines()
        except OSError:
            return counts
        for line in lines:
            with contextlib.suppress(ValueError):
                action = str(json.loads(line).get("action", ""))
                if action:
                    counts[action] = counts.get(action, 0) + 1
        return counts

    def _ns(self, role: str) -> str:
        from spamdrill.errors import SpamdrillError

        net = self.state.network
        if net is None:
            raise SpamdrillError(f"packet faults need the {role} on a host of its own",
                                 'set [lab.topology] kind = "hosts" (root only)')
        return net.host(role).ns

    def packet_rule(self, role: str, action: str, established: bool) -> Undo:
        port = self.state.spamd.port if role == "spamd" else self.state.db.port
        return lab_faults.packet_rule(self.journal, self._ns(role), port, action,
                                      established)

    def packet_count(self, role: str) -> int | None:
        """Packets the lab's nftables rule on ``role``'s host matched (its counter)."""
        from spamdrill.lab import netns

        return netns.rule_packets(self._ns(role))

    def fill_quota(self, user: str) -> Undo:
        return lab_faults.fill_quota(self.journal, user)

    def quota_usage(self, user: str) -> tuple[int, int | None]:
        from spamdrill.lab import maildir, safefs

        layout = self.state.layout
        try:  # the pipe user's Maildir: nothing there is followed
            return maildir.usage(safefs.read_text(
                layout.root, layout.maildir(user) / "maildirsize"))
        except OSError:
            return 0, None

    def user_known(self, user: str) -> bool:
        """maildrop -d asks courier-authlib (no daemon here: it says so and goes on),
        then the passwd database (getpwnam)."""
        import pwd

        try:
            pwd.getpwnam(user)
        except KeyError:
            return False
        return True

    def accepts(self, ep: Endpoint) -> bool:
        return _accepts(ep)


@dataclass
class _RecordedUndo:
    calls: list[str]
    what: str
    healed: bool = False

    def heal(self) -> None:
        if not self.healed:
            self.calls.append(f"heal {self.what}")
            self.healed = True


@dataclass
class _RecordedProxy:
    calls: list[str]
    endpoint: Endpoint = field(default_factory=lambda: Endpoint("127.0.0.1", 1))
    counters: Counters = field(default_factory=Counters)

    def set_shape(self, shape: Shape) -> None:
        self.calls.append(f"proxy shape {shape.describe()}")
        if shape.upstream or shape.downstream:
            self.counters.shaped_chunks += 1
        if not shape.enabled:
            self.counters.down_spells += 1

    def close(self) -> None:
        self.calls.append("proxy close")


@dataclass
class RecordingLab:
    """A ``LabControl`` that does nothing but record each call; ``answers`` sets what its
    queries return (``accepts``, ``db_process_state``, ``dns_actions``, ...)."""

    calls: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)

    def _undo(self, what: str) -> Undo:
        self.calls.append(what)
        return _RecordedUndo(self.calls, what)

    def spamd_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 783)

    def stop_spamd(self) -> Undo:
        return self._undo("stop spamd")

    def start_spamd(self) -> None:
        self.calls.append("start spamd")

    def spamd_answers(self) -> bool:
        return bool(self.answers.get("spamd_answers", True))

    def spamd_log(self) -> str:
        return str(self.answers.get("spamd_log", ""))

    def client_endpoint(self) -> Endpoint:
        return self.spamd_endpoint()

    def proxy_before_spamd(self) -> Proxy:
        self.calls.append("proxy before spamd")
        return _RecordedProxy(self.calls)

    def db_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 3306)

    def db_admin(self) -> Any:
        self.calls.append("db admin")
        return _RecordedConnection(self)

    def set_db_variable(self, name: DbVariable, value: int) -> Undo:
        return self._undo(f"set {name} {value}")

    def db_variable(self, name: DbVariable) -> int | None:
        value = self.answers.get(name)
        return int(value) if value is not None else None

    def pause_db(self) -> Undo:
        return self._undo("pause db")

    def kill_db(self) -> Undo:
        return self._undo("kill db")

    def start_db(self) -> None:
        self.calls.append("start db")

    def db_process_state(self) -> str:
        return str(self.answers.get("db_process_state", "S"))

    def shape_db_link(self, shape: Shape) -> Undo:
        return self._undo(f"shape db link {shape.describe()}")

    def db_link_counters(self) -> Counters | None:
        value = self.answers.get("db_link_counters")
        return value if isinstance(value, Counters) else None

    def dns_rules(self, rules: list[tuple[str, str, float]]) -> Undo:
        return self._undo("dns " + ", ".join(f"{n} {m}" for n, m, _ in rules))

    def dns_mark(self) -> int:
        return 0

    def dns_actions_since(self, mark: int) -> dict[str, int]:
        return dict(self.answers.get("dns_actions", {}))

    def packet_rule(self, role: str, action: str, established: bool) -> Undo:
        return self._undo(f"packets {role} {action}")

    def packet_count(self, role: str) -> int | None:
        value = self.answers.get("packet_count")
        return int(value) if value is not None else None

    def fill_quota(self, user: str) -> Undo:
        return self._undo(f"fill quota {user}")

    def quota_usage(self, user: str) -> tuple[int, int | None]:
        held, limit = self.answers.get("quota_usage", (0, None))
        return int(held), limit

    def user_known(self, user: str) -> bool:
        self.calls.append(f"look up {user}")
        return bool(self.answers.get("user_known", False))

    def accepts(self, ep: Endpoint) -> bool:
        return bool(self.answers.get("accepts", True))


@dataclass
class _RecordedConnection:
    """What ``RecordingLab.db_admin`` hands out: statements recorded, rows as answered."""

    lab: RecordingLab

    def __enter__(self) -> _RecordedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def cursor(self) -> Iterator[_RecordedCursor]:
        yield _RecordedCursor(self.lab)

    def close(self) -> None:
        self.lab.calls.append("db close")


@dataclass
class _RecordedCursor:
    lab: RecordingLab
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def execute(self, sql: str, args: object = None) -> int:
        self.lab.calls.append(f"sql {sql.split()[0]}")
        self.rows = list(self.lab.answers.get("rows", {}).get(sql.split()[0].upper(), []))
        return len(self.rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

