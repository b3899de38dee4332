"""Sans-IO cores of the drills: corpus, schedules, spamc outcome classification, time
compression, scenario validation, findings, exit status, and checks -- each check is fed
evidence that breaks it and must fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from spamdrill import checks, corpus
from spamdrill.checks import CHECKS, judge_safely
from spamdrill.drills.findings import Budgets, judge
from spamdrill.drills.nemesis import FAULT_KINDS, AnyFaultSpec
from spamdrill.drills.scenario import DEFAULT_SCALE, load_all, parse
from spamdrill.drills.timing import Scale, bad_placeholders, expand_args
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import Calibration, Evidence, FaultReport
from spamdrill.history import FaultWindow, History, MessageRecord
from spamdrill.load.schedule import offsets
from spamdrill.proto.spamc_result import classify
from spamdrill.vocab import Fate, Finding, Layer

pytestmark = pytest.mark.unit


def test_corpus_is_deterministic_and_unique() -> None:
    kinds = ["ham", "spam", "multipart", "encoded", "large:250000", "slow:2"]
    a, b = corpus.mix(kinds, 60, seed=7), corpus.mix(kinds, 60, seed=7)
    assert [m.data for m in a] == [m.data for m in b]
    assert len({m.data for m in a}) == 60
    assert len({m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in a}) == 60
    assert corpus.mix(kinds, 6, seed=8)[0].data != a[0].data
    sizes = {m.kind: len(m.data) for m in a}
    assert sizes["large:250000"] == 250000
    assert corpus.GTUBE.encode() in a[1].data
    assert b"SPAMDRILL-SLEEP-2 " in a[5].data
    with pytest.raises(ValueError):
        corpus.make("nonsense", 1)


def test_schedules() -> None:
    assert offsets("burst", 3) == [0.0, 0.0, 0.0]
    assert offsets("rate", 3, rate=2) == [0.0, 0.5, 1.0]
    assert offsets("staircase", 5, step=2, interval=1.5) == [0.0, 0.0, 1.5, 1.5, 3.0]
    for bad in (("rate", {"rate": 0}), ("staircase", {"step": 0}), ("zigzag", {})):
        with pytest.raises(ValueError):
            offsets(bad[0], 2, **bad[1])  # type: ignore[arg-type]


MSG = corpus.ham(1)


def test_classify_spamc_results() -> None:
    scanned = b"X-Spam-Status: Yes, score=1001.3 required=5.0 tests=GTUBE\r\n\r\nbody"
    v = classify(MSG, scanned, "", 0)
    assert (v.outcome, v.score, v.required) == ("spam", 1001.3, 5.0)
    assert classify(MSG, scanned.replace(b"Yes", b"No"), "", 0).outcome == "ham"
    refused = ("spamc: connect to spamd on 127.0.0.1 failed, retrying (#1 of 3): "
               "Connection refused\n")
    v = classify(MSG, MSG, refused, 0)
    assert (v.outcome, v.reason) == ("unscanned", "refused")
    timed = "spamc: connect to spamd on 127.0.0.1 failed, retrying (#1 of 3): timed out\n"
    assert classify(MSG, MSG, timed, 0).reason == "connect-timeout"
    assert classify(MSG, b"", "", 69).outcome == "error"
    assert classify(MSG, b"", "", None, killed=True).outcome == "lost"
    big = "spamc: skipped message, greater than max message size (512000 bytes)"
    assert classify(MSG, MSG, big, 0).reason == "too-big"


def test_scaling() -> None:
    assert Scale(DEFAULT_SCALE).whole_seconds(100) == 3
    assert Scale(DEFAULT_SCALE).whole_seconds(1) == 1  # never below a second
    assert Scale(1).whole_seconds(100) == 100
    assert expand_args(["-t", "{t:100}", "-n", "{t:30}"], DEFAULT_SCALE) == \
        ["-t", "3", "-n", "1"]
    assert bad_placeholders(["-t", "{t:100}", "{x:3}", "{t:}"]) == ["{x:3}", "{t:}"]
    scaled = checks.DeliveryBudget(budget_s=300).scaled(Scale(100).seconds)
    assert isinstance(scaled, checks.DeliveryBudget) and scaled.budget_s == 3.0
    assert checks.DeliveryBudget().scaled(Scale(100).seconds) == checks.DeliveryBudget()


def test_one_scale_for_every_drill_time() -> None:
    """A drill's durations, rates, whole-second flags and spamd's time keys all come from
    one Scale: the fault schedule, the proxy's toxics and the checks agree on it."""
    s = Scale(100)
    assert (s.seconds(300), s.maybe(None), s.rate(1200), s.whole_seconds(30)) == \
        (3.0, None, 120000, 1)
    assert s.spamd({"timeout_tcp": 300, "max_children": 5}) == {"timeout_tcp": 3,
                                                                "max_children": 5}
    fault = msgspec.convert({"kind": "proxy", "mode": "latency", "latency": 200,
                             "at": 100, "duration": 400}, AnyFaultSpec)
    assert fault.schedule(s).at == 1.0 and fault.schedule(s).duration == 4.0
    assert "latency 2" in fault.shape(s).describe()
    with pytest.raises(ValueError, match="positive"):
        Scale(0)


