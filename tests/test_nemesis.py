"""The nemesis without a lab: every fault's inject / lift / lift-again against a recording
lab-control fake, the schedule's timeline, and the runner of that timeline. (The same
faults against the real lab, and healed after SIGKILL: test_faults.py.)"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from spamdrill.drills.nemesis import FAULT_KINDS, FAULT_SPECS, AnyFaultSpec, Schedule
from spamdrill.drills.nemesis.timeline import Nemesis, timeline
from spamdrill.drills.recording import Answers, RecordingLab
from spamdrill.drills.timing import Scale
from spamdrill.lab.dbadmin import DbSession
from spamdrill.lab.proxy import Counters

pytestmark = pytest.mark.unit

# one example of every fault kind; what the recording lab must see; what it must answer
# for the fault to count as having taken effect
# rspamd 3.4's own lines, from the lab's rspamd.log
REDIS_REFUSED = ("2026-12-07 03:00:50 #5937(normal) <fc28c2>; task; rspamd_redis_connected: "
                 "error getting reply from redis server 127.0.0.1:41559: Connection refused\n")
TASK_TIMEOUT = ("2026-12-07 03:01:26 #5937(normal) <22c29a>; task; rspamd_task_timeout: "
                "processing of task time out: 8.0s spent; 8.0s limit; forced processing\n")
DNS_TIMED_OUT = ("2026-12-07 06:09:59 #32388(normal) <fc74d5>; lua; asn.lua:72: error querying "
                 'dns "34.216.184.93.asn.rspamd.com" on 127.53.183.172: query timed out\n')
REDIS_TIMED_OUT = ("2026-12-07 06:10:26 #1646(normal) <d05776>; task; rspamd_redis_timeout: "
                   "connection to redis server 127.0.0.1:50269 timed out\n")
# a normal worker told to stop, and the scan it held finished after that
TERMINATING = ("2026-12-07 06:10:26 #1646(normal) <06b166>; main; rspamd_worker_term_handler: "
               "terminating after receiving signal Terminated\n")
SCANNED = ("2026-12-07 06:10:26 #1646(normal) <238f7f>; task; rspamd_task_write_log: id: "
           "<ham-1-tok1x43bcb293@spamdrill.lab.test>, ip: 93.184.216.34, (default: F (no "
           "action): [2.10/15.00] [AUTH_NA(1.00){}]\n")
EXAMPLES: dict[str, tuple[dict[str, Any], list[str], Answers]] = {
    "spamd-down": ({}, ["stop spamd", "heal stop spamd", "start spamd"],
                   Answers(accepts=False)),
    "stalling-clients": ({"count": 1}, [], Answers()),
    "db-max-connections": ({"max_connections": 2},
                           ["set max_connections 2", "set max_user_connections 2",
                            "heal set max_user_connections 2", "heal set max_connections 2"],
                           Answers(spamd_log="SQL error: User spamass already has more "
                                   "than 'max_user_connections' active")),
    "db-read-lock": ({}, ["hold db lock global-read", "list db sessions",
                          "heal hold db lock global-read"],
                     Answers(db_sessions=(DbSession(7, "Query", "Waiting for backup lock",
                                                    2, "x"),))),
    "db-write-lock": ({}, ["hold db lock bayes-write", "list db sessions",
                           "heal hold db lock bayes-write"],
                      Answers(db_sessions=(DbSession(
                          7, "Query", "Waiting for table metadata lock", 1, "x"),))),
    "db-cut-mid-query": ({}, ["hold db lock userpref-write", "list db sessions",
                              "kill db session 41", "heal hold db lock userpref-write"],
                         Answers(db_sessions=(DbSession(41, "Query", "", 0, ""),))),
    "db-frozen": ({}, ["pause db", "heal pause db"], Answers()),
    "db-down": ({}, ["kill db", "heal kill db", "start db"], Answers(accepts=False)),
    "dns": ({"rules": [{"name": "*", "mode": "drop"}]}, ["dns * drop", "heal dns * drop"],
            Answers(dns_actions={"drop": 3, "answer": 1})),
    "packets": ({"host": "db", "action": "drop"},
                ["packets db drop", "heal packets db drop"], Answers(packet_count=7)),
    "over-quota": ({"user": "carol"}, ["fill quota carol", "heal fill quota carol"],
                   Answers(quota_usage=(10_000_000, 10_000_000))),
    "spamd-queue-full": ({}, [], Answers()),
    "spamd-answers-empty": ({}, [], Answers()),
    "unknown-user": ({"user": "mallory"}, ["look up mallory"], Answers(user_known=False)),
    "proxy": ({"link": "spamd-db", "mode": "latency", "latency": 10},
              ["shape db link upstream: latency", "heal shape db link"],
              Answers(db_link_counters=Counters(connections=1, shaped_chunks=4))),
    "rspamd-down": ({}, ["stop rspamd", "heal stop rspamd", "start rspamd"],
                    Answers(accepts=False)),
    "redis-down": ({}, ["stop redis", "heal stop redis", "start redis"],
                   Answers(accepts=False, rspamd_log=REDIS_REFUSED)),
    "redis-frozen": ({}, ["pause redis", "heal pause redis"],
                     Answers(redis_state="T", rspamd_log=REDIS_REFUSED + TASK_TIMEOUT)),
    "rspamd-slow-rule": ({"delay": 60}, ["dns slow-rule.lab.test delay",
                                         "heal dns slow-rule.lab.test delay"],
                         Answers(dns_actions={"delay 60s": 2}, rspamd_log=TASK_TIMEOUT)),
    "rspamd-dns-dead": ({}, ["dns * drop", "heal dns * drop"],
                        Answers(dns_actions={"drop": 9}, rspamd_log=DNS_TIMED_OUT)),
    "rspamd-stopping": ({}, ["stop rspamd", "heal stop rspamd", "start rspamd"],
                        Answers(accepts=False, rspamd_log=TERMINATING + SCANNED)),
    "redis-dropped": ({}, ["shape redis link upstream: blackhole", "heal shape redis link"],
                      Answers(redis_link_counters=Counters(connections=1, shaped_chunks=9),
                              rspamd_log=REDIS_TIMED_OUT)),
    "redis-slow": ({"latency": 0.15},
                   ["shape redis link upstream: latency", "heal shape redis link"],
                   Answers(redis_link_counters=Counters(connections=1, shaped_chunks=9))),
}


def spec(kind: str, extra: dict[str, Any]) -> Any:
    return msgspec.convert({"kind": kind, **extra}, AnyFaultSpec)


def test_every_fault_kind_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(FAULT_KINDS)
    assert len(FAULT_SPECS) == len(FAULT_KINDS)


# these open real sockets (a stalled client, a stand-in on spamd's port): the
# conformance suite runs them against the lab
@pytest.mark.parametrize("kind", sorted(set(EXAMPLES) - {
    "stalling-clients", "spamd-queue-full", "spamd-answers-empty"}))
def test_inject_lift_and_lift_again(kind: str) -> None:
    extra, expected, answers = EXAMPLES[kind]
    lab = RecordingLab(answers=answers)
    fault = spec(kind, extra).build(Scale(1.0))
    fault.setup(lab)
    fault.inject(lab)
    fault.observe(lab)
    fault.lift(lab)
    calls = list(lab.calls)
    again = fault.lift(lab)  # idempotent: nothing more happens
    assert lab.calls == calls, f"lifting twice acted again: {again}"
    for want in expected:  # in this order, other calls (queries) in between
        assert any(c.startswith(want) for c in calls), (want, calls)
    positions = [next(i for i, c in enumerate(calls) if c.startswith(w)) for w in expected]
    assert positions == sorted(positions), calls
    assert fault.evidence(lab).took_effect, fault.evidence(lab)
    fault.teardown(lab)
    fault.teardown(lab)


@pytest.mark.parametrize("kind,silent", [
    ("spamd-down", Answers(accepts=True)),
    # the server kept its own limit
    ("db-max-connections", Answers(db_globals={"max_user_connections": 100000},
                                   spamd_log="max_user_connections")),
    # the limit was set, but spamd never met it: no refusal in its log is no evidence
    ("db-max-connections", Answers()),
    ("db-read-lock", Answers(db_sessions=(DbSession(3, "Sleep", "", 0, ""),))),
    # killed between queries
    ("db-cut-mid-query", Answers(db_sessions=(DbSession(41, "Sleep", "", 0, ""),))),
    ("db-frozen", Answers(db_process_state="S")),
    ("db-down", Answers(accepts=True)),
    ("dns", Answers(dns_actions={"answer": 5})),
    ("packets", Answers(packet_count=0)),
    ("proxy", Answers(db_link_counters=Counters(connections=1))),
    ("over-quota", Answers(quota_usage=(100, 10_000_000))),
    ("unknown-user", Answers(user_known=True)),
    ("rspamd-down", Answers(accepts=True)),
    ("redis-down", Answers(accepts=True, rspamd_log=REDIS_REFUSED)),
    # Redis went, but no scan met it: rspamd logged nothing about Redis
    ("redis-down", Answers(accepts=False, rspamd_log="")),
    ("redis-frozen", Answers(redis_state="S", rspamd_log=REDIS_REFUSED + TASK_TIMEOUT)),
    # frozen, and rspamd timed out on Redis, but no scan was held to its task_timeout
    ("redis-frozen", Answers(redis_state="T", rspamd_log=REDIS_REFUSED)),
    # the slow rule's queries delayed, but no scan was held to task_timeout (or none asked)
    ("rspamd-slow-rule", Answers(dns_actions={"delay 60s": 2}, rspamd_log="")),
    ("rspamd-slow-rule", Answers(dns_actions={}, rspamd_log=TASK_TIMEOUT)),
    # queries dropped (spamd's, say), but no lookup of rspamd's timed out
    ("rspamd-dns-dead", Answers(dns_actions={"drop": 9}, rspamd_log=TASK_TIMEOUT)),
    ("rspamd-dns-dead", Answers(dns_actions={"answer": 9}, rspamd_log=DNS_TIMED_OUT)),
    ("rspamd-stopping", Answers(accepts=True, rspamd_log=TERMINATING + SCANNED)),
    # stopped, but no scan was in flight: nothing finished after the SIGTERM
    ("rspamd-stopping", Answers(accepts=False, rspamd_log=SCANNED + TERMINATING)),
    # the link shaped, but none of rspamd's Redis traffic went through it
    ("redis-dropped", Answers(redis_link_counters=Counters(connections=1),
                              rspamd_log=REDIS_TIMED_OUT)),
    # traffic dropped, but rspamd never waited out a Redis timeout
    ("redis-dropped", Answers(redis_link_counters=Counters(shaped_chunks=9))),
    ("redis-slow", Answers(redis_link_counters=Counters(connections=1))),
    ("redis-slow", Answers(redis_link_counters=None)),  # the counters unreadable
])
def test_a_fault_that_left_no_trace_says_so(kind: str, silent: Answers,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdicts issue: a fault silently not applied (an nft rule on the wrong port, a
    lock on another table) must not count as having happened."""
    from spamdrill.drills.nemesis.base import Stopped
    from spamdrill.drills.nemesis.database import Down, MaxConnections
    from spamdrill.drills.nemesis.redis import RedisFrozen

    monkeypatch.setattr(Down, "REFUSED_WITHIN", 0.1)
    monkeypatch.setattr(Stopped, "REFUSED_WITHIN", 0.1)
    monkeypatch.setattr(MaxConnections, "REFUSAL_WITHIN_S", 0.1)
    monkeypatch.setattr(RedisFrozen, "STOPPED_WITHIN", 0.1)
    extra, _, _ = EXAMPLES[kind]
    lab = RecordingLab(answers=silent)
    fault = spec(kind, extra).build(Scale(1.0))
    fault.setup(lab)
    fault.inject(lab)
    fault.observe(lab)
    fault.lift(lab)
    report = fault.evidence(lab)
    assert not report.took_effect and report.detail, report


