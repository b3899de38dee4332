"""The run document as one set of types: what is encoded decodes to the same values (the
document, the runs database's index entry, the history's JSONL, the workers' wire), and a
document of the older version 2 still reads, migrated as ``runmodel.migrate`` documents."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill import history, runmodel
from spamdrill.checks import CheckResult
from spamdrill.dist import tally
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import Calibration, FaultReport
from spamdrill.history import FaultWindow, History, IndexEntry, MessageRecord
from spamdrill.logexcerpt import Excerpt
from spamdrill.runmodel import FindingRow
from spamdrill.vocab import Fate, Finding, Layer, Mode, Outcome, Verdict

pytestmark = pytest.mark.unit

RUNS = Path(__file__).parent / "data" / "runs"
V2 = RUNS / "v2"

text = st.text(max_size=6)
ns = st.integers(0, 2**62)
seconds = st.floats(allow_nan=False, allow_infinity=False)
counts = st.integers(0, 10**6)


def few(s: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(s, max_size=2)


messages = st.builds(
    MessageRecord, id=text, kind=text, size=counts, start_ns=ns, end_ns=st.none() | ns,
    outcome=st.sampled_from(Outcome), exit_code=st.none() | st.integers(-255, 255),
    reason=text, spamc_args=few(text), score=st.none() | seconds, case=text, peer=text,
    fate=st.none() | st.sampled_from(Fate), dsn=text, deferrals=counts,
    intact=st.none() | st.booleans(), queue_id=text, delays=text, spamd=text,
    message_id=text, worker=text)
windows = st.builds(FaultWindow, text, ns, st.none() | ns, text)
checks = st.sampled_from(["pass", "fail", "error"]).flatmap(lambda status: st.builds(
    CheckResult, name=text, status=st.just(status), ok=st.just(status == "pass"),
    detail=text, offenders=few(text)))
rows = st.builds(FindingRow, text, st.none() | st.sampled_from(Mode), st.sampled_from(Finding),
                 st.sampled_from(Fate), st.none() | st.sampled_from(Layer),
                 st.none() | seconds, counts, counts, counts, counts, text)
calibrations = st.builds(Calibration, seconds, few(seconds).map(tuple), seconds)
excerpts = st.builds(Excerpt, name=text, path=text, total_lines=counts, lines=few(text),
                     counts=few(counts), last=few(text))
scenarios = st.builds(
    runmodel.Scenario, name=text, hypothesis=text, stands_for=text,
    verdict=st.sampled_from(Verdict), finding=st.sampled_from(Finding), error=text,
    scale=seconds, budget_s=seconds,
    timing=st.builds(runmodel.Timing, compressed=st.booleans(), why=text,
                     does_not_compress=few(text), calibration=st.none() | calibrations),
    checks=few(checks), fault_evidence=few(st.builds(FaultReport, text, st.booleans(), text)),
    findings=few(rows), notes=few(text), messages=few(messages), faults=few(windows),
    logs=few(excerpts), lab_argv=st.dictionaries(text, few(text), max_size=2))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | seconds | text,
    lambda inner: few(inner) | st.dictionaries(text, inner, max_size=3), max_leaves=6)
runs = st.builds(runmodel.build, text, seconds, text, few(scenarios),
                 kind=st.sampled_from(["run", "flood"]),
                 config=st.dictionaries(text, json_values, max_size=3),
                 environment=st.dictionaries(text, json_values, max_size=3))

SOME = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SOME
@given(run=runs)
def test_a_run_document_decodes_to_what_was_encoded(run: runmodel.Run) -> None:
    text = runmodel.encode(run)
    assert runmodel.decode(text) == run
    assert runmodel.from_document(json.loads(text)) == run
    assert json.loads(text) == runmodel.to_builtins(run)  # --json says the same
    assert run.exit_status == runmodel.exit_status(run.scenarios)


# a database per example, each commit synced: in memory-backed /dev/shm where there is one
# (a sync there costs nothing; on a busy disk, most of this test's time)
SHM = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@pytest.fixture
def shm_path(tmp_path: Path) -> Iterator[Path]:
    """A directory for runs databases and run documents, in /dev/shm where there is one."""
    import tempfile

    if SHM is None:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="spamdrill-rundoc-", dir=SHM) as tmp:
        yield Path(tmp)


@settings(SOME, max_examples=5)
@given(run=runs)
def test_the_runs_database_keeps_each_runs_index_entry_and_records(run: runmodel.Run,
                                                                   ) -> None:
    import tempfile

    kept = {sc.name: History(sc.messages, sc.faults) for sc in run.scenarios}
    with tempfile.TemporaryDirectory(prefix="spamdrill-runs-", dir=SHM) as tmp:
        db = Path(tmp) / "runs.sqlite"
        history.store(db, runmodel.index_entry(run), kept)
        assert history.list_runs(db) == [runmodel.index_entry(run)]
        back = history.histories(db, run.run)
    assert {k: v for k, v in kept.items() if v.messages or v.faults} == back


@SOME
@given(ms=few(messages), fs=few(windows))
def test_the_history_and_the_wire_carry_the_same_records(ms: list[MessageRecord],
                                                         fs: list[FaultWindow]) -> None:
    import tempfile

    assert [tally.from_wire(tally.to_wire(m)) for m in ms] == ms
    with tempfile.TemporaryDirectory(prefix="spamdrill-jsonl-") as tmp:
        path = Path(tmp) / "history.jsonl"
        History(ms, fs).to_jsonl(path, "s")
        lines = [json.loads(x) for x in path.read_text().splitlines()]
    kinds = {"message": MessageRecord, "fault": FaultWindow}
    back = [msgspec.convert({k: v for k, v in x.items() if k not in ("type", "scenario")},
                            kinds[x["type"]]) for x in lines]
    assert back == [*ms, *fs]


def _by_hand(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 -> 3 as documented (``runmodel``): fate "" is null; nothing else."""
    out = json.loads(json.dumps(doc))
    out["version"] = 3
    for sc in out["scenarios"]:
        for m in sc["messages"]:
            m["fate"] = m["fate"] or None
    return out  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["v2", "field", "before", "after"])