def test_shipped_scenarios_parse() -> None:
    scs = load_all()
    for name in ("spamd-down", "spamd-stopping", "spamd-starting", "spamd-staircase",
                 "spamd-overload", "flood", "spamd-timeouts", "spamc-timeouts"):
        assert scs[name].hypothesis
    # the drills whose outcome is a count of scans that fit in -t run uncompressed
    for name in ("flood", "spamd-overload", "spamd-staircase", "backlog-full",
                 "spamd-stopping", "spamd-starting"):
        assert not scs[name].timing.compress and scs[name].timing.why, name


BASE: dict[str, Any] = {"name": "x", "hypothesis": "h"}
BAD = [
    ({"checks": [{"kind": "vibes"}]}, "checks[0].kind", "known checks: nothing_lost"),
    ({"fault": {"kind": "meteor"}}, "$.fault.kind", "known fault kinds: spamd-down"),
    ({"load": {"count": "many"}}, "$.load.count", "Expected `int`"),
    ({"load": {"count": 0}}, "$.load.count", ">= 1"),
    ({"load": {"kinds": ["hamm"]}}, "$.load", "unknown message kind 'hamm' (known: ham"),
    ({"load": {"spamc_args": ["-t", "{x:100}"]}}, "$.load", "not a placeholder"),
    ({"load": {"fill": 2}}, "bad.toml", "load.fill needs [timing] calibrate = true"),
    ({"lab": {"spamd": {"max_childs": 1}}}, "$.lab", "unknown setting spamd.max_childs"),
    ({"lab": {"spamd": {"max_children": "one"}}}, "$.lab",
     "spamd.max_children: expected int, got str"),
    ({"lab": {"nonsense": {}}}, "$.lab", "unknown field `nonsense`"),
    ({"checks": [{"kind": "scanned_fraction", "min": 2}]}, "checks[0].min", "<= 1"),
    ({"checks": [{"kind": "latency_bound"}]}, "checks[0]", "missing required field"),
    ({"checks": [{"kind": "spamd_log", "pattern": "("}]}, "checks[0]", "not a regular"),
    ({"fault": {"kind": "proxy", "mode": "wobble"}}, "$.fault", "unknown proxy mode"),
    ({"fault": {"kind": "proxy"}}, "$.fault", "either 'mode' or 'toxics'"),
    ({"fault": {"kind": "proxy", "toxics": {"upstream": [{"type": "x"}]}}},
     "upstream[0].type", "Invalid value"),
    ({"fault": {"kind": "packets"}}, "bad.toml", "needs [lab.topology] kind"),
    ({"fault": {"kind": "dns", "rules": [{"name": "*", "mode": "sulk"}]}},
     "rules[0]", "unknown DNS mode"),
    ({"fault": {"kind": "spamd-down", "times": 3}}, "$.fault", "needs 'every'"),
    ({"fault": {"kind": "db-max-connections", "max_connections": 0}},
     "max_connections", ">= 1"),
    ({"target": {"kind": "fakes", "cases": [{"listeners": ["grumpy"], "flag_sets": []}]}},
     "listeners[0]", "known: refuse, queue-full, silent, drip, nonreader"),
    ({"load": {"schedule": "zigzag"}}, "$.load.schedule", "known: burst, rate, staircase"),
    ({"name": "Has Spaces"}, "bad.toml", "lower-case letters"),
]


