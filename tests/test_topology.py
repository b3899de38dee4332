"""The multi-host lab (root): client, spamd, database and DNS hosts in namespaces of their
own, each with its own somaxconn and resolv.conf; the TCP fault proxy between spamd and
MariaDB (any user); and the drills built on them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from msgspec.structs import replace
from test_drills import run

from spamdrill import corpus
from spamdrill.errors import SpamdrillError
from spamdrill.lab import faults, mariadb, netns
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig, TopologySettings
from spamdrill.lab.toxics import Latency, Shape
from spamdrill.proto import netstat

pytestmark = pytest.mark.lab
ROOT = os.geteuid() == 0


def eventually(cond: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll a condition with a deadline (the proxy follows its shape file every 50 ms)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def scan(state: lab_ops.LabState, seed: int) -> bytes:
    argv = state.client_argv(["spamc", "-d", state.spamd.host, "-p", str(state.spamd.port),
                              "-t", "30", "-u", "alice"])
    return subprocess.run(argv, input=corpus.make("ham", seed).data, capture_output=True,
                          timeout=60).stdout


def test_netstat_parse_and_delta() -> None:
    text = ("TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 3 14 14\n"
            "Tcp: RtoAlgorithm OutRsts\nTcp: 1 2\n")
    before = netstat.parse(text)
    assert before == {"TcpExtSyncookiesSent": 3, "TcpExtListenOverflows": 14,
                      "TcpExtListenDrops": 14, "TcpRtoAlgorithm": 1, "TcpOutRsts": 2}
    after = {**before, "TcpExtListenOverflows": 20}
    assert netstat.delta(before, after)["TcpExtListenOverflows"] == 6
    assert "TcpExtTCPReqQFullDrop" not in netstat.delta(before, after)


PROXY_INJECT = """
import sys, time
from pathlib import Path
from spamdrill.lab import faults
from spamdrill.lab.layout import Layout
from spamdrill.lab.state import LabState
from spamdrill.lab.toxics import Shape
state = LabState.load(Layout(Path(sys.argv[1])))
faults.proxy_shape(state.journal, Shape(enabled=False))
print("injected", flush=True)
time.sleep(600)
"""


def test_database_proxy_shapes_spamds_link_and_heals_from_the_journal(run_dir: Path) -> None:
    config = replace(LabConfig(), database=replace(LabConfig().database, proxy=True))
    state = lab_ops.up(run_dir, config)
    proxy = state.db_proxy
    assert proxy is not None and state.dsn == proxy
    site = (state.layout.spamd_site / "local.cf").read_text()
    assert f"port={proxy.port}" in site  # spamd's DSN goes through the proxy
    assert b"X-Spam-Status" in scan(state, 1)
    journal = state.journal

    def through_proxy() -> bool:
        return mariadb.tcp_probe(proxy.host, proxy.port)

    # a real query through the slowed link takes longer than the delay
    slowed = faults.proxy_shape(journal, Shape(downstream=(Latency(latency=0.3),)))
    t0 = time.monotonic()  # proxy_shape returned: the proxy process applied it
    assert through_proxy()
    assert time.monotonic() - t0 >= 0.3
    slowed.heal()
    # down, injected by a process that is then SIGKILLed: healed from the journal
    proc = subprocess.Popen([sys.executable, "-c", PROXY_INJECT, str(run_dir)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "injected"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not through_proxy()  # the injector waited for the proxy to apply it
    assert mariadb.tcp_probe(state.db.host, state.db.port)  # MariaDB itself is fine
    assert faults.heal_journaled(journal) == ["proxy-shape"]
    assert eventually(through_proxy)  # the listener is re-opened on the same port
    assert b"X-Spam-Status" in scan(state, 2)


def test_hosts_topology(run_dir: Path) -> None:
    config = replace(LabConfig(), topology=TopologySettings(kind="hosts", spamd_somaxconn=5))
    if not ROOT:  # says so, clearly, instead of half-working
        with pytest.raises(SpamdrillError, match="needs root"):
            lab_ops.up(run_dir, config)
        return
    machine_somaxconn = Path("/proc/sys/net/core/somaxconn").read_text()
    machine_resolv = Path("/etc/resolv.conf").read_bytes()
    state = lab_ops.up(run_dir, config)
    net = state.network
    assert net is not None
    assert all(netns.exists(ns) for ns in net.namespaces())
    assert (state.spamd.host, state.db.host, state.dns.host) == (
        net.ip("spamd"), net.ip("db"), net.ip("dns"))
    assert netns.somaxconn(net.host("spamd")) == 5
    assert netns.somaxconn(net.host("client")) != 5
    assert Path("/proc/sys/net/core/somaxconn").read_text() == machine_somaxconn
    # spamd sees the lab DNS as its resolver; the machine's file is untouched
    spamd_pid = state.pids["spamd"].pid
    seen = Path(f"/proc/{spamd_pid}/root/etc/resolv.conf").read_text()
    assert seen.startswith(f"nameserver {state.dns.host}\n")
    assert Path("/etc/resolv.conf").read_bytes() == machine_resolv
    # a message from the client host, scanned by spamd on its host, prefs from the DB host
    assert b"X-Spam-Status" in scan(state, 3)
    assert f"connection from {net.ip('client')}" in state.layout.spamd_log.read_text()
    lab_ops.down(run_dir)
    assert not any(netns.exists(ns) for ns in net.namespaces())
    assert subprocess.run(["ip", "link", "show", net.control_if],
                          capture_output=True).returncode != 0


def test_backlog_full_overflows_only_the_small_queue(tmp_path: Path) -> None:
    if not ROOT:
        with pytest.raises(SpamdrillError, match="needs root"):
            run("backlog-full", tmp_path)
        return
    small, default = run("backlog-full", tmp_path)
    assert small.name.endswith("somaxconn-5") and default.name.endswith("somaxconn-4096")
    assert small.verdict == "confirmed", (small.checks, small.faults)
    assert default.verdict == "confirmed", (default.checks, default.faults)
    assert default.calibration is not None  # its bound came from this machine's scans
    assert any("ListenOverflows" in n for n in small.notes), small.notes
    # with SYN cookies off on spamd's host an overflowing SYN is only dropped and sent
    # again: every message is scanned, in every run (with cookies, 2 full runs in 5 had a
    # connection reset and a message unscanned)
    for r in (small, default):
        assert r.finding == "within", (r.name, r.findings)
        assert all(m.outcome != "unscanned" for m in r.history.messages), r.name


def test_db_slow_link_scans_outlast_t(tmp_path: Path) -> None:
    [r] = run("db-slow-link", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults)
    assert r.faults[0].took_effect and "shaped" in r.faults[0].detail
    assert all(m.outcome == "unscanned" and (m.seconds or 0) > 2.5
               for m in r.history.messages)


def test_spamd_port_dropped_or_rejected(tmp_path: Path) -> None:
    if not ROOT:
        with pytest.raises(SpamdrillError, match="needs root"):
            run("spamd-dropped", tmp_path)
        return
    [dropped] = run("spamd-dropped", tmp_path)
    checks = {c.name: c for c in dropped.checks}
    # unanswered SYNs: 3 tries x -t (3 s) + 2 s of sleeps, as the model says; past the 9 s
    # budget by design of spamc's defaults -- the finding, not a flaw of the drill
    assert checks["budget model agrees with the measurements"].ok
    # the finding: with the field report's wrapper, maildrop's timer bounces these
    assert dropped.finding == "bounces", dropped.findings
    assert dropped.verdict == "confirmed", (dropped.checks, dropped.faults)
    assert all(m.outcome == "unscanned" and m.reason == "connect-timeout"
               for m in dropped.history.messages)
    one, burst = run("spamd-unreachable", tmp_path)
    assert one.verdict == "confirmed" and burst.verdict == "confirmed", (one.checks,
                                                                        burst.checks)
    # one spamc: each connect's first ICMP is a soft error inside connect() on the lab's
    # veth pairs, so each of 3 tries fails at the SYN sent again 1 s later (+ 2 x 1 s
    # sleeps): longer than a refusal (2 s), shorter than 3 connect timeouts (11 s)
    [alone] = one.history.messages
    assert 4 < (alone.seconds or 0) < 8
    # eight at once: the ICMP rate limit leaves some waiting out connect timeouts
    assert max(m.seconds or 0 for m in burst.history.messages) > (alone.seconds or 0)
