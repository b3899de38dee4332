"""The application layer without the command line: which drills a run chooses, and the exit
status decided from a recorded run's model (the same the command exits with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from spamdrill import app, runmodel
from spamdrill.drills.scenario import load_all
from spamdrill.errors import SpamdrillError
from spamdrill.vocab import Finding, Verdict

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


@pytest.mark.parametrize("name", ["after", "before", "field", "v2"])
def test_exit_status_from_the_model_is_the_recorded_one(name: str) -> None:
    data = (RUNS / name / "report.json").read_bytes()
    recorded = msgspec.json.decode(data)["exit_status"]
    assert runmodel.exit_status(runmodel.decode(data).scenarios) == recorded


def test_exit_status_orders_the_drills_trouble_before_findings() -> None:
    run = runmodel.decode((RUNS / "field" / "report.json").read_bytes())
    first, *rest = run.scenarios
    within = [msgspec.structs.replace(s, finding=Finding.WITHIN) for s in run.scenarios]
    assert runmodel.exit_status(within) == 0
    unscanned = [msgspec.structs.replace(s, finding=Finding.DELIVERS_UNSCANNED)
                 for s in within]
    assert runmodel.exit_status(unscanned) == 0
    bounces = [*within[:-1], msgspec.structs.replace(within[-1], finding=Finding.BOUNCES)]
    assert runmodel.exit_status(bounces) == 1
    refuted = [msgspec.structs.replace(first, verdict=Verdict.REFUTED), *rest]
    assert runmodel.exit_status(refuted) == 3
    erred = [msgspec.structs.replace(bounces[0], verdict=Verdict.ERROR), *bounces[1:]]
    assert runmodel.exit_status(erred) == 3
    assert runmodel.exit_status([]) == 0


def test_a_finding_word_outside_the_vocabulary_is_refused_not_passed() -> None:
    """A recorded document is data: a finding or verdict the vocabulary does not know is
    refused when the document is read (one line), never judged as a pass."""
    doc = msgspec.json.decode((RUNS / "field" / "report.json").read_bytes())
    for key, word in (("finding", "fine, honest"), ("verdict", "confirmed-ish")):
        odd = {**doc, "scenarios": [{**doc["scenarios"][0], key: word}]}
        with pytest.raises(SpamdrillError, match="not a spamdrill run document") as exc:
            runmodel.from_document(odd)
        assert "\n" not in exc.value.one_line()


def test_config_keeps_how_a_run_was_asked_for_not_where_outputs_go() -> None:
    params = {"scale": 2.0, "scenario_dirs": (Path("/a"), Path("/b")), "etc": Path("/x"),
              "count": None, "html": Path("r.html"), "json_path": "-",
              "results_dir": Path("/r"), "junit": None, "csv_dir": None}
    assert app.config_of(params) == {"scale": 2.0, "scenario_dirs": ["/a", "/b"],
                                     "etc": "/x", "count": None}


def test_run_drills_keeps_each_drill_as_it_finishes(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every drill of every scenario, in order, with the run's settings; each drill's
    history is in history.jsonl before the next starts (a killed run keeps it)."""
    from spamdrill.drills import runner
    from spamdrill.lab.config import LabConfig

    chosen = [KNOWN[PLAIN], KNOWN[next(n for n, s in KNOWN.items() if s.variants)]]
    names = [d.name for sc in chosen for d in sc.drills()]
    assert len(names) > 2
    calls: list[tuple[str, float, int | None, Path]] = []

    class History:
        def to_jsonl(self, path: Path, scenario: str) -> None:
            with path.open("a") as fh:
                fh.write(scenario + "\n")

    class Result:
        def __init__(self, name: str) -> None:
            self.name, self.history = name, History()

    def run_drill(drill: Any, *, scale: float, base: Any, workdir: Path, progress: Any,
                  count: int | None, wrappers: Any, system_spamc: Any) -> Result:
        progress(drill.name, 1, 2)
        calls.append((drill.name, scale, count, workdir))
        return Result(drill.name)

    monkeypatch.setattr(runner, "run_drill", run_drill)
    ticks: list[tuple[str, int, int]] = []
    seen: list[str] = []

    def done(r: Any) -> None:
        kept = (tmp_path / "history.jsonl").read_text().split()
        seen.append(r.name)
        assert kept == seen  # on disk before the next drill

    settings = app.DrillSettings(2.0, LabConfig(), count=5)
    results = app.run_drills(chosen, settings, tmp_path,
                             lambda name: lambda *a: ticks.append(a), done)
    assert [r.name for r in results] == names == seen
    assert [c[0] for c in calls] == names and {c[1:3] for c in calls} == {(2.0, 5)}
    assert calls[-1][3] == tmp_path / "work" / names[-1].replace("/", "_")
    assert ticks == [(n, 1, 2) for n in names]