@pytest.mark.parametrize("extra,where,what", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_scenarios_are_one_line_errors(extra: dict[str, Any], where: str,
                                           what: str) -> None:
    with pytest.raises(SpamdrillError) as err:
        parse({**BASE, **extra}, "bad.toml")
    line = err.value.one_line()
    assert "\n" not in line and line.startswith("bad.toml: ")
    assert where in line and what in line, line


def test_missing_hypothesis() -> None:
    with pytest.raises(SpamdrillError, match="missing required field `hypothesis`"):
        parse({"name": "x"})


def rec(i: int, outcome: str, start: float, end: float | None, **kw: Any) -> MessageRecord:
    return MessageRecord(id=f"m{i}", kind=kw.pop("kind", "ham"), size=1,
                         start_ns=int(start * 1e9),
                         end_ns=None if end is None else int(end * 1e9), outcome=outcome,
                         exit_code=0, reason="", spamc_args=kw.pop("args", ["-t", "15"]),
                         **kw)


def ev(*records: MessageRecord, **kw: Any) -> Evidence:
    return Evidence(History(messages=list(records), faults=kw.pop("faults", [])),
                    kw.pop("scale", 1.0), kw.pop("budget_s", 9.0), **kw)


def test_nothing_lost() -> None:
    assert checks.NothingLost().judge(ev(rec(1, "ham", 0, 1), rec(2, "unscanned", 0, 2))).ok
    bad = checks.NothingLost().judge(ev(rec(1, "ham", 0, 1), rec(2, "lost", 0, None)))
    assert bad.status == "fail" and bad.offenders == ["m2"]
    assert not checks.NothingLost().judge(ev(rec(3, "error", 0, 1))).ok


def test_all_unscanned() -> None:
    assert checks.AllUnscanned().judge(ev(rec(1, "unscanned", 0, 2))).ok
    assert checks.AllUnscanned().judge(ev(rec(1, "unscanned", 0, 2),
                                          rec(2, "spam", 0, 1))).offenders == ["m2"]
    assert not checks.AllUnscanned().judge(ev()).ok  # nothing seen is not a pass


def test_scanned_fraction_and_latency() -> None:
    h = (rec(1, "ham", 0, 1), rec(2, "unscanned", 0, 3))
    assert checks.ScannedFraction(min=0.5, max=0.5).judge(ev(*h)).ok
    assert not checks.ScannedFraction(min=0.9).judge(ev(*h)).ok
    big = rec(3, "unscanned", 0, 3, kind="large:180000")
    mixed = (rec(1, "ham", 0, 1), big)
    assert checks.ScannedFraction(min=1, of="ham").judge(ev(*mixed)).ok
    assert checks.ScannedFraction(max=0, of="large:").judge(ev(*mixed)).ok
    assert checks.ScannedFraction(min=1, of="large:").judge(ev(*mixed)).offenders == ["m3"]
    assert not checks.ScannedFraction(of="multipart").judge(ev(*mixed)).ok  # no evidence
    assert checks.LatencyBound(max_s=3.5).judge(ev(*h)).ok
    assert checks.LatencyBound(max_s=2).judge(ev(*h)).offenders == ["m2"]


def test_delivery_budget() -> None:
    assert checks.DeliveryBudget().judge(ev(rec(1, "unscanned", 0, 8.9))).ok
    over = checks.DeliveryBudget().judge(ev(rec(1, "unscanned", 0, 11.0)))
    assert not over.ok and "past it" in over.detail
    assert not checks.DeliveryBudget().judge(ev(rec(1, "lost", 0, None))).ok
    assert not checks.DeliveryBudget(budget_s=5).judge(ev(rec(1, "ham", 0, 6))).ok


def test_staircase() -> None:
    cal = Calibration(scan_s=0.3, samples=(0.3,), cores=2)
    good = ev(*(rec(i, "ham", 0, 0.05 * (i + 1)) for i in range(5)), calibration=cal)
    assert checks.Staircase(fraction=0).judge(good).ok
    # steps of 0.05 s against a 0.3 s scan: scans ran side by side, no staircase
    assert checks.Staircase().judge(good).status == "fail"
    serial = ev(*(rec(i, "ham", 0, 0.3 * (i + 1)) for i in range(5)), calibration=cal)
    assert checks.Staircase().judge(serial).ok
    # on a machine twice as fast the same drill's steps halve, and still pass
    fast = Calibration(scan_s=0.15, samples=(0.15,), cores=2)
    quick = ev(*(rec(i, "ham", 0, 0.15 * (i + 1)) for i in range(5)), calibration=fast)
    assert checks.Staircase().judge(quick).ok
    tied = ev(rec(1, "ham", 0, 1), rec(2, "ham", 0, 1), rec(3, "ham", 0, 2), calibration=cal)
    assert not checks.Staircase().judge(tied).ok
    assert not checks.Staircase().judge(ev(rec(1, "ham", 0, 1), calibration=cal)).ok
    assert checks.Staircase().judge(ev(*serial.history.messages)).status == "error"


def test_unscanned_near_timeout() -> None:
    near = checks.UnscannedNearTimeout(timeout_s=3, tolerance_s=0.5)
    assert near.judge(ev(rec(1, "unscanned", 0, 3.1))).ok
    assert not near.judge(ev(rec(1, "unscanned", 0, 1))).ok
    assert not near.judge(ev(rec(1, "ham", 0, 1))).ok


def test_spamd_log_and_kernel_counter() -> None:
    log = "a\nspamd: timeout: (2 second timeout while trying to CHECK)\n"
    assert checks.SpamdLog(pattern="second timeout while trying to CHECK").judge(
        ev(spamd_log=log)).ok
    assert not checks.SpamdLog(pattern="CHECK", min=2).judge(ev(spamd_log=log)).ok
    k = checks.KernelCounter(counter="TcpExtListenOverflows", min=1)
    assert k.judge(ev(kernel={"TcpExtListenOverflows": 3})).ok
    assert k.judge(ev(kernel={"TcpExtListenOverflows": 0})).status == "fail"
    assert checks.KernelCounter(counter="TcpExtListenOverflows", max=0).judge(
        ev(kernel={"TcpExtListenOverflows": 2})).status == "fail"
    assert k.judge(ev()).status == "error"  # not measured: the drill cannot say
    assert k.judge(ev(kernel={})).status == "error"


def test_model_agrees_fails_on_disagreement() -> None:
    def case(name: str, args: list[str], seconds: float) -> MessageRecord:
        return rec(0, "unscanned", 0, seconds, args=args, case=name, peer=name.split()[0])

    agree = checks.ModelAgrees()
    ok = ev(case("queue-full -t 3", ["-t", "3"], 11.02), case("refuse -t 3", ["-t", "3"], 2.0))
    assert agree.judge(ok).ok
    wrong = ev(case("queue-full -t 3", ["-t", "3"], 3.0))
    assert not agree.judge(wrong).ok
    assert "predicted 11 s, measured 3.00 s" in agree.judge(wrong).detail
    # unbounded is confirmed only by a time past what -t alone allows
    assert not agree.judge(ev(case("drip -t 3", ["-t", "3"], 3.1))).ok
    assert agree.judge(ev(case("drip -t 3", ["-t", "3"], 45.0))).ok
    refused = checks.ModelAgrees(mode="spamd-refused")  # type: ignore[arg-type]
    assert refused.judge(ev(rec(1, "unscanned", 0, 2.0, args=["-t", "3"]))).ok
    assert not refused.judge(ev(rec(1, "unscanned", 0, 0.1, args=["-t", "3"]))).ok
    assert not agree.judge(ev()).ok  # nothing compared is not agreement


CAL = Calibration(scan_s=0.3, samples=(0.3,) * 5, cores=2)


def test_fits_capacity_is_calibrated() -> None:
    fits = checks.FitsCapacity()  # margin 2: -t 15 / (0.3 s x 2) = 25 must be scanned
    twelve = [rec(i, "ham", 0, 0.3 * (i + 1)) for i in range(12)]
    assert fits.judge(ev(*twelve, calibration=CAL, children=1)).ok
    cut = [*twelve[:10], rec(10, "unscanned", 0, 15), rec(11, "unscanned", 0, 15)]
    assert fits.judge(ev(*cut, calibration=CAL, children=1)).status == "fail"
    # on a machine four times slower the same 10 of 12 is what one child can do
    slow = Calibration(scan_s=1.2, samples=(1.2,), cores=2)
    assert fits.judge(ev(*cut, calibration=slow, children=1)).ok
    # far more than the children could scan on these cores: some must come back unscanned
    many = [rec(i, "ham", 0, 1) for i in range(300)]
    assert fits.judge(ev(*many, calibration=CAL, children=50)).status == "fail"
    assert fits.judge(ev(*twelve)).status == "error"  # no calibration: cannot say
    # calibrated at 0.3 s, but spamd's own log says its scans took 1.2 s during the load
    # (other work slowed the machine): 10 of 12 is then what one child could do
    log = "".join("spamd: result: . 2 - X scantime=1.2,size=3,user=a,uid=1,\n"
                  for _ in range(10))
    slowed = fits.judge(ev(*cut, calibration=CAL, children=1, spamd_log=log))
    assert slowed.ok and "1.200 s in spamd's log" in slowed.detail
    # fewer than three scans logged say nothing about the machine's speed
    assert fits.judge(ev(*cut, calibration=CAL, children=1,
                         spamd_log=log[:log.index("\n") + 1])).status == "fail"


def test_split_by_fault_and_scanned_after_mark() -> None:
    window = FaultWindow("spamd-down", int(5e9), None, "")
    before, after = rec(1, "ham", 1, 2), rec(2, "unscanned", 9, 11)
    split = checks.SplitByFault(grace_s=2)
    assert split.judge(ev(before, after, faults=[window])).ok
    assert not split.judge(ev(before, rec(3, "ham", 9, 10), faults=[window])).ok
    # a stream that never straddled the fault did not test it
    assert split.judge(ev(before, faults=[window])).status == "error"
    assert split.judge(ev(before, rec(4, "ham", 6, 7), after, faults=[window])).ok  # grace
    assert split.judge(ev(before, after)).status == "error"  # no fault window
    mark = checks.ScannedAfterMark(mark="spamd-answered")
    marks = {"spamd-answered": int(5e9)}
    assert mark.judge(ev(rec(1, "unscanned", 0, 2), rec(2, "ham", 6, 7), marks=marks)).ok
    assert not mark.judge(ev(rec(1, "ham", 0, 2), rec(2, "unscanned", 6, 8),
                             marks=marks)).ok
    never = mark.judge(ev(rec(2, "ham", 6, 7), marks=marks))  # never met the fault
    assert never.status == "error" and "did not occur" in never.detail
    assert mark.judge(ev(rec(2, "ham", 6, 7))).status == "error"


def test_a_crashing_check_is_an_error_never_a_pass() -> None:
    class Broken(checks.NothingLost, tag="broken", frozen=True):
        def judge(self, ev: Evidence) -> checks.CheckResult:
            raise ZeroDivisionError("boom")

    result = judge_safely(Broken(), ev(rec(1, "ham", 0, 1)))
    assert result.status == "error" and "boom" in result.detail


B = Budgets(maildrop_s=9, postfix_s=30, wrapper="bounce-on-75", deadline_s=18)


@pytest.mark.parametrize("worst,unscanned,failed,budgets,fate,layer", [
    (1.0, False, False, B, Fate.DELIVERED, None),
    (3.0, True, False, B, Fate.DELIVERED_UNSCANNED, Layer.SPAMC),
    (11.0, True, False, B, Fate.BOUNCED, Layer.MAILDROP),
    (11.0, True, False, Budgets(9, 30, "none", 18), Fate.DEFERRED, Layer.MAILDROP),
    (20.0, True, False, Budgets(9, 30, "spamdrill-deliver", 18), Fate.DEFERRED,
     Layer.WRAPPER),
    (45.0, True, False, B, Fate.BOUNCED, Layer.POSTFIX),
    (45.0, True, False, Budgets(9, 30, "none", 18), Fate.BOUNCED, Layer.POSTFIX),
    (None, False, False, B, Fate.LOST, Layer.SPAMC),
    (0.5, False, True, B, Fate.BOUNCED, Layer.MAILDROP),
    # a system's own wrapper, as the budget's sandbox measured it: the field report's
    # #!/bin/sh under dash exits 0 for maildrop's 75 (lost); a case wrapper bounces it
    (11.0, True, False, Budgets(9, 30, "measured", 18, (("timeout", "lost"),
                                                         ("filter-failed", "lost"))),
     Fate.LOST, Layer.WRAPPER),
    (11.0, True, False, Budgets(9, 30, "measured", 18, (("timeout", "bounced"),
                                                         ("filter-failed", "deferred"))),
     Fate.BOUNCED, Layer.WRAPPER),
    (0.5, False, True, Budgets(9, 30, "measured", 18, (("timeout", "bounced"),
                                                        ("filter-failed", "deferred"))),
     Fate.DEFERRED, Layer.WRAPPER),
    (11.0, True, False, Budgets(9, 30, "measured", 18, (("timeout", "delivered"),
                                                         ("filter-failed", "delivered"))),
     Fate.LOST, Layer.WRAPPER),  # "delivered" after maildrop gave up: nothing was
])
def test_findings_follow_the_layers(worst: float | None, unscanned: bool, failed: bool,
                                    budgets: Budgets, fate: Fate, layer: Layer | None) -> None:
    got, fired, why = judge(worst, unscanned, failed, budgets)
    assert (got, fired) == (fate, layer) and why


def test_findings_and_verdicts_decide_the_exit_status() -> None:
    from spamdrill.drills.runner import ScenarioResult
    from spamdrill.drills.scenario import parse as parse_scenario
    from spamdrill.runmodel import exit_status as of_model

    def exit_status(results: list[ScenarioResult]) -> int:
        return of_model([r.document() for r in results])

    sc = parse_scenario(BASE)

    def result(ok: bool = True, took: bool = True, finding: Fate = Fate.DELIVERED,
               ) -> ScenarioResult:
        from spamdrill.runmodel import FindingRow

        row = FindingRow("", None, finding.finding, finding, None, 1.0, 1, 1, 0, 0, "")
        check = checks.judged("c", ok, "")
        return ScenarioResult("x", sc, 1.0, 300.0, History(), [check], [row], [],
                              (FaultReport("f", took, ""),))

    assert exit_status([result()]) == 0
    assert exit_status([result(finding=Fate.DELIVERED_UNSCANNED)]) == 0
    assert exit_status([result(), result(finding=Fate.BOUNCED)]) == 1
    assert exit_status([result(ok=False), result(finding=Fate.BOUNCED)]) == 3
    untaken = result(took=False)
    assert untaken.verdict == "error" and exit_status([untaken]) == 3
    assert Finding.worst([Finding.WITHIN, Finding.BOUNCES, Finding.DEFERS]) == Finding.BOUNCES


def test_scenario_reference_names_every_fault_target_and_check() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "SCENARIOS.md").read_text()
    missing = [k for k in (*FAULT_KINDS, *CHECKS, "lab", "fakes", "address")
               if f"| `{k}` |" not in doc]
    assert missing == [], f"docs/SCENARIOS.md lacks {missing}"


