"""Sans-IO cores of the drills: corpus, schedules, spamc outcome classification, scenario
scaling, and checks -- each check is fed a history that breaks it and must fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill import checks, corpus
from spamdrill.drills.scenario import (
    DEFAULT_SCALE,
    expand_args,
    load_all,
    parse,
    scale_seconds,
    scaled_check_args,
)
from spamdrill.errors import SpamdrillError
from spamdrill.history import History, MessageRecord
from spamdrill.load.schedule import offsets
from spamdrill.proto.spamc_result import classify


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
    assert scale_seconds(100, DEFAULT_SCALE) == 3
    assert scale_seconds(1, DEFAULT_SCALE) == 1  # never below a second
    assert scale_seconds(100, 1) == 100
    assert expand_args(["-t", "{t:100}", "-n", "{t:30}"], DEFAULT_SCALE) == \
        ["-t", "3", "-n", "1"]
    assert scaled_check_args({"kind": "delivery_budget", "budget_s": 300}, 100) == \
        {"budget_s": 3.0}


def test_shipped_scenarios_parse_and_bad_ones_are_refused() -> None:
    scs = load_all()
    for name in ("spamd-down", "spamd-stopping", "spamd-starting", "spamd-staircase",
                 "spamd-overload", "flood", "spamd-timeouts", "spamc-timeouts"):
        assert scs[name].hypothesis
    with pytest.raises(SpamdrillError, match="unknown check"):
        parse({"name": "x", "hypothesis": "h", "checks": [{"kind": "vibes"}]})
    with pytest.raises(SpamdrillError, match="unknown fault"):
        parse({"name": "x", "hypothesis": "h", "fault": {"kind": "meteor"}})
    with pytest.raises(SpamdrillError, match="missing 'hypothesis'"):
        parse({"name": "x"})


def rec(i: int, outcome: str, start: float, end: float | None) -> MessageRecord:
    return MessageRecord(id=f"m{i}", kind="ham", size=1, start_ns=int(start * 1e9),
                         end_ns=None if end is None else int(end * 1e9), outcome=outcome,
                         exit_code=0, reason="", spamc_args=[])


def hist(*records: MessageRecord) -> History:
    return History(messages=list(records))


def test_nothing_lost() -> None:
    assert checks.nothing_lost(hist(rec(1, "ham", 0, 1), rec(2, "unscanned", 0, 2))).ok
    bad = checks.nothing_lost(hist(rec(1, "ham", 0, 1), rec(2, "lost", 0, None)))
    assert not bad.ok and bad.offenders == ["m2"]
    assert not checks.nothing_lost(hist(rec(3, "error", 0, 1))).ok


def test_all_unscanned() -> None:
    assert checks.all_unscanned(hist(rec(1, "unscanned", 0, 2))).ok
    assert checks.all_unscanned(hist(rec(1, "unscanned", 0, 2),
                                     rec(2, "spam", 0, 1))).offenders == ["m2"]


def test_scanned_fraction_and_latency() -> None:
    h = hist(rec(1, "ham", 0, 1), rec(2, "unscanned", 0, 3))
    assert checks.scanned_fraction(h, min=0.5, max=0.5).ok
    assert not checks.scanned_fraction(h, min=0.9).ok
    big = MessageRecord(id="b", kind="large:180000", size=180000, start_ns=0, end_ns=3,
                        outcome="unscanned", exit_code=0, reason="", spamc_args=[])
    mixed = hist(rec(1, "ham", 0, 1), big)
    assert checks.scanned_fraction(mixed, min=1, of="ham").ok
    assert checks.scanned_fraction(mixed, max=0, of="large:").ok
    assert checks.scanned_fraction(mixed, min=1, of="large:").offenders == ["b"]
    assert not checks.scanned_fraction(mixed, of="multipart").ok  # none: no evidence
    assert checks.latency_bound(h, max_s=3.5).ok
    assert checks.latency_bound(h, max_s=2).offenders == ["m2"]


def test_delivery_budget() -> None:
    assert checks.delivery_budget(hist(rec(1, "unscanned", 0, 8.9)), budget_s=9).ok
    over = checks.delivery_budget(hist(rec(1, "unscanned", 0, 11.0)), budget_s=9)
    assert not over.ok and "would bounce" in over.detail
    assert not checks.delivery_budget(hist(rec(1, "lost", 0, None)), budget_s=9).ok


def test_staircase() -> None:
    good = hist(*(rec(i, "ham", 0, 0.1 * (i + 1)) for i in range(5)))
    assert checks.staircase(good).ok
    tied = hist(rec(1, "ham", 0, 1), rec(2, "ham", 0, 1), rec(3, "ham", 0, 2))
    assert not checks.staircase(tied).ok
    assert not checks.staircase(hist(rec(1, "ham", 0, 1))).ok  # nothing to see


def test_unscanned_near_timeout() -> None:
    assert checks.unscanned_near_timeout(hist(rec(1, "unscanned", 0, 3.1)), 3, 0.5).ok
    assert not checks.unscanned_near_timeout(hist(rec(1, "unscanned", 0, 1)), 3, 0.5).ok
    assert not checks.unscanned_near_timeout(hist(rec(1, "ham", 0, 1)), 3, 0.5).ok


def test_spamd_log_check() -> None:
    assert checks.spamd_log(hist(), "a\nspamd: timeout: (2 second timeout while trying "
                            "to CHECK)\n", "second timeout while trying to CHECK").ok
    assert not checks.spamd_log(hist(), "nothing", "timeout").ok


def test_model_agrees_check_fails_on_disagreement() -> None:
    def case(name: str, args: list[str], seconds: float) -> MessageRecord:
        r = rec(0, "unscanned", 0, seconds)
        r.case, r.spamc_args = name, args
        return r

    ok = hist(case("queue-full -t 3", ["-t", "3"], 11.02), case("refuse -t 3", ["-t", "3"], 2.0))
    assert checks.model_agrees(ok).ok
    wrong = hist(case("queue-full -t 3", ["-t", "3"], 3.0))
    assert not checks.model_agrees(wrong).ok
    assert "predicted 11 s, measured 3.00 s" in checks.model_agrees(wrong).detail
    # unbounded is confirmed only by a time past what -t alone allows
    assert not checks.model_agrees(hist(case("drip -t 3", ["-t", "3"], 3.1))).ok
    assert checks.model_agrees(hist(case("drip -t 3", ["-t", "3"], 45.0))).ok
    assert checks.model_agrees(hist(rec(1, "unscanned", 0, 2.0)), mode="spamd-refused").ok
    assert not checks.model_agrees(hist(rec(1, "unscanned", 0, 0.1)),
                                   mode="spamd-refused").ok
    assert not checks.model_agrees(hist()).ok  # nothing compared is not agreement


def test_scenario_reference_names_every_fault_and_check() -> None:
    from spamdrill.checks import CHECKS
    from spamdrill.drills.scenario import FAULTS

    doc = (Path(__file__).parent.parent / "docs" / "SCENARIOS.md").read_text()
    missing = [k for k in (*FAULTS, *CHECKS) if f"| `{k}` |" not in doc]
    assert missing == [], f"docs/SCENARIOS.md lacks {missing}"
