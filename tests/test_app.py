"""The application layer without the command line: which drills a run chooses, and the exit
status decided from a recorded run's model (the same the command exits with)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from spamdrill import app, runmodel
from spamdrill.drills.scenario import load_all
from spamdrill.errors import SpamdrillError

pytestmark = pytest.mark.unit

RUNS = Path(__file__).parent / "data" / "runs"
KNOWN = load_all([])
LONG = next(n for n, s in KNOWN.items() if s.long)
ROOTED = next(n for n, s in KNOWN.items() if s.needs_root and not s.long)
PLAIN = next(n for n, s in KNOWN.items() if not s.needs_root and not s.long)


def choose(*names: str, long_: bool = False, root: bool = False) -> tuple[list[str], list[str]]:
    said: list[str] = []
    chosen = app.select(KNOWN, names, long_=long_, root=root, progress=said.append)
    return [s.name for s in chosen], said


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SpamdrillError, match="unknown scenario 'nope'") as exc:
        choose(PLAIN, "nope")
    assert PLAIN in exc.value.one_line()


def test_a_long_drill_is_refused_by_name_and_skipped_in_a_full_run() -> None:
    with pytest.raises(SpamdrillError, match="for minutes at production timings"):
        choose(LONG, root=True)
    assert choose(LONG, root=True, long_=True)[0] == [LONG]
    everything, said = choose(root=True)
    assert LONG not in everything and PLAIN in everything and ROOTED in everything
    assert any(line.startswith(f"{LONG}: minutes") for line in said)
    assert LONG in choose(root=True, long_=True)[0]


def test_a_drill_needing_root_is_refused_by_name_and_skipped_in_a_full_run() -> None:
    with pytest.raises(SpamdrillError, match="need\\(s\\) root"):
        choose(PLAIN, ROOTED)
    unprivileged, said = choose()
    assert ROOTED not in unprivileged and PLAIN in unprivileged
    assert f"{ROOTED}: needs root (network namespaces, nftables, Postfix); skipped" in said
    assert choose(PLAIN, ROOTED, root=True)[0] == [PLAIN, ROOTED]  # in the order named


@pytest.mark.parametrize("name", ["after", "before", "field"])
def test_exit_status_from_the_model_is_the_recorded_one(name: str) -> None:
    data = (RUNS / name / "report.json").read_bytes()
    recorded = msgspec.json.decode(data)["exit_status"]
    assert app.exit_status(runmodel.decode(data)) == recorded


def test_exit_status_orders_the_drills_trouble_before_findings() -> None:
    run = runmodel.decode((RUNS / "field" / "report.json").read_bytes())
    first, *rest = run.scenarios
    within = [msgspec.structs.replace(s, finding="within") for s in run.scenarios]
    assert app.exit_status(msgspec.structs.replace(run, scenarios=within)) == 0
    refuted = [msgspec.structs.replace(first, verdict="refuted"), *rest]
    assert app.exit_status(msgspec.structs.replace(run, scenarios=refuted)) == 3
    # a recorded document is data: a finding word not in the vocabulary never passes
    odd = [msgspec.structs.replace(s, finding="fine, honest") for s in within]
    assert app.exit_status(msgspec.structs.replace(run, scenarios=odd)) == 1
    assert app.exit_status(msgspec.structs.replace(run, scenarios=[])) == 0


def test_config_keeps_how_a_run_was_asked_for_not_where_outputs_go() -> None:
    params = {"scale": 2.0, "scenario_dirs": (Path("/a"), Path("/b")), "etc": Path("/x"),
              "count": None, "html": Path("r.html"), "json_path": "-",
              "results_dir": Path("/r"), "junit": None, "csv_dir": None}
    assert app.config_of(params) == {"scale": 2.0, "scenario_dirs": ["/a", "/b"],
                                     "etc": "/x", "count": None}
