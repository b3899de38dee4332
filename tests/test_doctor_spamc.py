"""doctor proposes spamdrill-spamc --deadline where no spamc flag bounds a mode, and the
budget, read again on the changed maildroprc, bounds that mode by the deadline (unit tier:
the field-report example, its wrapper not run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spamdrill import fixes
from spamdrill.doctor import host
from spamdrill.doctor import propose as pr

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"


def _row(budget: host.Budget, mode: str) -> dict[str, object]:
    (row,) = [r for r in budget.doc["modes"] if r["mode"] == mode]
    return row


def test_a_drip_gets_spamdrill_spamc_and_the_budget_then_bounds_it(tmp_path: Path) -> None:
    before = host.budget(FIELD, measure=False)
    drip = _row(before, "spamd-slow-drip")
    assert drip["spamc_s"] is None  # no spamc flag bounds a drip
    fix = next(str(v["fix"]) for v in drip["violations"]  # type: ignore[attr-defined]
               if str(v["inner"]).startswith("spamc"))
    assert "spamdrill-spamc --deadline=269 " in fix and "N" not in fix.split("(")[-1]
    (change,) = pr.spamc_changes(before.config, [drip])
    assert change.modes == ["spamd-slow-drip"]
    assert change.why.startswith("spamdrill-spamc --deadline=269: spamc worst case")
    assert ('-    xfilter "/usr/bin/spamc -d spamd2-pn -t 100 -u $LOGNAME"\n'
            '+    xfilter "/usr/local/bin/spamdrill-spamc --deadline=269 -d spamd2-pn -t 100 '
            '-u $LOGNAME"\n') in change.diff
    # the budget on the changed copy: the drip ends at the deadline, below maildrop's 300 s
    etc = tmp_path / "etc"
    shutil.copytree(FIELD, etc, symlinks=True, ignore=shutil.ignore_patterns("incident"))
    (etc / "etc" / "maildroprc").write_text(change.new)
    after = host.budget(etc, measure=False)
    drip_after = _row(after, "spamd-slow-drip")
    assert drip_after["spamc_s"] == 269 + 1  # + start-up and exit (SPAMC_DEADLINE_MARGIN_S)
    assert drip_after["fires_first"] == "spamdrill-spamc --deadline"
    assert not [v for v in drip_after["violations"]  # type: ignore[attr-defined]
                if str(v["inner"]).startswith("spamc")]
    assert any(str(limit["layer"]).startswith("spamdrill-spamc --deadline")
               for limit in after.doc["limits"])


def test_a_deadline_past_maildrops_timeout_is_lowered(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    shutil.copytree(FIELD, etc, symlinks=True, ignore=shutil.ignore_patterns("incident"))
    rc = etc / "etc" / "maildroprc"
    rc.write_text(rc.read_text().replace('"/usr/bin/spamc ',
                                         '"/usr/local/bin/spamdrill-spamc --deadline 400 '))
    budget = host.budget(etc, measure=False)
    drip = _row(budget, "spamd-slow-drip")
    fix = next(str(v["fix"]) for v in drip["violations"]  # type: ignore[attr-defined]
               if str(v["inner"]).startswith("spamc"))
    assert fix.startswith(fixes.SPAMC_DEADLINE.format(deadline_max=269))
    (change,) = pr.spamc_changes(budget.config, [drip])
    assert '+    xfilter "/usr/local/bin/spamdrill-spamc --deadline=269 -d spamd2-pn' \
        in change.diff


@pytest.mark.parametrize(("line", "expected"), [
    ('xfilter "spamc -t 100"', 'xfilter "/x/spamdrill-spamc --deadline=60 -t 100"'),
    ('xfilter "/usr/bin/spamc -t 100 -x"',
     'xfilter "/x/spamdrill-spamc --deadline=60 -t 100 -x"'),
    ('xfilter "spamdrill-spamc --deadline=400 -t 9"',
     'xfilter "spamdrill-spamc --deadline=60 -t 9"'),
    ('xfilter "spamdrill-spamc -t 9"', 'xfilter "spamdrill-spamc --deadline=60 -t 9"'),
    ('xfilter "/usr/bin/spamc -L spam"', None),  # learning: spamdrill-spamc refuses it
    ('xfilter "/usr/bin/spamc -S -t 9"', None),  # SSL
    ('xfilter "/usr/bin/bogofilter -p"', None),
])
def test_the_xfilter_line_swapped(line: str, expected: str | None) -> None:
    assert pr.use_spamdrill_spamc(line, "/x/spamdrill-spamc", "60") == expected


def test_the_logs_say_n_and_which_command_computes_it() -> None:
    text = fixes.fix("spamd-slow-drip")
    assert "spamdrill-spamc --deadline=N " in text
    assert "(N: `spamdrill budget --etc /` computes it from your configs)" in text
