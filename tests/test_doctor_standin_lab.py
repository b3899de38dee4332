"""doctor --verify on a mode no end-to-end drill makes happen: the drill that stands for
it runs in both labs shaped like the field report's files, with each side's own spamc,
and the change is marked by the fates read off the budget's layers (about a minute: the
drip outlasts maildrop's compressed timer on both sides, at once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.root]
FIELD = Path(__file__).resolve().parents[1] / "examples/field-report"


def test_a_slow_drip_is_verified_by_its_stand_in_before_and_after(tmp_path: Path) -> None:
    """The field report's diagnosis, its changes said to answer spamd-slow-drip (a mode
    no end-to-end drill makes happen): spamc-timeouts' dripping fake stands for it.
    Before, the field report's wrapper is judged to bounce or lose what outlives
    maildrop's timer; after, spamdrill-deliver defers at its deadline: both changes
    verified, and both sides recorded as runs."""
    if os.geteuid() != 0:
        pytest.skip("--verify is root's: its labs, and the wrapper's sandbox")
    from spamdrill.cli.common import zone_of
    from spamdrill.doctor import drills, host
    from spamdrill.logs.diagnose import Thresholds
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import analyze
    from spamdrill.logs.summary import Options

    log = str(FIELD / "incident/mail.log")
    zone = zone_of("UTC")
    logs_doc = analyze([log], Filters(None, None, frozenset(), 2026, zone, None),
                       Options(Thresholds(), tz=zone))
    doc, budget, changes = host.diagnosis(FIELD, logs_doc, [log])
    assert [c["path"] for c in doc["changes"]] == ["/etc/maildroprc", "/etc/postfix/master.cf"]
    doc["why"] = [{"budget_mode": "spamd-slow-drip"}]
    for c in doc["changes"]:
        c["modes"] = ["spamd-slow-drip"]
    section = drills.verify(FIELD, doc, budget, changes, origin=None,
                            results_dir=tmp_path / "runs", progress=lambda _line: None)
    assert section["errors"] == []
    assert section["plans"] == [{"mode": "spamd-slow-drip", "scenario": "spamc-timeouts",
                                 "why": section["plans"][0]["why"], "end_to_end": False}]
    [d] = section["drills"]
    before, after = d["before"], d["after"]
    assert before["case"] == "maildrop_wrapper" and after["case"] == "spamdrill-deliver"
    assert before["could_tell"] and before["crosses_budget"], before["said"]
    assert after["could_tell"] and not after["crosses_budget"], after["said"]
    assert after["finding"].startswith("defers"), after["said"]
    assert [m["mark"] for m in section["marks"]] == ["verified", "verified"]
    assert section["verified"] and "stands for it" in section["how"] + section["plans"][0]["why"]
    for side in ("before", "after"):
        assert (tmp_path / "runs" / section["runs"][side] / "report.json").is_file()