def test_spamc_spamd_proxy_reroutes_the_clients_and_shapes_both_ways() -> None:
    lab = RecordingLab()
    fault = spec("proxy", {"mode": "bandwidth", "rate": 1200}).build(Scale(100 / 3))
    fault.setup(lab)
    fault.inject(lab)
    fault.lift(lab)
    fault.teardown(lab)
    assert lab.calls[0] == "proxy before spamd"
    assert "upstream: bandwidth (rate 40000, piece 1024)" in lab.calls[1]
    assert "downstream" in lab.calls[1] and lab.calls[2] == "proxy shape pass"
    assert lab.calls[-1] == "proxy close"
    assert fault.evidence(lab).took_effect


def test_timeline() -> None:
    steps = timeline(Schedule(at=1.0, duration=2.0))
    assert [(s.at, s.action) for s in steps] == [(1.0, "inject"), (1.5, "observe"),
                                                 (2.5, "observe"), (3.0, "lift")]
    repeated = timeline(Schedule(at=0, duration=0.2, every=1.0, times=3))
    assert [s.at for s in repeated if s.action == "inject"] == [0.0, 1.0, 2.0]
    assert [s.at for s in repeated if s.action == "lift"] == [0.2, 1.2, 2.2]
    held = timeline(Schedule(), horizon=3)
    assert held[0].action == "inject" and all(s.action != "lift" for s in held)
    assert timeline(Schedule(at=0, duration=0))[:2] == [timeline(Schedule())[0],
                                                        timeline(Schedule(duration=0))[1]]


