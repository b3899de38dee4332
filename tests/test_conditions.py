"""Every shipped drill proves that the situation its hypothesis is about occurred, and every
hypothesis can fail: for each drill, made-up evidence where its condition did not occur
gives ``error`` (never ``confirmed``), and evidence where it occurred but the mail fared
badly gives ``refuted``. Sans-IO: the drills' own conditions and checks judge the made-up
histories, as the runner judges a real one."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

from spamdrill import checks
from spamdrill.checks import ScannedAfterMark, SplitByFault, verdict
from spamdrill.drills import calibrate
from spamdrill.drills.scenario import DEFAULT_SCALE, Drill, load_all
from spamdrill.drills.targets import FakesTarget
from spamdrill.drills.timing import Scale
from spamdrill.evidence import Calibration, Evidence, FaultReport
from spamdrill.history import FaultWindow, History, MessageRecord
from spamdrill.proto.netstat import COUNTERS
from spamdrill.vocab import Verdict

pytestmark = pytest.mark.unit

DRILLS = [d for sc in load_all().values() for d in sc.drills()]
CAL = Calibration(scan_s=0.3, samples=(0.3,) * 5, cores=2)
S = 1_000_000_000  # ns per second


def _self_conditioned(d: Drill) -> bool:
    """Checks that say ``error`` themselves when the stream did not meet the fault."""
    return any(isinstance(c, SplitByFault | ScannedAfterMark) for c in d.checks)


def _exempt(d: Drill) -> bool:
    return d.scenario.control or isinstance(d.scenario.target, FakesTarget)


def _scale(d: Drill) -> Scale:
    return Scale(DEFAULT_SCALE if d.scenario.timing.compress else 1.0)


def _cases(d: Drill) -> list[str]:
    return sorted({c.case for c in (*d.checks, *d.conditions)} | {""})


def _msg(i: int, outcome: str, start: float, end: float | None, case: str,
         **kw: Any) -> MessageRecord:
    fate = {"ham": "delivered", "spam": "delivered", "unscanned": "delivered unscanned",
            "lost": "lost"}.get(outcome, "")
    return MessageRecord(id=f"{case or 'm'}-{i}", kind="ham", size=1, start_ns=int(start * S),
                         end_ns=None if end is None else int(end * S), outcome=outcome,
                         exit_code=0, reason="", spamc_args=["-t", "15"], case=case,
                         **{"fate": fate, **kw})


def occurred(d: Drill, extra: list[MessageRecord] | None = None) -> Evidence:
    """Evidence where every condition a shipped drill knows holds: scans one after another,
    some messages that waited past -t, a stream that straddles the fault window and
    spamd's answering again, a full accept queue, spamd's slow scan logged, rspamd's soft
    reject handed back."""
    ms: list[MessageRecord] = []
    for case in _cases(d):
        ms += [msgspec.structs.replace(_msg(i, "ham", 0.0, 1.0 + i, case),
                                       reason="soft reject") for i in range(4)]
        ms += [_msg(4 + i, "unscanned", 0.0, 16.0, case) for i in range(2)]
        ms += [_msg(6 + i, "unscanned", 10.0, 12.0, case) for i in range(2)]
    window = FaultWindow("fault", int(0.5 * S), 20 * S, "")
    log = ("info: spamd: clean message (0.0/5.0) for alice:105 in 12.3 seconds, 828 bytes.\n"
           "spamd: timeout: (60 second timeout while trying to CHECK)\n")
    return Evidence(History([*ms, *(extra or [])], [window]), _scale(d), 9.0, log,
                    {c: 3 for c in COUNTERS}, (), CAL, 1, 0, {"spamd-answered": 5 * S})


def not_occurred(d: Drill) -> Evidence:
    """Evidence where nothing happened: every message scanned at once (side by side),
    before a fault window that met none, no counter moved, spamd logged nothing."""
    ms = [_msg(i, "ham", 0.0, 0.1, case) for case in _cases(d) for i in range(6)]
    window = FaultWindow("fault", 100 * S, 101 * S, "")
    return Evidence(History(ms, [window]), _scale(d), 9.0, "", {c: 0 for c in COUNTERS},
                    (), CAL, 1, 0, {"spamd-answered": 0})


TOOK = (FaultReport("fault", True, "made up"),)


def _verdict(d: Drill, ev: Evidence) -> tuple[Verdict, list[checks.CheckResult]]:
    results = d.judge(ev, _scale(d))
    return verdict(results, TOOK if d.scenario.fault else ()), results


def test_every_shipped_drill_proves_its_condition() -> None:
    missing = [d.name for d in DRILLS
               if not (d.conditions or _self_conditioned(d) or _exempt(d))]
    assert missing == [], f"drills with no condition to prove: {missing}"
    exempt = sorted(d.name for d in DRILLS if _exempt(d))
    assert exempt == ["e2e-delivered", "e2e-rspamd-milter", "spamc-timeouts"], exempt
    # (stated in SCENARIOS.md: the healthy baselines and the fakes)


@pytest.mark.parametrize("drill", [d for d in DRILLS if not _exempt(d)],
                         ids=lambda d: d.name)
def test_a_drill_whose_condition_did_not_occur_is_an_error(drill: Drill) -> None:
    got, results = _verdict(drill, not_occurred(drill))
    assert got == Verdict.ERROR, [(r.name, r.status, r.detail) for r in results]
    assert any("did not occur" in r.detail for r in results), results


BREAKERS: dict[str, Any] = {
    "lost": lambda case: _msg(90, "lost", 1.0, None, case),
    "bounced": lambda case: _msg(91, "error", 1.0, 2.0, case, fate="bounced", dsn="5.3.0"),
    "duplicated": lambda case: _msg(92, "duplicated", 1.0, 2.0, case, fate="duplicated"),
}


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_every_hypothesis_can_be_refuted(drill: Drill) -> None:
    """Its condition occurred, and a message was lost, bounced or delivered twice: some
    such history refutes every shipped hypothesis (none is confirmed whatever happens)."""
    base, _ = _verdict(drill, occurred(drill))
    assert base != Verdict.ERROR, [(r.name, r.status, r.detail)
                                   for r in _verdict(drill, occurred(drill))[1]
                                   if r.status == "error"]
    refuted = []
    for name, make in BREAKERS.items():
        got, _ = _verdict(drill, occurred(drill, [make(c) for c in _cases(drill)]))
        if got == Verdict.REFUTED:
            refuted.append(name)
    assert refuted, f"{drill.name}: no broken history refutes it"


def _named(name: str) -> Drill:
    return next(d for d in DRILLS if d.name == name)


def test_an_overload_that_never_queued_is_an_error_not_confirmed() -> None:
    """The fresh machine's e2e-spamd-overloaded: every message scanned in time, nothing
    waited, nothing bounced or was lost: it used to be confirmed."""
    d = _named("e2e-spamd-overloaded")
    fast = [_msg(i, "ham", 0.0, 0.12 * (i + 1), c) for c in _cases(d) for i in range(12)]
    ev = Evidence(History(fast), 1.0, 300.0, "", None, (), None, 1)
    got, results = _verdict(d, ev)
    assert got == Verdict.ERROR
    assert "the condition did not occur" in results[0].detail


def test_a_staircase_of_parallel_scans_is_an_error() -> None:
    d = _named("spamd-staircase")
    side_by_side = [_msg(i, "ham", 0.0, 1.0 + 0.01 * i, "") for i in range(12)]
    ev = Evidence(History(side_by_side), 1.0, 300.0, "", None, (), CAL, 1)
    assert _verdict(d, ev)[0] == Verdict.ERROR
    serial = [_msg(i, "ham", 0.0, 0.3 * (i + 1), "") for i in range(12)]
    assert _verdict(d, dataclasses.replace(ev, history=History(serial)))[0] == \
        Verdict.CONFIRMED


def test_a_limit_that_refused_nothing_is_no_evidence() -> None:
    from spamdrill.drills.nemesis.database import MaxConnections
    from spamdrill.drills.recording import Answers, RecordingLab

    fault = MaxConnections(2)
    fault.REFUSAL_WITHIN_S = 0.05
    lab = RecordingLab(answers=Answers(spamd_log="clean message"))
    fault.inject(lab)
    fault.lift(lab)
    report = fault.evidence(lab)
    assert not report.took_effect and "did not occur" in report.detail
    d = _named("db-max-connections/max-children-50")
    results = d.judge(occurred(d), Scale(1.0))
    assert verdict(results, (report,)) == Verdict.ERROR


@pytest.mark.parametrize("scan_s", [0.06, 0.15, 0.3, 0.6, 1.2])
def test_calibrated_overloads_queue_past_t_at_any_scan_time(scan_s: float) -> None:
    """The arithmetic at speeds this machine cannot have: a calibrated overload sends
    ``fill`` times what one child scans within -t, so the last message waits ``fill`` times
    -t whatever the scan time; the staircase's floor moves with the scan."""
    cal = Calibration(scan_s=scan_s, samples=(scan_s,), cores=2)
    for name in ("spamd-overload",):
        load = _named(name).scenario.load
        assert load.fill is not None
        n = calibrate.fill_count(load.fill, list(load.spamc_args), cal)
        t = 15.0
        assert n * scan_s >= load.fill * t * 0.99  # the queue outlasts -t by fill times
    # e2e: the sleep rule sets the scan time, so the queue is the same on any machine
    e2e = _named("e2e-spamd-overloaded").scenario
    per_scan = max(1.0, scan_s) + scan_s  # the rule's sleep plus this machine's own work
    total = e2e.load.count * len(e2e.target.wrappers)  # type: ignore[union-attr]
    assert total * per_scan >= 4 * 5.0  # 4x more work than -t 5 lets through, at least


