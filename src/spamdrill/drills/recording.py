"""A fake lab for the unit tier: ``RecordingLab`` records each ``LabControl`` call and
models what a lab would answer (a global set reads back, a paused server shows state T, a
stopped spamd or a killed database refuses until started again). ``Answers`` overrides the model
where a test needs a lab that misbehaves (a limit the server ignored, a port that still
accepts). ``tests/test_lab_contract.py`` runs the same verbs on this and on a real lab and
compares what they answer, so the model cannot drift from the lab it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from spamdrill.drills.control import DbSessions, Host, LabControl, PacketAction, Proxy, Undo
from spamdrill.lab.dbadmin import DbLock, DbReadable, DbSession
from spamdrill.lab.journal import DbVariable
from spamdrill.lab.proxy import Counters
from spamdrill.lab.state import Endpoint
from spamdrill.lab.toxics import Shape

# what a fresh lab's MariaDB says: LabConfig's max_connections, the lab's own
# --max-user-connections (lab.mariadb), MariaDB 10.11's lock_wait_timeout
LAB_DB_GLOBALS: dict[str, int] = {"max_connections": 151, "max_user_connections": 100000,
                                  "lock_wait_timeout": 86400}


@dataclass(frozen=True)
class Answers:
    """What the fake answers instead of its model; None: as modeled."""

    accepts: bool | None = None  # whether an endpoint takes a connection
    spamd_answers: bool | None = None
    spamd_log: str = ""
    db_globals: dict[str, int] = field(default_factory=dict)  # read back whatever is set
    db_process_state: str | None = None
    db_sessions: tuple[DbSession, ...] = ()
    db_link_counters: Counters | None = None
    dns_actions: dict[str, int] = field(default_factory=dict)
    packet_count: int | None = None
    quota_usage: tuple[int, int | None] = (0, None)
    user_known: bool = False
    redis_state: str | None = None  # the lab's Redis: "T" once paused, as modeled
    rspamd_log: str = ""  # what rspamd's log gains once Redis is stopped or frozen
    redis_link_counters: Counters | None = None  # the rspamd-Redis proxy's, once shaped


@dataclass
class RecordedUndo:
    calls: list[str]
    what: str
    healed: bool = False
    then: tuple[Callable[[], None], ...] = ()  # the model's own undo

    def heal(self) -> None:
        if not self.healed:
            self.calls.append(f"heal {self.what}")
            self.healed = True
            for step in self.then:
                step()


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
class _RecordedSessions:
    lab: RecordingLab

    def __enter__(self) -> _RecordedSessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list(self) -> list[DbSession]:
        self.lab.calls.append("list db sessions")
        return [s for s in self.lab.answers.db_sessions if s.id not in self.lab.killed]

    def kill(self, session: int) -> bool:
        self.lab.calls.append(f"kill db session {session}")
        live = {s.id for s in self.lab.answers.db_sessions} - self.lab.killed
        self.lab.killed.add(session)
        return session in live

    def close(self) -> None:
        self.lab.calls.append("close db sessions")


@dataclass
class RecordingLab:
    """A ``LabControl`` that records each call and answers from its model of a lab, or
    from ``answers``."""

    calls: list[str] = field(default_factory=list)
    answers: Answers = field(default_factory=Answers)
    db_globals: dict[str, int] = field(default_factory=lambda: dict(LAB_DB_GLOBALS))
    paused: bool = False
    spamd_up: bool = True
    db_up: bool = True
    killed: set[int] = field(default_factory=set)

    def _undo(self, what: str, *then: Callable[[], None]) -> Undo:
        self.calls.append(what)
        return RecordedUndo(self.calls, what, then=then)

    def spamd_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 783)

    def stop_spamd(self) -> Undo:
        self.spamd_up = False
        return self._undo("stop spamd")

    def start_spamd(self) -> None:
        self.calls.append("start spamd")
        self.spamd_up = True

    def spamd_answers(self) -> bool:
        answer = self.answers.spamd_answers
        return self.spamd_up if answer is None else answer

    def spamd_log(self) -> str:
        return self.answers.spamd_log

    def client_endpoint(self) -> Endpoint:
        return self.spamd_endpoint()

    def proxy_before_spamd(self) -> Proxy:
        self.calls.append("proxy before spamd")
        return _RecordedProxy(self.calls)

    def db_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 3306)

    def hold_db_lock(self, lock: DbLock) -> Undo:
        return self._undo(f"hold db lock {lock}")

    def db_sessions(self) -> DbSessions:
        self.calls.append("open db sessions")
        return _RecordedSessions(self)

    def set_db_variable(self, name: DbVariable, value: int) -> Undo:
        old = self.db_globals[name]
        self.db_globals[name] = value
        return self._undo(f"set {name} {value}",
                          lambda: self.db_globals.__setitem__(name, old))

    def db_variable(self, name: DbReadable) -> int | None:
        return self.answers.db_globals.get(name, self.db_globals[name])

    def pause_db(self) -> Undo:
        self.paused = True

        def go_on() -> None:
            self.paused = False
        return self._undo("pause db", go_on)

    def kill_db(self) -> Undo:
        self.db_up = False
        return self._undo("kill db")

    def start_db(self) -> None:
        self.calls.append("start db")
        self.db_up = True

    def db_process_state(self) -> str:
        modeled = "T" if self.paused else "S" if self.db_up else ""
        return self.answers.db_process_state or modeled

    def shape_db_link(self, shape: Shape) -> Undo:
        return self._undo(f"shape db link {shape.describe()}")

    def db_link_counters(self) -> Counters | None:
        return self.answers.db_link_counters

    def dns_rules(self, rules: list[tuple[str, str, float]]) -> Undo:
        return self._undo("dns " + ", ".join(f"{n} {m}" for n, m, _ in rules))

    def dns_mark(self) -> int:
        return 0

    def dns_actions_since(self, mark: int) -> dict[str, int]:
        return dict(self.answers.dns_actions)

    def packet_rule(self, role: Host, action: PacketAction, established: bool) -> Undo:
        return self._undo(f"packets {role} {action}")

    def packet_count(self, role: Host) -> int | None:
        return self.answers.packet_count

    def fill_quota(self, user: str) -> Undo:
        return self._undo(f"fill quota {user}")

    def quota_usage(self, user: str) -> tuple[int, int | None]:
        return self.answers.quota_usage

    def user_known(self, user: str) -> bool:
        self.calls.append(f"look up {user}")
        return self.answers.user_known

    def accepts(self, ep: Endpoint) -> bool:
        if self.answers.accepts is not None:
            return self.answers.accepts
        return {self.spamd_endpoint(): self.spamd_up, self.db_endpoint(): self.db_up}.get(
            ep, True)


def _conforms(lab: RecordingLab) -> LabControl:
    """The fake has every verb of the seam, with its types (mypy checks this)."""
    return lab
