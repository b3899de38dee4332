"""The budget's waterfall of an xfilter that runs spamdrill-spamc: spamc's steps cut at
the deadline, the check's end a step of its own, the deadline in the title and among the
limits drawn across (unit tier: the field-report example with spamdrill-spamc)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spamdrill.budget import breakdown, inputs, model
from spamdrill.system import reader

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> model.Setup:
    etc = tmp_path_factory.mktemp("etc") / "etc"
    shutil.copytree(FIELD, etc, symlinks=True, ignore=shutil.ignore_patterns("incident"))
    rc = etc / "etc" / "maildroprc"
    rc.write_text(rc.read_text().replace('"/usr/bin/spamc ',
                                         '"/usr/local/bin/spamdrill-spamc --deadline=120 '))
    system = reader.read(etc, reader.Overrides())
    (chosen,) = inputs.setups(system, inputs.WhatIf(None, None, None, None))
    assert chosen.spamc_deadline == 120
    return chosen


def test_steps_stop_at_the_deadline_and_add_up(setup: model.Setup) -> None:
    cut = 0
    for r in model.evaluate(setup):
        if r.spamc_s is None:
            continue
        steps = breakdown.breakdown(setup, r)
        assert not any(s.unbounded or s.kind == "other" or s.seconds < 0 for s in steps), \
            (r.mode, steps)
        assert sum(s.seconds for s in steps) == pytest.approx(r.spamc_s, abs=1e-6)
        if steps[-1].kind == "deadline":
            cut += 1
            assert steps[-1].label.startswith("spamdrill-spamc --deadline 120 ends the check")
            assert sum(s.seconds for s in steps[:-1]) == pytest.approx(120)
    assert cut >= 2  # the drip and the full accept queue at least
    drip = next(r for r in model.evaluate(setup) if r.mode == "spamd-slow-drip")
    labels = [s.label for s in breakdown.breakdown(setup, drip)]
    assert labels[0].endswith("no bound: cut at the deadline"), labels
    queue = next(r for r in model.evaluate(setup) if r.mode == "spamd-accept-queue-full")
    steps = breakdown.breakdown(setup, queue)
    # try 1 (100 s), the sleep (1 s), try 2 cut after 19 s, the end
    assert [s.kind for s in steps] == ["connect", "sleep", "connect", "deadline"]
    assert steps[2].label.endswith("cut at the deadline")
    assert steps[2].seconds == pytest.approx(120 - steps[0].seconds - steps[1].seconds)


def test_the_waterfall_shows_the_deadline(setup: model.Setup) -> None:
    from bokeh.models.annotations import Span

    from spamdrill.render import budget_html

    drip = next(r for r in model.evaluate(setup) if r.mode == "spamd-slow-drip")
    plot = budget_html.waterfall(setup, drip)
    assert "spamdrill-spamc 121 s (--deadline 120)" in plot.title.text
    spans = [a.location for a in plot.center if isinstance(a, Span)]
    assert 121 in spans  # the deadline's limit drawn across, with maildrop's 300 s
    assert any("spamdrill-spamc --deadline 120 ends the check" in str(f)
               for f in plot.y_range.factors)  # the check's end: a bar of its own
