"""The narrow interface through which faults act on a lab (httpcore's shape: a backend
interface, a real backend, and a mock backend that lets logic be tested without sockets).

``LabControl`` is every verb a fault may use, each an intent (hold a lock, list and kill
SpamAssassin's sessions, set a global), never a handle on a program (no SQL crosses it);
``RealLab`` carries them out on a running lab (journaled through ``spamdrill.lab.faults``
where they must outlive this process); ``drills.recording.RecordingLab`` records the calls
and models their results, so the unit tier checks each fault's inject / lift / lift-again
sequence in milliseconds; one contract test (``tests/test_lab_contract.py``) runs the same
verbs on both and compares what they answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from typing import Literal, Protocol

import pymysql

from spamdrill.lab import dbadmin
from spamdrill.lab import faults as lab_faults
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.dbadmin import DbLock, DbReadable, DbSession, DbUnavailable
from spamdrill.lab.journal import DbVariable
from spamdrill.lab.proxy import Counters, FaultProxy, read_counters
from spamdrill.lab.state import Endpoint, LabState, ProcRef
from spamdrill.lab.toxics import Shape

Host = Literal["spamd", "db"]  # a host of the multi-host topology a packet fault acts on
PacketAction = Literal["drop", "reset", "icmp"]

__all__ = [
    "ClientSide",
    "DbLock",
    "DbReadable",
    "DbSession",
    "DbSessions",
    "DbUnavailable",
    "Host",
    "LabControl",
    "PacketAction",
    "Proxy",
    "RealLab",
    "Undo",
]



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


class DbSessions(Protocol):
    """A connection of this process that lists SpamAssassin's sessions and kills them;
    ``DbUnavailable`` when the server does not answer."""

    def __enter__(self) -> DbSessions: ...
    def __exit__(self, *exc: object) -> None: ...
    def list(self) -> list[DbSession]: ...
    def kill(self, session: int) -> bool: ...  # False: already gone, or refused
    def close(self) -> None: ...


class ClientSide(Protocol):
    """What a target needs of a lab to send its load: where the lab's clients connect,
    and the lab's state (its users, its client hosts and how a client runs there)."""

    state: LabState

    def client_endpoint(self) -> Endpoint: ...


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
    def hold_db_lock(self, lock: DbLock) -> Undo: ...  # held by a connection of ours
    def db_sessions(self) -> DbSessions: ...
    def set_db_variable(self, name: DbVariable, value: int) -> Undo: ...
    def db_variable(self, name: DbReadable) -> int | None: ...  # None: no answer
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
    def packet_rule(self, role: Host, action: PacketAction, established: bool) -> Undo: ...
    def packet_count(self, role: Host) -> int | None: ...
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


@dataclass
class _DbUndo:
    """A database change's heal, its driver's errors as ``DbUnavailable``."""

    undo: Undo

    def heal(self) -> None:
        try:
            self.undo.heal()
        except pymysql.MySQLError as exc:
            raise dbadmin.unavailable(exc) from None


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

    def hold_db_lock(self, lock: DbLock) -> Undo:
        return dbadmin.HeldLock(self.state.layout, lock)

    def db_sessions(self) -> DbSessions:
        return dbadmin.Sessions(self.state.layout)

    def set_db_variable(self, name: DbVariable, value: int) -> Undo:
        try:
            return _DbUndo(lab_faults.set_db_global(self.journal, name, value))
        except pymysql.MySQLError as exc:
            raise dbadmin.unavailable(exc) from None

    def db_variable(self, name: DbReadable) -> int | None:
        return dbadmin.variable(self.state.layout, name)

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

    def packet_rule(self, role: Host, action: PacketAction, established: bool) -> Undo:
        port = self.state.spamd.port if role == "spamd" else self.state.db.port
        return lab_faults.packet_rule(self.journal, self._ns(role), port, action,
                                      established)

    def packet_count(self, role: Host) -> int | None:
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


def _conforms(lab: RealLab) -> tuple[LabControl, ClientSide]:
    """The real lab has every verb of the seam, with its types (mypy checks this)."""
    return lab, lab