def test_a_version_2_document_still_reads(name: str) -> None:
    """Today's version-2 writer's document (every field filled, tests/data/runs/v2) and
    the first version-2 documents (without the later fields) read, migrated: every value
    kept, each message off Postfix without a fate."""
    raw = json.loads((RUNS / name / "report.json").read_text())
    assert raw["version"] == 2
    run = runmodel.decode((RUNS / name / "report.json").read_bytes())
    assert run.version == runmodel.VERSION == 3
    if name == "v2":  # every field the version-2 writer wrote, as it wrote it
        assert runmodel.to_builtins(run) == _by_hand(raw)
    assert runmodel.decode(runmodel.encode(run)) == run
    assert runmodel.migrate(raw) == _by_hand(raw) if name == "v2" else True


def test_the_migrated_version_2_run_has_typed_values() -> None:
    run = runmodel.decode((V2 / "report.json").read_bytes())
    flood, e2e = run.scenarios
    assert {m.fate for m in flood.messages} == {None}
    assert [m.fate for m in e2e.messages] == [Fate.DELIVERED, Fate.BOUNCED, Fate.LOST]
    assert {m.outcome for m in flood.messages} == set(runmodel.OUTCOMES)
    assert (flood.verdict, flood.finding) == (Verdict.ERROR, Finding.LOSES_MAIL)
    assert flood.findings[0].mode == Mode.SPAMD_OVERLOADED
    assert flood.findings[0].fires_first == Layer.SPAMC and flood.findings[0].crosses_budget
    assert flood.timing.calibration == Calibration(0.412, (0.4, 0.412, 0.5), 1.5)
    assert flood.fault_evidence == [FaultReport("pause", True, "state T")]
    assert run.exit_status == runmodel.exit_status(run.scenarios) == 3


def test_a_version_2_runs_database_still_lists_and_takes_new_runs(shm_path: Path) -> None:
    db = shm_path / "runs.sqlite"
    shutil.copy(V2 / "runs.sqlite", db)
    (old,) = history.list_runs(db)
    assert isinstance(old, IndexEntry) and old.version == 2 and old.exit_status == 3
    assert [(s.name, s.verdict, s.finding) for s in old.scenarios] == [
        ("spamd-overload", Verdict.ERROR, Finding.LOSES_MAIL),
        ("e2e-db-dropped", Verdict.ERROR, Finding.LOSES_MAIL)]
    v2 = runmodel.decode((V2 / "report.json").read_bytes())
    as_kept = history.histories(db, old.run)  # the columns it had; the others defaults
    assert list(as_kept) == ["spamd-overload", "e2e-db-dropped"]
    for sc in v2.scenarios:
        assert as_kept[sc.name].faults == sc.faults
        assert [(m.id, m.outcome, m.end_ns, m.spamc_args, m.worker, m.case)
                for m in as_kept[sc.name].messages] == [
            (m.id, m.outcome, m.end_ns, m.spamc_args, m.worker, m.case) for m in sc.messages]
    after = msgspec.structs.replace(
        runmodel.decode((RUNS / "after" / "report.json").read_bytes()), started=2e9)
    new = runmodel.index_entry(after)
    sc = after.scenarios[0]
    history.store(db, new, {sc.name: History(sc.messages, sc.faults)})
    assert history.list_runs(db) == [new, old]
    assert history.histories(db, new.run) == {sc.name: History(sc.messages, sc.faults)}
    assert history.histories(db, old.run) == as_kept