def test_maildir_quota_arithmetic() -> None:
    from spamdrill.lab import maildir

    text = "10000000S\n1200 1\n800 1\n"
    assert maildir.usage(text) == (2000, 10_000_000)
    assert maildir.quota_bytes("5000S,100C") == 5000 and maildir.quota_bytes("100C") is None
    filled = text + "10000000 1\n"
    assert maildir.usage(filled)[0] >= 10_000_000
    assert maildir.without_line(filled, "10000000 1") == text
    assert maildir.without_line(text, "10000000 1") == text  # not filled: unchanged


def test_a_systems_spamc_flags_become_scalable() -> None:
    from spamdrill.drills.timing import as_placeholders

    assert as_placeholders(["-t", "100", "-n", "30", "--retry-sleep", "1", "-x"]) == \
        ["-t", "{t:100}", "-n", "{t:30}", "--retry-sleep", "1", "-x"]
    assert as_placeholders(["--timeout=100", "-s", "500000"]) == \
        ["--timeout={t:100}", "-s", "500000"]
    assert expand_args(as_placeholders(["-t", "100"]), DEFAULT_SCALE) == ["-t", "3"]
    # spamdrill-spamc's deadline compresses with the timeouts it bounds
    assert as_placeholders(["--deadline=270", "-t", "100"]) == \
        ["--deadline={t:270}", "-t", "{t:100}"]
    assert as_placeholders(["--deadline", "270"]) == ["--deadline", "{t:270}"]
