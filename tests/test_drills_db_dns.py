"""Drills II scenarios on the real spamd/MariaDB/lab DNS: what came back, what the database
showed, what spamd logged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_drills import confirmed, run

from spamdrill.lab import lab as lab_ops

pytestmark = pytest.mark.lab


def test_db_read_lock(tmp_path: Path) -> None:
    [r] = run("db-read-lock", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    assert "Waiting for" in r.faults[0].detail
    assert any("Waiting for" in n and "lock" in n for n in r.notes), r.notes
    # the field report's 23852 s: spamd's queries outlive their spamc (which gave up at
    # -t, 3 s here); what bounds them is the server's lock_wait_timeout
    [end] = [n for n in r.notes if "at the end of the fault" in n]
    longest = int(re.search(r"longest (\d+) s", end).group(1))  # type: ignore[union-attr]
    assert "Waiting for" in end and longest > 3, end
    assert any("lock_wait_timeout" in f.detail for f in r.history.faults), r.history.faults
    assert r.finding == "delivers unscanned"  # at -t, within the budget


def test_db_write_lock_blocks_every_scan(tmp_path: Path) -> None:
    [r] = run("db-write-lock", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    assert any("metadata lock" in n for n in r.notes), r.notes


def test_db_refused_fails_fast(tmp_path: Path) -> None:
    [r] = run("db-refused", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    assert any("service unavailable" in n for n in r.notes), r.notes
    assert max(m.seconds or 0 for m in r.history.messages) < 2  # far under -t (3 s)


def test_db_cut_mid_query_loses_nothing(tmp_path: Path) -> None:
    [r] = run("db-cut-mid-query", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    killed = int(r.faults[0].detail.split()[0])
    assert killed > 0  # it did cut connections: not a drill that passes without its fault
    # caught waiting on the lock, every scan's user-pref query is killed mid-way: the same
    # outcome every run, not a matter of which query a poll happened to hit
    assert r.faults[0].took_effect and " 0 mid-query" not in r.faults[0].detail
    assert all(m.outcome == "unscanned" for m in r.history.messages), r.history.messages
    assert any("service unavailable" in n for n in r.notes), r.notes
    assert r.finding == "delivers unscanned"


def test_db_frozen_recovers(tmp_path: Path) -> None:
    [r] = run("db-frozen", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    assert "stopped (state T)" in r.faults[0].detail
    [window] = r.history.faults
    assert window.end_ns and "SIGCONT" in window.detail


def test_db_max_connections_both_variants(tmp_path: Path) -> None:
    results = run("db-max-connections", tmp_path, count=120)
    assert len(results) == 2
    for r in results:
        assert confirmed(r), (r.checks, r.faults)
        assert "max_user_connections = 2" in r.faults[0].detail


def test_dns_scenarios(tmp_path: Path) -> None:
    [dead] = run("dns-dead", tmp_path)
    assert confirmed(dead), (dead.checks, dead.faults)
    assert "drop" in dead.faults[0].detail  # the lab DNS logged dropped queries
    [by_ip] = run("dns-dead-db-by-ip", tmp_path)
    assert confirmed(by_ip), (by_ip.checks, by_ip.faults)
    # scanned, but only after SpamAssassin gave up on DNS (rbl_timeout 30 s -> 1 s)
    assert min(m.seconds or 0 for m in by_ip.history.messages) > 0.8
    [slow] = run("dnsbl-slow", tmp_path)
    assert confirmed(slow), (slow.checks, slow.faults)
    assert "delay" in slow.faults[0].detail
    [secondary] = run("dns-secondary", tmp_path)
    assert confirmed(secondary), (secondary.checks, secondary.faults)


def test_no_drill_lab_is_left_behind(tmp_path: Path) -> None:
    """What this run started is gone; another spamdrill's labs beside it are not its to
    judge (two runs side by side, each with its own labs)."""
    import os

    run("db-frozen", tmp_path)
    base = lab_ops.drill_labs_dir()
    leftovers = [d for d in base.iterdir()] if base.is_dir() else []
    states = [lab_ops.LabState.load(lab_ops.Layout(d)) for d in leftovers]
    assert [s.run_dir for s in states if s is not None and s.owner_pid == os.getpid()] == []


def test_db_unreachable_dropped_and_rejected(tmp_path: Path) -> None:
    """The field report's two unfinished tests (root: nftables in the database's netns)."""
    import os

    import pytest

    from spamdrill.errors import SpamdrillError

    if os.geteuid() != 0:
        with pytest.raises(SpamdrillError, match="needs root"):
            run("db-dropped", tmp_path)
        return
    [dropped] = run("db-dropped", tmp_path)
    assert confirmed(dropped), (dropped.checks, dropped.faults)
    assert "matched" in dropped.faults[0].detail
    # dropped: spamd waits on TCP, spamc gives up at -t (3 s)
    assert min(m.seconds or 0 for m in dropped.history.messages) > 2.5
    [rejected] = run("db-rejected", tmp_path)
    assert confirmed(rejected), (rejected.checks, rejected.faults)
    # rejected: spamd fails at once
    assert max(m.seconds or 0 for m in rejected.history.messages) < 1.5
    assert any("Can't connect" in n for n in rejected.notes), rejected.notes


def test_db_name_servfail_waits_but_nxdomain_fails_fast(tmp_path: Path) -> None:
    import os

    import pytest

    from spamdrill.errors import SpamdrillError

    if os.geteuid() != 0:  # the DSN names the database only as root: it says so
        with pytest.raises(SpamdrillError, match="needs root"):
            run("dns-db-servfail", tmp_path)
        return
    [servfail] = run("dns-db-servfail", tmp_path)
    [nxdomain] = run("dns-db-nxdomain", tmp_path)
    assert confirmed(servfail) and confirmed(nxdomain), (servfail.faults, nxdomain.faults)
    assert min(m.seconds or 0 for m in servfail.history.messages) > 2.5  # -t: 3 s
    assert max(m.seconds or 0 for m in nxdomain.history.messages) < 1.5
    assert any("Unknown server host" in n for n in nxdomain.notes), nxdomain.notes
