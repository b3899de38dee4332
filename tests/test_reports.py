"""The reports: one model of a run (runmodel) and its views, terminal, HTML, JUnit, CSV,
history and compare; the budget's waterfall steps. Most tests read run documents that
real drills wrote (tests/data/runs/README.md says how); the HTML is opened in Debian's
chromium; one test records real runs of its own (a drill, and a flood against a closed
port)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from functools import cache
from pathlib import Path

import pytest
from browser import open_report
from conftest import spamdrill
from rich.console import Console
from scaleup import scale_up

from spamdrill import history, report, runmodel
from spamdrill.budget import breakdown, model
from spamdrill.budget.inputs import WhatIf, setups
from spamdrill.environment import parse_version
from spamdrill.errors import SpamdrillError
from spamdrill.logexcerpt import excerpt
from spamdrill.render import compare, csvout, html, junit, plots
from spamdrill.system import reader
from spamdrill.vocab import Finding

DATA = Path(__file__).parent / "data"
RUNS = DATA / "runs"
XSD = DATA / "junit-10.xsd"
ROOT = Path(__file__).parent.parent


def load(name: str) -> runmodel.Run:
    return runmodel.decode((RUNS / name / "report.json").read_bytes())


def doc(name: str) -> dict[str, object]:
    return json.loads((RUNS / name / "report.json").read_text())


def render(run: runmodel.Run) -> str:
    buf = io.StringIO()
    report.print_run(Console(file=buf, width=200, color_system=None), run)
    return buf.getvalue()


# --- the model ---------------------------------------------------------------------------

@pytest.mark.unit
def test_model_summaries_count_every_message_once() -> None:
    """The one summary (``runmodel.summarize``: every view's counts and percentiles) of
    each scenario of a real run, against a plain count of its messages."""
    import statistics
    from collections import Counter

    for sc in load("field").scenarios:
        got = sc.summary
        counts = Counter(str(m.outcome) for m in sc.messages)
        times = sorted(m.seconds for m in sc.messages if m.seconds is not None)
        assert got.counts == {o: counts[o] for o in runmodel.OUTCOMES} | dict(counts)
        assert (got.messages, got.scanned) == (len(sc.messages), counts["spam"] + counts["ham"])
        assert (got.p50_s, got.max_s) == (round(statistics.median(times), 3),
                                          round(times[-1], 3))
        assert got.p99_s == round(times[int(0.99 * len(times))], 3)


@pytest.mark.unit
def test_model_cases_predictions_and_offenders() -> None:
    run = load("field")
    timeouts = run.scenario("spamc-timeouts")
    assert timeouts is not None and len(timeouts.cases) == 25
    preds = {c.name: c.predicted_s for c in timeouts.cases}
    assert preds["queue-full -t 3"] == pytest.approx(11.0)  # 3 x -t + 2 sleeps
    assert preds["drip -t 3"] == float("inf")
    assert timeouts.spamc_timeouts == [3.0]
    before = load("before").scenarios[0]
    failed = [c for c in before.checks if not c.ok]
    assert [c.name for c in failed] == ["within maildrop's budget (9 s)"]
    assert {m.id for m in before.offenders(failed[0])} == {m.id for m in before.messages}


@pytest.mark.unit
@pytest.mark.parametrize(("data", "says"), [
    (b"not json", "not a spamdrill run document"),
    (b'{"version": 2}', "not a spamdrill run document"),
    (b'{"version": 99, "run": "x", "started": 0, "results_dir": "", "exit_status": 0, '
     b'"scenarios": []}', "version 99"),
    (b'[{"version": 3}]', "not a spamdrill run document"),
])
@pytest.mark.unit
def test_model_refuses_what_is_not_a_run(data: bytes, says: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        runmodel.decode(data, "x.json")
    assert says in exc.value.one_line() and "\n" not in exc.value.one_line()


@pytest.mark.unit
def test_terminal_view_renders_the_model() -> None:
    text = render(load("field"))
    for name in ("spamd-down", "spamd-stopping", "spamc-timeouts"):
        assert re.search(rf"│ {name}\s+│", text), name
    assert "queue-full -t 3" in text and "bounces" in text
    assert "spamd-down: spamdrill budget 1 case(s) agree" in text


# --- JUnit, CSV ----------------------------------------------------------------------------

@cache  # one parse of the schema for every test that validates against it
def _schema() -> object:
    import xmlschema

    assert XSD.is_file(), f"{XSD} missing: scripts/setup.sh fetches it (Jenkins' junit-10.xsd)"
    return xmlschema.XMLSchema(str(XSD))


@pytest.mark.unit
@pytest.mark.parametrize("name", ["field", "before", "after"])
def test_junit_validates_against_the_schema(name: str) -> None:
    import xml.etree.ElementTree as ET

    run = load(name)
    data = junit.render(run)
    _schema().validate(io.BytesIO(data))  # type: ignore[attr-defined]
    root = ET.fromstring(data)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [s.name for s in run.scenarios]
    for suite, sc in zip(suites, run.scenarios, strict=True):
        cases = suite.findall("testcase")
        assert len(cases) == len(sc.checks) + len(sc.fault_evidence) + bool(sc.error) + \
            len(sc.findings)
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["verdict"] == sc.verdict and props["finding"] == sc.finding
        assert {k for k in props if k and k.startswith("finding.")} == {
            f"finding.{f.case}" for f in sc.findings}
        # a failure is the system crossing a budget; the drill's own trouble an error
        crossing = sum(1 for f in sc.findings if f.crosses_budget)
        assert int(suite.get("failures", "-1")) == crossing
        own = sum(1 for c in sc.checks if c.status != "pass") + bool(sc.error) + sum(
            1 for f in sc.fault_evidence if not f.took_effect)
        assert int(suite.get("errors", "-1")) == own


@pytest.mark.unit
def test_junit_names_the_messages_that_broke_a_check() -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(junit.render(load("before")))
    errors = root.findall(".//error")  # the refuted check: the drill's trouble
    assert len(errors) == 1 and errors[0].get("type") == "refuted"
    text = errors[0].text or ""
    assert "worst 11.01 s" in text and text.count("unscanned after 11.0") == 4


@pytest.mark.unit
def test_junit_schema_rejects_what_ci_would() -> None:
    """The schema test can fail: properties inside a test case are not junit-10."""
    import xmlschema

    bad = junit.render(load("after")).replace(
        b"<testcase ", b"<testcase><properties/></testcase><testcase ", 1)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        _schema().validate(io.BytesIO(bad))  # type: ignore[attr-defined]


@pytest.mark.unit
def test_csv_has_every_message_fault_and_check(tmp_path: Path) -> None:
    run = load("field")
    csvout.write(run, tmp_path)
    with (tmp_path / "messages.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(len(s.messages) for s in run.scenarios)
    sc = run.scenarios[0]
    first = next(r for r in rows if r["id"] == sc.messages[0].id)
    assert float(first["seconds"]) == pytest.approx(sc.messages[0].seconds or 0, abs=1e-6)
    with (tmp_path / "faults.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == sum(len(s.faults) for s in run.scenarios)
    with (tmp_path / "checks.csv").open() as fh:
        checks = list(csv.DictReader(fh))
    assert len(checks) == sum(len(s.checks) for s in run.scenarios)
    assert {r["status"] for r in checks} == {"pass"}


# --- compare and history -------------------------------------------------------------------

def _recorded(results: Path, *names: str) -> list[str]:
    """The runs in ``names`` recorded in ``results`` as spamdrill run records them: the
    document in the run's directory and its index entry in the runs database."""
    ids = []
    for name in names:
        run = load(name)
        (results / run.run).mkdir(parents=True)
        shutil.copy(RUNS / name / "report.json", results / run.run / "report.json")
        history.store(results / "runs.sqlite", runmodel.index_entry(run), {})
        ids.append(run.run)
    return ids


@pytest.mark.unit
def test_compare_shows_the_fix() -> None:
    diff = compare.compare(load("before"), load("after"))
    (sc,) = diff.scenarios
    got = {c.what: (c.a, c.b, c.direction) for c in sc.changes}
    assert got["verdict"] == ("refuted", "confirmed", "better")
    assert got["finding"] == ("bounces", "delivers unscanned", "better")
    assert got["max drill s"] == ("11.01", "3.01", "better")
    assert got["unscanned"] == ("4", "4", "same")
    same = compare.compare(load("after"), load("after")).scenarios[0]
    assert not same.changed


@pytest.mark.lab
def test_compare_and_history_on_recorded_runs(tmp_path: Path) -> None:
    a, b = _recorded(tmp_path, "before", "after")
    listed = spamdrill("history", "--results-dir", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert [r["run"] for r in runs] == [b, a]  # newest first
    assert runs[1]["scenarios"][0]["verdict"] == "refuted"
    table = spamdrill("history", "--results-dir", str(tmp_path))
    assert "queue-full: confirmed" in table.stdout and "queue-full: refuted" in table.stdout
    out = tmp_path / "compare.html"
    done = spamdrill("compare", a, b, "--results-dir", str(tmp_path), "--html", str(out))
    assert done.returncode == 0, done.stderr
    assert re.search(r"verdict\s+│ refuted\s+│ confirmed\s+│ better", done.stdout)
    assert re.search(r"max drill s\s+│ 11\.01\s+│ 3\.01\s+│ better", done.stdout)
    assert "queue-full" in out.read_text()
    as_json = json.loads(spamdrill("compare", a, str(RUNS / "after"), "--json",
                                   "--results-dir", str(tmp_path)).stdout)
    assert as_json["scenarios"][0]["changed"] is True


@pytest.mark.lab
@pytest.mark.parametrize("ref", ["no-such-run", "/nonexistent/report.json"])
def test_unknown_run_is_one_line(tmp_path: Path, ref: str) -> None:
    done = spamdrill("report", ref, "--results-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no run" in done.stderr


@pytest.mark.lab
def test_a_file_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    done = spamdrill("report", str(bad))
    assert done.returncode == 2 and "not a spamdrill run document" in done.stderr
    assert done.stderr.count("\n") == 1


# --- HTML, without and with a browser --------------------------------------------------------

@pytest.mark.lab
def test_html_holds_every_scenario_and_what_it_found() -> None:
    run = load("field")
    page = html.run_page(run)
    assert "<!--plot:" not in page  # every plot placed
    # nothing fetched by the page itself (Bokeh's bundle holds a MathJax CDN address it
    # uses only for LaTeX labels; the browser test shows it is never requested)
    markup = re.sub(r"<script\b.*?</script>", "", page, flags=re.S)
    assert "<script" in page and not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    for sc in run.scenarios:
        assert f'data-scenario="{sc.name}"' in page
    assert "server killed by SIGTERM" in page  # spamd's log excerpt (spamd-down)
    assert "10.11.19-MariaDB" in page and "4.0.1" in page  # versions
    assert "--max-children=5" in page  # spamd's flags
    before = load("before")
    page = html.run_page(before)
    assert "Messages that broke <b>within maildrop&#39;s budget (9 s)</b>" in page
    assert all(m.id in page for m in before.scenarios[0].messages)


@pytest.mark.unit
def test_thousands_of_messages_get_a_density_view() -> None:
    run = runmodel.from_document(scale_up(doc("field"), "spamd-stopping", 3000))
    sc = run.scenarios[0]
    assert len(sc.messages) == 3000 > plots.LINES_MAX
    assert "density view" in plots.timeline(sc).title.text
    assert "how many in each cell" in plots.latency(sc).title.text
    small = load("field").scenarios[0]
    assert "release to return" in plots.timeline(small).title.text


@pytest.mark.unit
def test_in_flight_counts() -> None:
    import numpy as np

    got = plots.in_flight(np.array([0.0, 1.0, 2.0]), np.array([3.0, 2.0, 2.5]),
                          np.array([0.5, 1.5, 2.2, 2.7, 3.5]))
    assert got.tolist() == [1, 2, 2, 1, 0]


@pytest.mark.lab
@pytest.mark.browser
@pytest.mark.parametrize("name", ["field", "compare", "budget"])
def test_html_opens_in_chromium(name: str, tmp_path: Path) -> None:
    """Headless chromium: no console errors, no request but the file itself, every
    section drew every plot it holds; the screenshot is kept as the test's artifact."""
    page = tmp_path / f"{name}.html"
    if name == "field":
        run = load("field")
        page.write_text(html.run_page(run))
        sections = [s.name for s in run.scenarios]
    elif name == "compare":
        a, b = load("before"), load("after")
        page.write_text(html.compare_page(a, b, compare.compare(a, b)))
        sections = ["queue-full"]
    else:
        done = spamdrill("budget", "--etc", str(ROOT / "examples" / "field-report"),
                         "--html", str(page))
        assert done.returncode == 1, done.stderr  # the field report's system bounces
        sections = []
    shot = tmp_path / f"{name}.png"
    opened = open_report(page, shot)
    print(f"screenshot: {shot}")
    assert opened.console_errors == [] and opened.page_errors == []
    assert opened.network == []
    names = [s["name"] for s in opened.sections]
    if sections:
        assert names == sections
    else:  # the budget: a section per failure mode the model evaluates
        assert len(names) >= 10 and set(names) <= set(model.MODES)
    for s in opened.sections:
        assert s["expected"] >= 1 and s["drawn"] == s["expected"], s
    assert shot.stat().st_size > 10_000


# --- the budget's waterfall, logs, versions ---------------------------------------------

EXAMPLES = ["field-report", "debian-stock", "fixed"]


@pytest.mark.unit
@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("link_rate", [None, 1200.0])
def test_breakdown_adds_up_to_the_model(example: str, link_rate: float | None) -> None:
    """Every mode's steps sum to the model's spamc worst case, and every term is known
    (no 'not broken down' step)."""
    system = reader.read(ROOT / "examples" / example, reader.Overrides())
    for setup in setups(system, WhatIf(None, None, link_rate, None)):
        for r in model.evaluate(setup):
            steps = breakdown.breakdown(setup, r)
            assert all(s.kind != "other" for s in steps), (r.mode, steps)
            if r.spamc_s is None:
                assert any(s.unbounded for s in steps)
            else:
                assert sum(s.seconds for s in steps) == pytest.approx(r.spamc_s, abs=1e-6)


@pytest.mark.unit
def test_breakdown_orders_tries_and_sleeps() -> None:
    setup = model.Setup(spamc=reader_flags("-t 100"))
    r = next(x for x in model.evaluate(setup) if x.mode == "spamd-accept-queue-full")
    kinds = [s.kind for s in breakdown.breakdown(setup, r)]
    assert kinds == ["connect", "sleep", "connect", "sleep", "connect"]


def reader_flags(args: str) -> model.SpamcFlags:
    from spamdrill.budget import spamc

    return spamc.parse_args(args)


@pytest.mark.unit
def test_log_excerpt_keeps_each_trouble_once_with_its_count() -> None:
    text = "\n".join(["ok 1", "SQL error: lock wait 12", "ok 2", "SQL error: lock wait 99",
                      "child 7 timed out", *[f"ok {i}" for i in range(20)]])
    ex = excerpt("spamd", "/x/spamd.log", text, last=3)
    assert ex.lines == ["SQL error: lock wait 12", "child 7 timed out"]
    assert ex.counts == [2, 1]
    assert ex.last == ["ok 17", "ok 18", "ok 19"] and ex.total_lines == 25


@pytest.mark.unit
@pytest.mark.parametrize(("banner", "version"), [
    ("SpamAssassin Server version 4.0.1\n  running on Perl 5.36.0", "4.0.1"),
    ("SpamAssassin Client version 4.0.1\n", "4.0.1"),
    ("/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu",
     "10.11.19-MariaDB-0+deb12u1"),
    ("maildrop 2.9.3 Copyright 1998-2017 Double Precision, Inc.", "2.9.3"),
    ("mail_version = 3.7.11", "3.7.11"),
    ("", None),
])
@pytest.mark.unit
def test_version_banners(banner: str, version: str | None) -> None:
    assert parse_version(banner) == version


# --- real runs, recorded -----------------------------------------------------------------

@pytest.mark.lab
def test_a_real_run_and_flood_are_recorded_and_reported(tmp_path: Path) -> None:
    """spamd-down (4 messages) with every output, and a flood at a closed port: both in
    the runs database, each with its document; the HTML, JUnit and CSV from the run."""
    results = tmp_path / "results"
    out = tmp_path / "out"
    out.mkdir()
    done = spamdrill("run", "spamd-down", "--count", "4", "--results-dir", str(results),
                     "--html", str(out / "run.html"), "--junit", str(out / "junit.xml"),
                     "--csv", str(out / "csv"), "--json", "-", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    # --json -: stdout is the document alone; the tables and the headline went to stderr
    assert json.loads(done.stdout)["scenarios"][0]["name"] == "spamd-down"
    assert "Nothing crosses a budget" in done.stderr
    closed = _closed_port()
    flood = spamdrill("flood", "--count", "3", "--target", f"127.0.0.1:{closed}",
                      "--spamc-args", "-t {t:100}", "--results-dir", str(results),
                      "--junit", str(out / "flood.xml"), timeout=120)
    assert flood.returncode == 0, flood.stdout + flood.stderr
    runs = history.list_runs(results / "runs.sqlite")
    assert [r.kind for r in runs] == ["flood", "run"]
    run = runmodel.decode((results / runs[1].run / "report.json").read_bytes())
    (sc,) = run.scenarios
    assert sc.summary.messages == 4 and sc.verdict == "confirmed"
    assert {x.name for x in sc.logs} >= {"spamd", "mariadb"}
    assert Path(next(x for x in sc.logs if x.name == "spamd").path).is_file()
    assert "spamd" in sc.lab_argv and run.environment["versions"]["spamd"] != "not installed"
    assert run.config["scenarios"] == ["spamd-down"] and run.config["count"] == 4
    for xml in ("junit.xml", "flood.xml"):
        _schema().validate(str(out / xml))  # type: ignore[attr-defined]
    with (out / "csv" / "messages.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert 'data-scenario="spamd-down"' in (out / "run.html").read_text()
    fl = runmodel.decode((results / runs[0].run / "report.json").read_bytes())
    assert fl.kind == "flood" and fl.scenarios[0].summary.count("unscanned") == 3
    assert (results / runs[0].run / "history.jsonl").read_text().count('"message"') == 3
    with sqlite3.connect(results / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (7,)
    shown = spamdrill("report", runs[0].run, "--results-dir", str(results))
    assert shown.returncode == 0 and "flood-adhoc" in shown.stdout


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: connects are refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.unit
def test_lab_logs_are_kept_even_where_they_cannot_be_copied(tmp_path: Path) -> None:
    from spamdrill.drills import lablogs

    lab_dir = tmp_path / "lab"
    (lab_dir / "spamd").mkdir(parents=True)
    (lab_dir / "spamd" / "spamd.log").write_text("info: ok\nerror: child timed out\n")
    kept = lablogs.keep(lab_dir, tmp_path / "run" / "logs")
    assert [(k.name, k.lines) for k in kept] == [("spamd", ["error: child timed out"])]
    assert Path(kept[0].path).read_text().endswith("timed out\n")
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the directory should go
    (again,) = lablogs.keep(lab_dir, blocked / "logs")
    assert again.path == str(lab_dir / "spamd" / "spamd.log")


# --- one pass/fail, one headline, production seconds, one --json ---------------------------

def _with_findings(run: runmodel.Run, **findings: str) -> runmodel.Run:
    """``run`` with some scenarios' worst finding replaced (a recorded run stands for
    runs that lost or duplicated mail)."""
    import msgspec

    return msgspec.structs.replace(run, scenarios=[
        msgspec.structs.replace(sc, finding=Finding(findings.get(sc.name, sc.finding)))
        for sc in run.scenarios])


@pytest.mark.unit
@pytest.mark.parametrize(("name", "failures", "errors"), [
    ("field", True, False),  # exit 1: mail bounces; the drills themselves held
    ("before", True, True),  # exit 3: the hypothesis refuted (and mail bounces)
    ("after", False, False),  # exit 0
])
def test_junit_fails_as_the_run_exits(name: str, failures: bool, errors: bool) -> None:
    """CI reads <failure> as the system crossing a budget (exit 1) and <error> as the
    drill's own trouble (exit 3): a run that bounces mail is never green."""
    import xml.etree.ElementTree as ET

    run = load(name)
    root = ET.fromstring(junit.render(run))
    assert (int(root.get("failures", "0")) > 0) is failures
    assert (int(root.get("errors", "0")) > 0) is errors
    assert (run.exit_status == 1) is (failures and not errors)
    assert (run.exit_status == 3) is errors
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert all(n and n.startswith("finding ") for n in failed)
    if name == "field":
        assert "finding drip -t 3: spamd-slow-drip" in failed


@pytest.mark.unit
def test_headline_worst_first_in_every_view() -> None:
    """One sentence, from one function, leads the terminal, the HTML and JUnit: lost mail
    before bounces before the rest."""
    import xml.etree.ElementTree as ET

    field = load("field")
    assert field.headline.startswith("UNSAFE: mail bounced in 1 drill (spamc-timeouts); "
                                     "mail delivered unscanned in 2 drills")
    lost = _with_findings(field, **{"spamd-down": "loses mail"})
    said = lost.headline
    assert said.index("mail lost") < said.index("mail bounced") < said.index("unscanned")
    assert load("after").headline.startswith("Nothing crosses a budget")
    assert "hypothesis refuted in 1 drill (queue-full)" in load("before").headline
    for run in (field, lost, load("before")):
        assert render(run).splitlines()[0] == run.headline
        root = ET.fromstring(junit.render(run))
        for suite in root.findall("testsuite"):
            first = suite.find("properties/property")
            assert first is not None and first.get("name") == "run.found"
            assert first.get("value") == run.headline


@pytest.mark.lab  # Bokeh renders the plots: seconds, not the unit tier's milliseconds
def test_html_leads_with_the_headline_in_production_seconds() -> None:
    page = html.run_page(load("field"))
    body = page[page.index("<h1>"):]
    assert body.index(load("field").headline.replace("'", "&#x27;")) < \
        body.index("<h2>Scenarios</h2>")
    assert "45.36 / 1512" in body and "9 drill s (300 production s)" in body
    assert "33.3333" not in re.sub(r"<script\b.*?</script>", "", body, flags=re.S)


@pytest.mark.unit
def test_compare_fail_on_worse_and_changed() -> None:
    before, after = load("before"), load("after")
    assert compare.failing(compare.compare(before, after), "worse") == []
    worse = compare.failing(compare.compare(after, before), "worse")
    assert len(worse) == 1 and "verdict confirmed -> refuted" in worse[0]
    assert "finding delivers unscanned -> bounces" in worse[0]
    assert compare.failing(compare.compare(before, after), "changed")
    assert compare.failing(compare.compare(after, after), "changed") == []
    gone = compare.compare(after, _with_findings(after))
    gone.scenarios[0].in_b = False
    assert compare.failing(gone, "worse") == ["queue-full: only in A"]


@pytest.mark.lab  # the command line, in subprocesses
def test_compare_fail_on_exits_1(tmp_path: Path) -> None:
    a, b = str(RUNS / "after" / "report.json"), str(RUNS / "before" / "report.json")
    args = ("--results-dir", str(tmp_path))
    assert spamdrill("compare", b, a, *args).returncode == 0
    assert spamdrill("compare", b, a, "--fail-on", "worse", *args).returncode == 0
    done = spamdrill("compare", a, b, "--fail-on", "worse", *args)
    assert done.returncode == 1 and "queue-full: verdict confirmed -> refuted" in done.stderr
    assert spamdrill("compare", b, a, "--fail-on", "changed", *args).returncode == 1


@pytest.mark.lab  # the command line, in subprocesses
@pytest.mark.parametrize("name", ["field", "before", "after"])
def test_report_exits_with_the_runs_status(name: str, tmp_path: Path) -> None:
    path = str(RUNS / name / "report.json")
    done = spamdrill("report", path, "--results-dir", str(tmp_path))
    assert done.returncode == load(name).exit_status, done.stderr
    out = tmp_path / "junit.xml"
    done = spamdrill("report", path, "--junit", str(out), "--results-dir", str(tmp_path))
    assert done.returncode == load(name).exit_status and out.is_file()


@pytest.mark.unit
def test_compressed_times_beside_production_seconds() -> None:
    """A compressed drill's seconds and the same scaled back, labelled; a drill at
    production timings one number; nothing rounded past what was measured."""
    text = render(load("field"))
    assert "max s drill / prod" in text and "budget s drill / prod" in text
    assert re.search(r"│ spamc-timeouts │\s+33\.3 │.*│\s+45\.36 / 1512 │\s+9 / 300 │", text)
    assert re.search(r"│ spamd-stopping │\s+1 │.*│\s+2\.00 │\s+300 │", text)
    assert "33.3333" not in text and "budget 9 drill s (300 production s)" in text
    assert runmodel.production_s(11.007, 33.3333) == "367"
    assert runmodel.production_s(2.004, 1.0) == "2.00"
    assert runmodel.production_s(2.004, 5.0) == "10.0"
    props = junit.render(load("field")).decode()
    assert "33.3333" not in props and "45.36 drill s (1512 production s)" in props


@pytest.mark.lab  # the command line, in subprocesses
def test_json_means_a_path_or_stdout_everywhere(tmp_path: Path) -> None:
    """--json alone or '-' prints the document; --json PATH writes it there."""
    a = str(RUNS / "after" / "report.json")
    alone = spamdrill("compare", a, a, "--json", "--results-dir", str(tmp_path))
    dash = spamdrill("compare", a, a, "--json", "-", "--results-dir", str(tmp_path))
    assert json.loads(alone.stdout) == json.loads(dash.stdout)
    out = tmp_path / "diff.json"
    done = spamdrill("compare", a, a, "--json", str(out), "--results-dir", str(tmp_path))
    assert done.returncode == 0 and json.loads(out.read_text()) == json.loads(dash.stdout)
    example = str(ROOT / "examples" / "fixed")
    old = spamdrill("budget", "--etc", example, "--json")
    to_file = tmp_path / "budget.json"
    new = spamdrill("budget", "--etc", example, "--json", str(to_file))
    assert new.returncode == old.returncode
    assert json.loads(to_file.read_text()) == json.loads(old.stdout)
    assert "worst case per failure mode" in new.stdout  # a path: the table still shows
    listed = spamdrill("list", "--json", "-")
    assert json.loads(listed.stdout)["scenarios"]


@pytest.mark.unit
def test_budget_table_rounds_what_the_model_computes() -> None:
    """The connector's re-asking is simulated to the microsecond; a person reads 33.6."""
    from click.testing import CliRunner

    from spamdrill.cli import cli

    done = CliRunner().invoke(cli, ["budget", "--etc", str(ROOT / "examples" /
                                                         "field-report")])
    assert done.exit_code == 1, done.output
    assert re.search(r"dns-db-servfail\s+│ 33\.6\s+│", done.output)
    assert not re.search(r"\d\.\d{3,}", done.output)
