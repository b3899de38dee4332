"""Each database fault on its own against the real MariaDB, and healing after the process
that injected it was SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from spamdrill.drills import nemesis
from spamdrill.lab import faults, mariadb
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig, TopologySettings
from spamdrill.lab.lab import LabState
from spamdrill.lab.procs import Journal


def sa_conn(lab: LabState, timeout: float = 2) -> pymysql.connections.Connection:
    """A connection as SpamAssassin's SQL user, over TCP, like spamd's."""
    return pymysql.connect(host="127.0.0.1", port=lab.db_port, user=mariadb.SA_USER,
                           password=LabConfig().database.password, database=mariadb.SA_DB,
                           connect_timeout=timeout, read_timeout=timeout,
                           write_timeout=timeout, autocommit=True)


def state_letter(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def settles_to(pid: int, letters: str, within: float = 5.0) -> str:
    """The process's state once it is one of ``letters`` (or at the deadline): a signal
    is acted on when the task next runs, so a state read at once can still be the old."""
    deadline = time.monotonic() + within
    while (letter := state_letter(pid)) not in letters and time.monotonic() < deadline:
        time.sleep(0.005)
    return letter


def fault(lab: LabState, kind: str, **kw: object) -> nemesis.DbFault:
    f = nemesis.DbFault(name=kind, state=lab, config=LabConfig(), kind=kind, **kw)  # type: ignore[arg-type]
    for action in f.actions()[:1]:
        action.run()
    return f


WRITE = "INSERT INTO userpref (username, preference, value) VALUES ('x', 'required_score', '1')"
READ = "SELECT COUNT(*) FROM bayes_token"


@pytest.mark.parametrize("kind,sql", [("read-lock", WRITE), ("write-lock", READ)],
                         ids=["read-lock-blocks-a-write", "write-lock-blocks-a-read"])
def test_lock_blocks_a_real_query(lab: LabState, kind: str, sql: str) -> None:
    f = fault(lab, kind)
    try:
        with sa_conn(lab) as c, c.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            with pytest.raises(pymysql.MySQLError):
                cur.execute(sql)
    finally:
        f.heal()
    with sa_conn(lab) as c, c.cursor() as cur:  # healed: the same query goes through
        cur.execute(sql)


def test_max_connections_refuses_the_extra_client(lab: LabState) -> None:
    f = fault(lab, "max-connections", max_connections=1)
    held = []
    try:
        with pytest.raises(pymysql.MySQLError, match="max_user_connections"):
            for _ in range(3):
                held.append(sa_conn(lab))
    finally:
        for c in held:
            c.close()
        f.heal()
    with mariadb.admin(lab.layout) as c, c.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections, @@GLOBAL.max_user_connections")
        assert cur.fetchone() == (151, 100000)


def test_cut_mid_query_kills_a_running_query(lab: LabState) -> None:
    f = fault(lab, "cut-mid-query")
    try:
        with sa_conn(lab, timeout=10) as c, c.cursor() as cur, \
                pytest.raises(pymysql.MySQLError):
            cur.execute("SELECT SLEEP(5)")
    finally:
        f.heal()
    assert any("mid-query" in s and not s.startswith("0 ") for s in f.snapshots), f.snapshots


def test_frozen_database_hangs_then_recovers(lab: LabState) -> None:
    pid = lab.pids["mariadb"][0]
    assert isinstance(pid, int)
    f = fault(lab, "frozen")
    try:
        assert settles_to(pid, "T") == "T"
        with pytest.raises(pymysql.MySQLError):
            sa_conn(lab, timeout=1)  # the kernel accepts, nobody greets
    finally:
        f.heal()
    assert settles_to(pid, "RS") in "RS"
    with sa_conn(lab) as c, c.cursor() as cur:
        cur.execute("SELECT 1")


def test_down_database_refuses_then_restarts(run_dir: Path) -> None:
    state = lab_ops.up(run_dir, LabConfig())
    f = fault(state, "down")
    with pytest.raises(pymysql.MySQLError, match=r"Can't connect|refused"):
        sa_conn(state, timeout=1)
    f.heal()
    with sa_conn(state) as c, c.cursor() as cur:
        cur.execute("SELECT 1")


INJECT = """
import sys, time
from pathlib import Path
from spamdrill.lab import faults
from spamdrill.lab.layout import Layout
from spamdrill.lab.lab import LabState
from spamdrill.lab.procs import Journal
state = LabState.load(Layout(Path(sys.argv[1])))
journal = Journal(state.layout.journal)
pid, ticks = state.pids["mariadb"]
faults.pause(journal, pid, ticks)
faults.dns_rules(journal, state.layout, [("*", "drop", 0.0)])
print("injected", flush=True)
time.sleep(600)
"""


def test_faults_are_healed_after_sigkill_of_the_injector(run_dir: Path) -> None:
    state = lab_ops.up(run_dir, LabConfig())
    # a server variable first (needs a running server), then pause and DNS in a child
    journal = Journal(state.layout.journal)
    faults.set_db_global(journal, state.layout, "max_connections", 3)
    proc = subprocess.Popen([sys.executable, "-c", INJECT, str(run_dir)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "injected"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pid = state.pids["mariadb"][0]
    assert isinstance(pid, int) and settles_to(pid, "T") == "T"
    assert json.loads(state.layout.dns_rules.read_text())
    healed = faults.heal_journaled(journal)  # what 'lab down' runs first
    assert sorted(healed) == ["db-global", "dns-rules", "pause"]
    assert settles_to(pid, "RS") in "RS"
    assert json.loads(state.layout.dns_rules.read_text()) == {}
    with mariadb.admin(state.layout) as c, c.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        assert cur.fetchone() == (151,)
    assert faults.open_faults(journal) == []


def test_lab_down_heals_a_frozen_database_and_stops_it(run_dir: Path) -> None:
    state = lab_ops.up(run_dir, LabConfig())
    pid, ticks = state.pids["mariadb"]
    assert isinstance(pid, int)
    faults.pause(Journal(state.layout.journal), pid, ticks)
    t0 = time.monotonic()
    lab_ops.down(run_dir)
    assert time.monotonic() - t0 < 30  # SIGTERM reached a running server, not a stopped one
    assert not Path(f"/proc/{pid}").exists() or state_letter(pid) in "ZX"
    assert lab_ops.lab_pids(run_dir) == set()


def test_orphaned_drill_labs_are_cleaned(run_dir: Path) -> None:
    base = run_dir.parent / "drills"  # under /tmp, reachable by spamd's user
    lab_dir = base / "x-orphan"
    state = lab_ops.up(lab_dir, LabConfig())
    state.owner_pid = 2**22 + 12345  # no such process: its spamdrill was killed
    state.save(state.layout)
    assert lab_ops.down_all(base, only_orphans=True)
    assert lab_ops.lab_pids(lab_dir) == set() and not lab_dir.exists()


NFT_INJECT = """
import sys, time
from pathlib import Path
from spamdrill.lab import faults
from spamdrill.lab.layout import Layout
from spamdrill.lab.lab import LabState
from spamdrill.lab.procs import Journal
state = LabState.load(Layout(Path(sys.argv[1])))
faults.packet_rule(Journal(state.layout.journal), state.network.host("db").ns,
                   state.db_port, "drop")