def test_schedule_scales_with_the_drill() -> None:
    s = spec("db-frozen", {"at": 100, "duration": 400, "every": 500, "times": 2})
    assert s.schedule(Scale(100)) == Schedule(1.0, 4.0, 5.0, 2)


def test_nemesis_runs_the_timeline_and_always_heals() -> None:
    lab = RecordingLab()
    nemesis = Nemesis(spec("db-frozen", {}).build(Scale(1.0)), Schedule(at=0.0, duration=0.05), lab)
    nemesis.before_load()  # injected before the first message
    assert lab.calls == ["pause db"] and len(nemesis.windows) == 1
    nemesis.start(time.monotonic())
    deadline = time.monotonic() + 5
    while nemesis.windows[0].end_ns is None and time.monotonic() < deadline:
        time.sleep(0.01)
    nemesis.heal()
    nemesis.heal()
    assert lab.calls.count("heal pause db") == 1
    assert nemesis.windows[0].end_ns is not None
    assert nemesis.evidence().took_effect


def test_a_failed_injection_is_evidence_of_nothing() -> None:
    class Failing(RecordingLab):
        def pause_db(self) -> Any:
            raise OSError("no such process")

    nemesis = Nemesis(spec("db-frozen", {}).build(Scale(1.0)), Schedule(), Failing())
    nemesis.before_load()
    nemesis.heal()
    report = nemesis.evidence()
    assert not report.took_effect and "no such process" in report.detail
