"""The distributed flood's sans-IO parts: who sends what, the target rules a worker
enforces, clock offsets and the release instant, and the records that come back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec
import pytest
from conftest import spamdrill
from msgspec.structs import replace

from spamdrill import history
from spamdrill.dist import clock, plan, tally
from spamdrill.errors import SpamdrillError
from spamdrill.history import History, MessageRecord

MS = clock.MS
LAB = plan.Target("lab", "127.0.0.1", 7830, ("alice", "bob", "carol"))


def _share(indices: tuple[int, ...] = (0, 2, 4), target: plan.Target = LAB) -> plan.Share:
    return plan.Share("run", 42, ("ham", "spam"), indices, tuple(0.1 * i for i in indices),
                      ("-t", "3"), target, 30.0)


# -- who sends what

@pytest.mark.unit
def test_split_is_round_robin_and_covers_every_message_once() -> None:
    parts = plan.split(10, 3)
    assert parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(i for p in parts for i in p) == list(range(10))
    assert plan.split(2, 4) == [[0], [1], [], []]
    with pytest.raises(ValueError):
        plan.split(5, 0)


@pytest.mark.unit
def test_shares_keep_each_message_offset_and_spread_targets_over_workers() -> None:
    offsets = [i * 0.5 for i in range(6)]
    a, b = plan.Target("address", "127.0.0.1", 1), plan.Target("address", "127.0.0.1", 2)
    shares = plan.shares("r", 7, ("ham",), offsets, ("-t", "3"), [a, b], 10.0, 3)
    assert [s.indices for s in shares] == [(0, 3), (1, 4), (2, 5)]
    assert [s.offsets for s in shares] == [(0.0, 1.5), (0.5, 2.0), (1.0, 2.5)]
    assert [s.target.port for s in shares] == [1, 2, 1]


@pytest.mark.unit
def test_message_ids_are_the_corpus_own_and_unique_across_workers() -> None:
    shares = plan.shares("r", 9, ("ham", "spam", "large:3000"), [0.0] * 30, (), [LAB], 5.0, 4)
    ids = [mid for s in shares for mid in plan.message_ids(s)]
    assert len(ids) == len(set(ids)) == 30
    for s in shares:
        assert {plan.message(s, i).id for i in s.indices} == set(plan.message_ids(s))


@pytest.mark.unit
def test_jobs_are_spamc_commands_built_by_the_worker() -> None:
    share = _share()
    jobs = plan.jobs(share, "/usr/bin/spamc", lambda argv: ["wrap", *argv])
    assert {tuple(j.argv[:7]) for j in jobs} == {("wrap", "/usr/bin/spamc", "-l", "-d",
                                                  "127.0.0.1", "-p", "7830")}
    assert [j.spamc_args for j in jobs] == [["-t", "3", "-u", u] for u in
                                            ("alice", "carol", "bob")]  # users[i % 3]
    assert [j.offset for j in jobs] == pytest.approx([0.0, 0.2, 0.4])
    assert [j.message.kind for j in jobs] == ["ham", "ham", "ham"]


@pytest.mark.unit
def test_share_is_validated_when_it_arrives() -> None:
    raw = msgspec.to_builtins(_share())
    assert msgspec.convert(raw, plan.Share) == _share()
    for bad in ({"offsets": [0.0]}, {"kinds": ["nonsense"]}, {"max_wait": 0},
                {"indices": list(range(10_001)), "offsets": [0.0] * 10_001},
                {"target": {"kind": "other", "host": "x", "port": 1}}, {"extra": 1}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({**raw, **bad}, plan.Share)


# -- the rules a worker enforces

@pytest.mark.parametrize("target", [
    plan.Target("address", "127.0.0.1", 783), plan.Target("address", "::1", 783),
    plan.Target("address", "localhost", 783), plan.Target("lab", "127.0.0.5", 783),
    plan.Target("lab", "198.18.3.2", 783, netns="spamdrill-ab12cd-client"),
    plan.Target("lab", "198.18.3.2", 783, netns="spamdrill-ab12cd-client8"),
])
@pytest.mark.unit
def test_loopback_and_the_lab_own_hosts_need_no_ownership(target: plan.Target) -> None:
    plan.check_target(target, owned=False)


@pytest.mark.parametrize("target, needs", [
    (plan.Target("address", "10.0.0.5", 783), "--i-own-this-target"),
    (plan.Target("address", "spamd.example.net", 783), "--i-own-this-target"),
    (plan.Target("lab", "10.0.0.5", 783), "--i-own-this-target"),
])
@pytest.mark.unit
def test_anything_else_needs_the_worker_operator_word(target: plan.Target, needs: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        plan.check_target(target, owned=False)
    assert needs in exc.value.one_line()
    plan.check_target(target, owned=True)


@pytest.mark.parametrize("target", [
    plan.Target("lab", "10.0.0.5", 783, netns="spamdrill-ab12cd-client"),
    plan.Target("lab", "198.18.3.2", 783, netns="someone-elses-netns"),
    plan.Target("lab", "198.18.3.2", 783, netns="spamdrill-ab12cd-spamd"),
    plan.Target("lab", "198.18.3.2", 783, netns="spamdrill-ab12cd-client9"),
])
@pytest.mark.unit
def test_a_lab_client_host_is_only_a_lab_client_host(target: plan.Target) -> None:
    for owned in (False, True):
        with pytest.raises(SpamdrillError):
            plan.check_target(target, owned=owned)


@pytest.mark.unit
def test_spamc_flags_change_behaviour_never_the_target() -> None:
    plan.check_flags(["-t", "3", "-x", "--connect-retries", "1", "-s", "1000000"])
    for flags in (["-d", "10.0.0.5"], ["--dest=10.0.0.5"], ["-p", "25"], ["-U", "/s"],
                  ["-F", "/tmp/conf"], ["--config=/tmp/conf"], ["-e", "/bin/sh"],
                  ["-t", "3", "-e", "/bin/true"]):
        with pytest.raises(SpamdrillError):
            plan.check_flags(flags)


@pytest.mark.unit
def test_lost_records_name_and_size_the_message_and_start_at_its_release() -> None:
    share = _share()
    rs = plan.lost(share, [2, 4], "w1@b", "worker w1@b died", release_ns=10_000_000_000)
    assert [r.id for r in rs] == [plan.message(share, i).id for i in (2, 4)]
    assert [r.size for r in rs] == [len(plan.message(share, i).data) for i in (2, 4)]
    assert [r.start_ns for r in rs] == [10_200_000_000, 10_400_000_000]
    assert {(r.outcome, r.end_ns, r.worker, r.reason) for r in rs} == \
        {("lost", None, "w1@b", "worker w1@b died")}


# -- clocks

@pytest.mark.unit
def test_offset_from_symmetric_legs_is_exact() -> None:
    # the worker's clock is 5 ms ahead; each leg takes 0.4 ms
    s = clock.Sample(sent_ns=1_000 * MS, peer_ns=1_005 * MS + 400_000,
                     received_ns=1_000 * MS + 800_000)
    est = clock.estimate([s])
    assert est == clock.Offset(5 * MS, 800_000)
    assert est.to_worker(2_000 * MS) == 2_005 * MS
    assert est.to_master(est.to_worker(123_456_789)) == 123_456_789


@pytest.mark.unit
def test_the_shortest_round_trip_wins_and_bad_samples_are_ignored() -> None:
    slow = clock.Sample(0, 9 * MS, 10 * MS)  # asymmetric: 9 ms out, 1 ms back
    fast = clock.Sample(20 * MS, 20 * MS + 500_000, 21 * MS)
    backwards = clock.Sample(30 * MS, 0, 29 * MS)
    assert clock.estimate([slow, fast, backwards]) == clock.Offset(0, MS)
    with pytest.raises(ValueError):
        clock.estimate([backwards])


@pytest.mark.unit
def test_release_is_far_enough_ahead_for_the_slowest_worker() -> None:
    fast = clock.Offset(0, MS)
    assert clock.release_at(0, [fast]) == 100 * MS  # the minimum lead
    assert clock.release_at(0, [fast, clock.Offset(3 * MS, 30 * MS)]) == 600 * MS
    assert clock.release_at(0, [clock.Offset(0, 500 * MS)]) == 2000 * MS  # capped
    assert clock.release_at(7, []) == 7 + 100 * MS


@pytest.mark.unit
def test_a_worker_monotonic_stamp_lands_on_the_master_monotonic_clock() -> None:
    worker = clock.Pair(mono_ns=50 * MS, real_ns=10_000 * MS)  # its wall clock: mono + 9950
    master = clock.Pair(mono_ns=700 * MS, real_ns=9_998 * MS)  # wall: mono + 9298 ms
    shift = clock.Shift(worker, clock.Offset(2 * MS, MS), master)
    # worker mono 60 -> worker wall 10010 -> master wall 10008 -> master mono 710
    assert shift(60 * MS) == 710 * MS
    assert master.to_mono(master.to_real(123)) == 123


@pytest.mark.unit
def test_release_lateness_own_spread_and_clock_skew() -> None:
    a = clock.WorkerRelease("w0@a", 1_002 * MS, 1_010 * MS, clock.Offset(-MS, MS))
    b = clock.WorkerRelease("w1@b", 1_000 * MS + 300_000, 1_004 * MS, clock.Offset(2 * MS, MS))
    assert a.late_ns(1_000 * MS) == 2 * MS and a.own_ns == 8 * MS
    assert clock.clock_skew_ns([a.offset, b.offset]) == 3 * MS
    lines = clock.describe([a, b], 1_000 * MS)
    assert "+2.000 ms after the master's release time" in lines[0]
    assert "own release spread 8.000 ms" in lines[0]
    assert "3.000 ms apart" in lines[-1] and "within 9.700 ms" in lines[-1]
    assert clock.describe([], 0) == []


# -- records over the wire, each once, lost when they never come back

def _record(share: plan.Share, i: int, start: int = 5, end: int | None = 9) -> MessageRecord:
    msg = plan.message(share, i)
    return MessageRecord(msg.id, msg.kind, len(msg.data), start, end, "ham", 0, "",
                         plan.flags_for(share, i), score=-1.5)


@pytest.mark.unit
def test_records_cross_the_wire_unchanged_and_wrong_types_are_refused() -> None:
    r = replace(_record(_share(), 0), worker="w0@a")
    raw = json.loads(json.dumps(tally.to_wire(r)))
    assert tally.from_wire(raw) == r
    with pytest.raises(msgspec.ValidationError):
        tally.from_wire({**raw, "start_ns": "soon"})
    assert [len(c) for c in tally.chunks(list(range(1234)), 500)] == [500, 500, 234]


@pytest.mark.unit
def test_every_message_once_with_its_worker_and_the_master_clock() -> None:
    a, b = _share((0, 2, 4)), _share((1, 3))
    t = tally.Tally()
    t.expect("w0@a", a)
    t.expect("w1@b", b)
    assert t.add("w0@a", [_record(a, 0), _record(a, 2)], shift=lambda ns: ns + 100) == 2
    assert t.add("w0@a", [_record(a, 2), _record(b, 1)]) == 0  # a repeat, a stray
    t.add("w1@b", [_record(b, 1), _record(b, 3)])
    t.finish("w1@b")
    t.die("w0@a", "worker w0@a died between +0.5 s and +4.4 s after the release")
    t.die("w1@b", "too late: it had finished")
    assert t.pending() == []
    rs = t.records(release_ns=1_000)
    assert sorted(r.id for r in rs) == sorted([*plan.message_ids(a), *plan.message_ids(b)])
    by_id = {r.id: r for r in rs}
    kept = by_id[plan.message(a, 0).id]
    assert (kept.worker, kept.start_ns, kept.end_ns) == ("w0@a", 105, 109)
    gone = by_id[plan.message(a, 4).id]
    assert (gone.outcome, gone.worker) == ("lost", "w0@a") and "died" in gone.reason
    assert {r.outcome for r in rs if r.worker == "w1@b"} == {"ham"}
    notes = t.notes()
    assert any("1 of its 3 messages lost" in n for n in notes)
    assert any("1 records of messages no worker was given and 1 repeated" in n for n in notes)


@pytest.mark.unit
def test_a_finished_worker_missing_records_are_lost_not_dropped() -> None:
    a = _share((0, 1))
    t = tally.Tally()
    t.expect("w0@a", a)
    t.add("w0@a", [_record(a, 0)])
    t.finish("w0@a")
    lost = [r for r in t.records(0) if r.outcome == "lost"]
    assert [r.id for r in lost] == [plan.message(a, 1).id]
    assert lost[0].reason == "its record never came back"
    t2 = tally.Tally()
    t2.expect("w0@a", a)
    assert {r.reason for r in t2.records(0)} == {"worker w0@a did not finish in time"}


@pytest.mark.unit
def test_runs_database_keeps_the_worker_and_upgrades_an_old_one(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    with sqlite3.connect(db) as conn:  # a database from before messages had a worker
        conn.executescript(
            "CREATE TABLE runs (run TEXT PRIMARY KEY, started REAL, doc TEXT);"
            "CREATE TABLE messages (run TEXT, scenario TEXT, case_name TEXT, id TEXT,"
            " kind TEXT, size INTEGER, start_ns INTEGER, end_ns INTEGER, outcome TEXT,"
            " exit_code INTEGER, reason TEXT, score REAL, spamc_args TEXT);"
            "INSERT INTO messages VALUES ('old','s','','m0','ham',1,0,1,'ham',0,'',0,'[]');")
    r = replace(_record(_share(), 0), worker="w1@b")
    history.store(db, history.IndexEntry(run="new", started=0.0), {"flood": History([r])})
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT run, id, worker FROM messages ORDER BY run").fetchall()
    assert rows == [("new", r.id, "w1@b"), ("old", "m0", "")]
    h = History([r])
    h.to_jsonl(tmp_path / "h.jsonl", "flood")
    assert json.loads((tmp_path / "h.jsonl").read_text())["worker"] == "w1@b"


@pytest.mark.parametrize("args, says", [
    (["--target", "127.0.0.1:1", "--target", "127.0.0.1:2"], "several --target need workers"),
    (["--spamc-args", "-d 10.1.1.1"], "may not choose the spamd (-d)"),
    (["--spamc-args", "-t 3 -e /bin/sh"], "-e (run a command)"),
    (["--worker"], "--worker needs --master-host"),
    (["--count", "20000"], "at most 10,000 from one machine"),
    (["--workers", "2", "--master"], "use one of them"),
    (["--workers", "2", "--target", "10.0.0.5:783"], "not on loopback"),
])
@pytest.mark.lab
def test_flood_bad_input_is_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    r = spamdrill("flood", *args, "--results-dir", str(tmp_path), timeout=60)
    assert r.returncode == 2
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was kept or started


@pytest.mark.unit
def test_without_locust_the_command_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from spamdrill import dist

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "locust" else real(name, *a))
    with pytest.raises(SpamdrillError) as exc:
        dist.require_locust()
    assert "spamdrill[dist]" in exc.value.one_line()


@pytest.mark.unit
def test_more_client_hosts_have_addresses_of_their_own_below_spamds() -> None:
    from spamdrill.lab import netns

    net = netns.Net("ab12cd", "198.18.3", clients=3)
    assert net.roles[:3] == ("client", "client2", "client3")
    ips = [net.ip(r) for r in net.roles]
    assert len(set(ips)) == len(ips)
    assert [net.ip(r) for r in netns.client_roles(netns.MAX_CLIENTS)][-1] == "198.18.3.17"
    assert all(plan.LAB_CLIENT_NS.fullmatch(net.host(r).ns)
               for r in netns.client_roles(netns.MAX_CLIENTS))
    assert len(net.namespaces()) == 1 + 3 + 3  # the switch, three clients, spamd db dns


@pytest.mark.unit
def test_client_hosts_are_one_to_eight() -> None:
    from spamdrill.lab.config import check_overrides

    assert check_overrides("topology", {"clients": 8})["clients"] == 8
    for bad in (0, 9):
        with pytest.raises(SpamdrillError, match=r"topology\.clients"):
            check_overrides("topology", {"clients": bad})