def test_many_children_sharing_few_cpus_lower_the_bound_not_one_child() -> None:
    """flood's 50 children on half a core: each wave of 50 scans finishes together after
    50 x s / CPUs, later than -t; refuted there for scanning 24 where one child alone
    'must' scan 27. With the CPUs the process really has, nothing is promised, and the
    rest of the bound (some unscanned) still holds."""
    fits = checks.FitsCapacity()
    flood = [_msg(i, "ham" if i < 24 else "unscanned", 0.0, 15.0, "") for i in range(300)]
    half = Calibration(scan_s=0.273, samples=(0.273,), cores=0.5)
    ev = Evidence(History(flood), 1.0, 300.0, "", None, (), half, 50)
    assert fits.judge(ev).ok, fits.judge(ev).detail
    # one child, or as many children as CPUs: the one-child bound, as before
    assert fits.judge(dataclasses.replace(ev, children=1)).status == "fail"
    two = Calibration(scan_s=0.273, samples=(0.273,), cores=2)
    assert fits.judge(dataclasses.replace(ev, children=2, calibration=two)).status == "fail"
    # all scanned when far more than could be: the upper bound still fails it
    every = [_msg(i, "ham", 0.0, 1.0, "") for i in range(300)]
    assert fits.judge(dataclasses.replace(ev, history=History(every))).status == "fail"


def test_the_cpus_a_cgroup_quota_leaves() -> None:
    files = {"/sys/fs/cgroup/cpu/x/cpu.cfs_quota_us": "50000\n",
             "/sys/fs/cgroup/cpu/x/cpu.cfs_period_us": "100000\n",
             "/sys/fs/cgroup/a/cpu.max": "150000 100000\n",
             "/sys/fs/cgroup/b/cpu.max": "max 100000\n",
             "/sys/fs/cgroup/cpu/y/cpu.cfs_quota_us": "-1\n"}

    def read(p: str) -> str:
        return files.get(p, "")

    assert calibrate.cgroup_quota("5:cpu,cpuacct:/x\n1:name=systemd:/\n", read) == 0.5
    assert calibrate.cgroup_quota("0::/a\n", read) == 1.5
    assert calibrate.cgroup_quota("0::/b\n", read) is None
    assert calibrate.cgroup_quota("4:cpu:/y\n", read) is None
    assert calibrate.cgroup_quota("", read) is None