def test_a_runs_row_that_does_not_decode_lists_as_its_id(shm_path: Path) -> None:
    """A row another version wrote with words this one does not know: its id and date,
    never a traceback (the document itself is refused when shown)."""
    import sqlite3

    db = shm_path / "runs.sqlite"
    history.store(db, IndexEntry(run="a", started=1.0), {})
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO runs VALUES ('b', 2.0, ?)",
                     (json.dumps({"scenarios": [{"name": "x", "verdict": "maybe"}]}),))
        conn.execute("INSERT INTO runs VALUES ('c', 3.0, 'not json')")
    assert [(r.run, r.scenarios) for r in history.list_runs(db)] == [
        ("c", []), ("b", []), ("a", [])]


def test_a_check_whose_ok_contradicts_its_status_is_refused() -> None:
    doc = json.loads((RUNS / "after" / "report.json").read_text())
    sc = doc["scenarios"][0]
    lying = {**sc, "checks": [{**sc["checks"][0], "status": "fail", "ok": True}]}
    with pytest.raises(SpamdrillError, match=r"not a spamdrill run document.*ok is True"):
        runmodel.from_document({**doc, "scenarios": [lying]})


def test_todays_writer_keeps_what_the_version_2_writer_kept(
        shm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drills' results that made tests/data/runs/v2 (``make_v2.RESULTS``), recorded
    by today's code: the same document, but for what the migration says (and the machine
    it ran on); its runs database row and records read back as they were stored."""
    import importlib.util

    from spamdrill import app, environment

    monkeypatch.setattr(environment, "collect", dict)  # the machine's programs: not compared
    spec = importlib.util.spec_from_file_location("make_v2", V2 / "make_v2.py")
    assert spec is not None and spec.loader is not None
    make_v2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_v2)
    (shm_path / "r1").mkdir()
    old = runmodel.decode((V2 / "report.json").read_bytes())
    run = app.record(shm_path, "r1", old.started, make_v2.RESULTS, "run", old.config)
    written = json.loads((shm_path / "r1" / "report.json").read_text())
    want = _by_hand(json.loads((V2 / "report.json").read_text()))
    for doc in (written, want):
        doc.pop("environment"), doc.pop("results_dir"), doc.pop("run")
    assert written == want
    assert runmodel.decode((shm_path / "r1" / "report.json").read_bytes()) == run
    assert history.list_runs(shm_path / "runs.sqlite") == [runmodel.index_entry(run)]
    assert history.histories(shm_path / "runs.sqlite", "r1") == {
        sc.name: History(sc.messages, sc.faults) for sc in run.scenarios}


def test_two_runs_stored_at_once_into_a_new_database_both_land(
        shm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """doctor --verify's two sides finish at once into a fresh runs database: the second
    must not add the columns the first is adding (it did: 'duplicate column name'). The
    other side's store is started right after this one has read the table's columns."""
    import sqlite3
    import threading

    db = shm_path / "runs.sqlite"
    real_connect = sqlite3.connect
    other: list[threading.Thread] = []

    class Hooked(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
            cursor = super().execute(sql, *args)
            if sql.startswith("PRAGMA table_info(messages)") and not other:
                rows = cursor.fetchall()
                t = threading.Thread(target=history.store, args=(
                    db, IndexEntry(run="b", started=2.0), {}))
                other.append(t)
                t.start()
                t.join(0.3)  # it finishes unless this store holds the database
                return rows  # type: ignore[return-value]  # what _migrate iterates
            return cursor

    def connect(*args: Any, **kw: Any) -> sqlite3.Connection:
        return real_connect(*args, **{**kw, "factory": Hooked})

    monkeypatch.setattr(history.sqlite3, "connect", connect)
    history.store(db, IndexEntry(run="a", started=1.0), {})
    other[0].join(10)
    assert [r.run for r in history.list_runs(db)] == ["b", "a"]