print("injected", flush=True)
time.sleep(600)
"""


def tcp(host: str, port: int) -> str:
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
        return "open"
    except TimeoutError:
        return "dropped"
    except ConnectionRefusedError:
        return "refused"


def test_netns_database_host_and_packet_faults(run_dir: Path) -> None:
    from dataclasses import replace

    from spamdrill.errors import SpamdrillError
    from spamdrill.lab import netns

    config = replace(LabConfig(), topology=TopologySettings(kind="hosts"))
    if os.geteuid() != 0:  # says so, clearly, instead of half-working
        with pytest.raises(SpamdrillError, match="needs root"):
            lab_ops.up(run_dir, config)
        return
    state = lab_ops.up(run_dir, config)
    assert state.network is not None
    host = state.network.host("db")
    assert state.db_host == host.ip and host.ip.startswith("198.1") and netns.exists(host.ns)
    assert tcp(state.db_host, state.db_port) == "open"
    journal = Journal(state.layout.journal)
    for action, seen in (("drop", "dropped"), ("reset", "refused"), ("icmp", "refused")):
        fid = faults.packet_rule(journal, host.ns, state.db_port, action)
        assert tcp(state.db_host, state.db_port) == seen
        faults.clear_packet_rule(journal, host.ns, fid)
        assert tcp(state.db_host, state.db_port) == "open"
    # established connections too: one opened before the rule gets no answer after it
    for established, answered in ((False, True), (True, False)):
        with socket.create_connection((state.db_host, state.db_port), timeout=2) as c:
            assert c.recv(4096)  # the server's greeting
            fid = faults.packet_rule(journal, host.ns, state.db_port, "drop", established)
            c.sendall(b"\x01\x00\x00\x01\x0e")  # not a login: the server answers or closes
            try:
                c.recv(4096)
                got = True
            except TimeoutError:
                got = False
            faults.clear_packet_rule(journal, host.ns, fid)
        assert got == answered, f"established_too={established}"
    # injected by a process that is then SIGKILLed: healed from the journal
    proc = subprocess.Popen([sys.executable, "-c", NFT_INJECT, str(run_dir)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "injected"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tcp(state.db_host, state.db_port) == "dropped"
    assert faults.heal_journaled(journal) == ["nft"]
    assert tcp(state.db_host, state.db_port) == "open"
    lab_ops.down(run_dir)
    assert not netns.exists(host.ns)
