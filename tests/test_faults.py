"""Every fault against the real lab, through one conformance suite (trio's
``check_streams`` is the model: one suite every implementation must pass): injected, it
takes effect and shows evidence; lifted, the lab is healthy; lifted again, nothing
happens; injected by a process that is then SIGKILLed, the journal heals it. Then what
each database fault does to a real query, and the lab's clean-up after crashes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pymysql
import pytest
from faultproc import injected_then_killed
from msgspec.structs import replace
from test_nemesis import EXAMPLES

from spamdrill import corpus
from spamdrill.drills.control import RealLab
from spamdrill.drills.nemesis import FAULT_KINDS, AnyFaultSpec
from spamdrill.drills.nemesis.base import until
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.lab import dns, faults, maildir, mariadb, netns, spamd
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig, TopologySettings
from spamdrill.lab.state import LabState

pytestmark = pytest.mark.lab
ROOT = os.geteuid() == 0


def eventually(cond: Callable[[], bool], within: float = 30.0) -> bool:
    """Poll a condition with a deadline: a healed lab comes back in its own time."""
    return until(cond, within)


def under_quota(state: LabState) -> bool:
    for user in state.users:
        held, limit = maildir.usage((state.layout.maildir(user) / "maildirsize").read_text())
        if limit is not None and held >= limit:
            return False
    return True


def healthy(state: LabState) -> bool:
    """Every component answers its own probe, every Maildir takes mail, and the journal
    holds no open fault."""
    return (spamd.ping(state.spamd.host, state.spamd.port) and mariadb.probe(state.layout)
            and dns.probe(state.dns.host, state.dns.port)
            and mariadb.tcp_probe(state.dsn.host, state.dsn.port)
            and under_quota(state) and not state.journal.open_faults())


def config_for(kind: str, extra: dict[str, Any]) -> LabConfig:
    config = LabConfig()
    if kind == "packets":
        return replace(config, topology=TopologySettings(kind="hosts"))
    if kind == "proxy" and extra.get("link") == "spamd-db":
        return replace(config, database=replace(config.database, proxy=True))
    if kind == "db-max-connections":  # children ready at once, more than the limit
        return replace(config, spamd=replace(config.spamd, max_children=5, min_children=5,
                                             min_spare=5, max_spare=5))
    return config


def scan(state: LabState, endpoint: tuple[str, int], timeout: int = 4) -> None:
    """One real message through spamc: traffic for the fault to act on."""
    argv = state.client_argv(["spamc", "-d", endpoint[0], "-p", str(endpoint[1]), "-t",
                              str(timeout), "-u", "alice"])
    subprocess.run(argv, input=corpus.ham(int(time.time() * 1000) % 10**8),
                   capture_output=True, timeout=60, check=False)


# rspamd's faults meet rspamd's traffic: their conformance is tests/test_rspamd_drills.py
# and, for those of the lab's slow rule and DNS, tests/test_rspamd_slow.py
RSPAMD_KINDS = ("rspamd-down", "redis-down", "redis-frozen", "rspamd-stopping", "redis-dropped",
                "redis-slow", "rspamd-slow-rule", "rspamd-dns-dead")
CASES = [(k, *EXAMPLES[k][:1]) for k in sorted(EXAMPLES) if k not in RSPAMD_KINDS] + [
    ("proxy", {"link": "spamc-spamd", "mode": "drip", "slice": 20, "interval": 0.05})]


@pytest.mark.parametrize("kind,extra", CASES, ids=[f"{k}-{e.get('link', '')}".strip("-")
                                                   for k, e in CASES])
def test_conformance(kind: str, extra: dict[str, Any], run_dir: Path) -> None:
    config = config_for(kind, extra)
    if config.topology.hosts and not ROOT:
        with pytest.raises(SpamdrillError, match="needs root"):
            lab_ops.up(run_dir, config)
        return
    state = lab_ops.up(run_dir, config)
    ctl = RealLab(state)
    if kind == "db-max-connections":  # one connection: any two scans' queries collide
        extra = {**extra, "max_connections": 1}
    spec = msgspec.convert({"kind": kind, **extra}, AnyFaultSpec)
    fault = spec.build(Scale(1.0))
    fault.setup(ctl)
    endpoint = ctl.client_endpoint()
    fault.inject(ctl)
    # real messages meet the fault: a connection limit needs more at once than it allows
    burst = 12 if kind == "db-max-connections" else 1
    with ThreadPoolExecutor(burst) as pool:
        list(pool.map(lambda _: scan(state, (endpoint.host, endpoint.port)), range(burst)))
    fault.observe(ctl)  # a blocked query outlives its spamc: still there to be seen
    fault.lift(ctl)
    report = fault.evidence(ctl)
    assert report.took_effect, report
    assert eventually(lambda: healthy(state)), "the lab did not recover after the lift"
    fault.lift(ctl)  # again: nothing happens, nothing breaks
    fault.teardown(ctl)
    assert healthy(state)
    assert faults.heal_journaled(state.journal) == []  # nothing left to heal
    # injected by a process that is then SIGKILLed: the journal heals it
    injected_then_killed(run_dir, kind, msgspec.to_builtins(extra))
    assert eventually(lambda: healthy(state)), f"{kind} was not healed after SIGKILL"


def test_the_conformance_suite_covers_every_fault() -> None:
    from test_rspamd_drills import CONFORMANCE
    from test_rspamd_slow import KINDS

    assert {k for k, _ in CASES} | set(CONFORMANCE) | set(KINDS) == set(FAULT_KINDS)
    assert not {k for k, _ in CASES} & set(RSPAMD_KINDS)  # none run without rspamd


def sa_conn(lab: LabState, timeout: float = 2) -> pymysql.connections.Connection:
    """A connection as SpamAssassin's SQL user, over TCP, like spamd's."""
    return pymysql.connect(host="127.0.0.1", port=lab.db.port, user=mariadb.SA_USER,
                           password=mariadb.secrets_of(lab.layout).sa, database=mariadb.SA_DB,
                           connect_timeout=timeout, read_timeout=timeout,
                           write_timeout=timeout, autocommit=True)


def injected(lab: LabState, kind: str, **extra: Any) -> tuple[Any, RealLab]:
    ctl = RealLab(lab)
    fault = msgspec.convert({"kind": kind, **extra}, AnyFaultSpec).build(Scale(1.0))
    fault.setup(ctl)
    fault.inject(ctl)
    return fault, ctl


WRITE = "INSERT INTO userpref (username, preference, value) VALUES ('x', 'required_score', '1')"
READ = "SELECT COUNT(*) FROM bayes_token"


@pytest.mark.parametrize("kind,sql", [("db-read-lock", WRITE), ("db-write-lock", READ)],
                         ids=["read-lock-blocks-a-write", "write-lock-blocks-a-read"])
def test_lock_blocks_a_real_query(lab: LabState, kind: str, sql: str) -> None:
    fault, ctl = injected(lab, kind)
    try:
        with sa_conn(lab) as c, c.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            with pytest.raises(pymysql.MySQLError):
                cur.execute(sql)
    finally:
        fault.lift(ctl)
    with sa_conn(lab) as c, c.cursor() as cur:  # lifted: the same query goes through
        cur.execute(sql)


def test_max_connections_refuses_the_extra_client(lab: LabState) -> None:
    fault, ctl = injected(lab, "db-max-connections", max_connections=1)
    held = []
    try:
        with pytest.raises(pymysql.MySQLError, match="max_user_connections"):
            for _ in range(3):
                held.append(sa_conn(lab))
    finally:
        for c in held:
            c.close()
        fault.lift(ctl)
    with mariadb.admin(lab.layout) as c, c.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections, @@GLOBAL.max_user_connections")
        assert cur.fetchone() == (151, 100000)


def test_cut_mid_query_kills_a_running_query(lab: LabState) -> None:
    """spamd's first query of a scan (user prefs) waits on the fault's write lock until it
    is killed; no query gets through. The killer also kills a connection it sees before
    its first query (as it does spamd's): on a loaded machine it may see ours there, so
    the client connects again, as spamd does for its next scan, until one is killed
    mid-query (each try fails either way)."""
    fault, ctl = injected(lab, "db-cut-mid-query")
    try:
        for _ in range(10):
            with contextlib.suppress(pymysql.MySQLError), sa_conn(lab, timeout=10) as c, \
                    c.cursor() as cur, pytest.raises(pymysql.MySQLError):
                cur.execute("SELECT value FROM userpref WHERE username = 'x'")
            if fault.mid_query:
                break
    finally:
        fault.lift(ctl)
    assert fault.evidence(ctl).took_effect


def test_frozen_database_hangs_then_recovers(lab: LabState) -> None:
    fault, ctl = injected(lab, "db-frozen")
    try:
        assert eventually(lambda: ctl.db_process_state() == "T", 5)
        with pytest.raises(pymysql.MySQLError):
            sa_conn(lab, timeout=1)  # the kernel accepts, nobody greets
    finally:
        fault.lift(ctl)
    assert eventually(lambda: ctl.db_process_state() in ("R", "S"), 5)
    with sa_conn(lab) as c, c.cursor() as cur:
        cur.execute("SELECT 1")


def test_lab_down_heals_a_frozen_database_and_stops_it(run_dir: Path) -> None:
    state = lab_ops.up(run_dir, LabConfig())
    ref = state.pids["mariadb"]
    faults.pause(state.journal, ref.pid, ref.ticks)
    t0 = time.monotonic()
    lab_ops.down(run_dir)
    assert time.monotonic() - t0 < 30  # SIGTERM reached a running server, not a stopped one
    assert lab_ops.lab_pids(run_dir) == set()


def test_orphaned_drill_labs_are_cleaned(run_dir: Path) -> None:
    base = run_dir.parent / "drills"  # under /tmp, reachable by spamd's user
    lab_dir = base / "x-orphan"
    state = lab_ops.up(lab_dir, LabConfig())
    state.owner_pid = 2**22 + 12345  # no such process: its spamdrill was killed
    state.save()
    assert lab_ops.down_all(base, only_orphans=True)
    assert lab_ops.lab_pids(lab_dir) == set() and not lab_dir.exists()


def test_cleaning_orphans_leaves_a_running_spamdrills_labs_alone(run_dir: Path) -> None:
    """Two runs side by side: one starting cleans the labs killed runs left, never the
    other's (owned by a live process, or locked while it is brought up before its
    lab.json names an owner; a run once took down the other's labs mid-drill)."""
    import fcntl

    from spamdrill.lab.layout import Layout

    base = run_dir.parent / "drills"
    owned = base / "x-owned"
    state = lab_ops.up(owned, LabConfig())
    assert state.owner_pid == os.getpid()  # this test is the live owner
    starting = base / "x-starting"  # mid-way through up: locked, no lab.json yet
    starting.mkdir(parents=True)
    with open(Layout(starting).lock, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert lab_ops.down_all(base) == []
        assert starting.is_dir()
    assert owned.is_dir() and lab_ops.lab_pids(owned), "a live run's lab was taken down"
    lab_ops.down(owned)


def tcp(host: str, port: int) -> str:
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
        return "open"
    except TimeoutError:
        return "dropped"
    except ConnectionRefusedError:
        return "refused"


@pytest.mark.root
def test_packet_actions_and_established_connections(run_dir: Path) -> None:
    import socket

    config = replace(LabConfig(), topology=TopologySettings(kind="hosts"))
    if not ROOT:  # says so, clearly, instead of half-working
        with pytest.raises(SpamdrillError, match="needs root"):
            lab_ops.up(run_dir, config)
        return
    state = lab_ops.up(run_dir, config)
    assert state.network is not None
    host = state.network.host("db")
    assert state.db.host == host.ip and host.ip.startswith("198.1") and netns.exists(host.ns)
    db = (state.db.host, state.db.port)
    assert tcp(*db) == "open"
    for action, seen in (("drop", "dropped"), ("reset", "refused"), ("icmp", "refused")):
        done = faults.packet_rule(state.journal, host.ns, state.db.port, action)
        assert tcp(*db) == seen
        assert (netns.rule_packets(host.ns) or 0) >= 1  # the counter is the evidence
        done.heal()
        assert tcp(*db) == "open"
    # established connections too: one opened before the rule gets no answer after it
    for established, answered in ((False, True), (True, False)):
        with socket.create_connection(db, timeout=2) as c:
            assert c.recv(4096)  # the server's greeting
            done = faults.packet_rule(state.journal, host.ns, state.db.port, "drop",
                                      established)
            c.sendall(b"\x01\x00\x00\x01\x0e")  # not a login: the server answers or closes
            try:
                c.recv(4096)
                got = True
            except TimeoutError:
                got = False
            done.heal()
        assert got == answered, f"established_too={established}"
    lab_ops.down(run_dir)
    assert not netns.exists(host.ns)


def test_a_drill_whose_fault_missed_is_an_error_not_a_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdicts issue: a lock taken on another table leaves spamd's queries alone; the
    drill then proves nothing, and says so (verdict error, exit status 3)."""
    from test_drills import run

    from spamdrill.lab import dbadmin

    monkeypatch.setitem(dbadmin.LOCKS, "global-read",
                        "LOCK TABLES mysql.db WRITE")  # a table spamd never reads
    [r] = run("db-read-lock", tmp_path)
    assert r.verdict == "error", (r.checks, r.faults)
    assert not r.faults[0].took_effect and "no SpamAssassin query" in r.faults[0].detail


@pytest.mark.root
def test_an_nft_rule_on_the_wrong_port_is_an_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from test_drills import run

    from spamdrill.drills import runner

    if not ROOT:
        with pytest.raises(SpamdrillError, match="needs root"):
            run("db-dropped", tmp_path)
        return

    class WrongPort(RealLab):
        def packet_rule(self, role: str, action: str, established: bool) -> Any:
            return faults.packet_rule(self.journal, self._ns(role), self.state.db.port + 1,
                                      action, established)

    monkeypatch.setattr(runner, "RealLab", WrongPort)
    [r] = run("db-dropped", tmp_path)
    assert r.verdict == "error", (r.checks, r.faults)
    assert r.faults[0].detail == "the rule matched 0 packet(s)"
