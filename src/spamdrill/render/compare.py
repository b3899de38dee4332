"""What changed between two runs, per scenario: outcome counts, p50/p99/max, verdict, the
worst finding and each case's finding. ``compare`` is sans-IO (two models in, a diff
out); the terminal table, the JSON and the HTML page render that one diff. The runs
table of ``spamdrill history`` lives here too: it reads the same index entries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from spamdrill.history import IndexEntry
from spamdrill.render.page import badge, change, render
from spamdrill.render.term import safe
from spamdrill.runmodel import OUTCOMES, Run, Scenario, scale_shown, shown_s
from spamdrill.vocab import Finding

LATENCIES = ("p50_s", "p99_s", "max_s")
SIGNIFICANT_S = 0.05  # a latency change smaller than this is noise, not a change


@dataclass(frozen=True)
class Change:
    what: str
    a: str
    b: str
    direction: str = ""  # better | worse | "" (changed, neither) | same

    @property
    def changed(self) -> bool:
        return self.direction != "same"


@dataclass
class ScenarioDiff:
    name: str
    in_a: bool
    in_b: bool
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return not (self.in_a and self.in_b) or any(c.changed for c in self.changes)


@dataclass
class RunDiff:
    a: str
    b: str
    scenarios: list[ScenarioDiff]

    def public(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "scenarios": [
            {"name": s.name, "in_a": s.in_a, "in_b": s.in_b, "changed": s.changed,
             "changes": [{"what": c.what, "a": c.a, "b": c.b, "direction": c.direction}
                         for c in s.changes]} for s in self.scenarios]}


def failing(diff: RunDiff, on: str) -> list[str]:
    """``--fail-on worse|changed``, in the manner of pytest-benchmark's
    ``--benchmark-compare-fail``: each scenario that got worse (or changed at all), with
    what did; empty when the comparison passes."""
    out = []
    for s in diff.scenarios:
        if not (s.in_a and s.in_b):
            if on == "changed" or s.in_a:  # a scenario gone is worse: nothing judges it
                out.append(f"{s.name}: only in {'A' if s.in_a else 'B'}")
            continue
        hit = [c for c in s.changes if (c.direction == "worse" if on == "worse"
                                        else c.changed)]
        if hit:
            out.append(f"{s.name}: " + ", ".join(f"{c.what} {c.a} -> {c.b}" for c in hit))
    return out


def _finding_rank(f: Finding) -> int:
    return list(Finding).index(f)


def _direction(a: float | None, b: float | None, lower_is_better: bool = True,
               tolerance: float = 0.0) -> str:
    if a == b or (a is not None and b is not None and abs(a - b) <= tolerance):
        return "same"
    if a is None or b is None:
        return ""
    return "better" if (b < a) == lower_is_better else "worse"


VERDICT_RANK = {"error": 0, "refuted": 1, "confirmed": 2}


def _scenario_changes(a: Scenario, b: Scenario) -> list[Change]:
    sa, sb = a.summary, b.summary
    out = [Change("verdict", a.verdict, b.verdict, _direction(
        VERDICT_RANK.get(a.verdict, 0), VERDICT_RANK.get(b.verdict, 0), False)),
        Change("finding", a.finding, b.finding,
               _direction(_finding_rank(a.finding), _finding_rank(b.finding)))]
    out.append(Change("messages", str(sa.messages), str(sb.messages),
                      "same" if sa.messages == sb.messages else ""))
    for o in OUTCOMES:
        na, nb = sa.count(o), sb.count(o)
        # fewer failures is better; more scanned (spam, ham) is better
        out.append(Change(o, str(na), str(nb),
                          _direction(na, nb, o in ("unscanned", "error", "lost"))))
    same_scale = a.scale == b.scale
    out.append(Change("scale", scale_shown(a.scale), scale_shown(b.scale),
                      "same" if same_scale else ""))
    for key in LATENCIES:
        va, vb = getattr(sa, key), getattr(sb, key)
        # drill seconds of two scales are not one unit: only a change, never better/worse
        out.append(Change(key.replace("_s", " drill s"), shown_s(va), shown_s(vb),
                          _direction(va, vb, True, SIGNIFICANT_S) if same_scale
                          else ("same" if va == vb else "")))
    return out + _case_changes(a, b)


def _case_changes(a: Scenario, b: Scenario) -> list[Change]:
    fa = {f.case: f.finding for f in a.findings}
    fb = {f.case: f.finding for f in b.findings}
    out = []
    for case in sorted(set(fa) | set(fb)):
        va, vb = fa.get(case, "-"), fb.get(case, "-")
        direction = "same" if va == vb else (
            _direction(_finding_rank(fa[case]), _finding_rank(fb[case]))
            if case in fa and case in fb else "")
        out.append(Change(f"finding of case {case}", va, vb, direction))
    return out


def compare(a: Run, b: Run) -> RunDiff:
    names = [s.name for s in a.scenarios] + [s.name for s in b.scenarios
                                             if a.scenario(s.name) is None]
    diffs = []
    for name in names:
        sa, sb = a.scenario(name), b.scenario(name)
        d = ScenarioDiff(name, sa is not None, sb is not None)
        if sa is not None and sb is not None:
            d.changes = _scenario_changes(sa, sb)
        diffs.append(d)
    return RunDiff(a.run, b.run, diffs)


STYLE = {"better": "green", "worse": "red", "": "yellow", "same": "dim"}


def print_compare(console: Console, diff: RunDiff) -> None:
    for s in diff.scenarios:
        if not (s.in_a and s.in_b):
            console.print(f"{safe(s.name)}: only in {'A' if s.in_a else 'B'} "
                          f"({safe(diff.a if s.in_a else diff.b)})")
            continue
        t = Table(title=f"{safe(s.name)}: A {safe(diff.a)} -> B {safe(diff.b)}"
                  + ("" if s.changed else " (no change)"))
        for col in ("", "A", "B", "change"):
            t.add_column(col)
        for c in s.changes:
            if c.changed or not c.what.startswith("finding of case"):
                style = STYLE[c.direction]
                t.add_row(safe(c.what), safe(c.a), safe(c.b),
                          f"[{style}]{c.direction or 'changed'}[/{style}]"
                          if c.changed else "")
        console.print(t)


def _ecdf(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    times = np.sort(np.array([m.seconds for m in sc.messages if m.seconds is not None],
                             dtype=float))
    return times, np.arange(1, len(times) + 1) / max(1, len(sc.messages))


def _ecdf_plot(name: str, a: Scenario, b: Scenario) -> Any:
    from bokeh.models.ranges import DataRange1d
    from bokeh.plotting import figure

    p = figure(title=f"{name}: share of messages back within t (A grey, B blue)",
               width=900, height=280, tools="pan,xwheel_zoom,box_zoom,reset,save",
               x_range=DataRange1d(start=0), y_range=DataRange1d(start=0))
    p.toolbar.logo = None
    for sc, colour, label in ((a, "#999999", "A"), (b, "#0072B2", "B")):
        x, y = _ecdf(sc)
        if len(x):
            p.step(x, y, mode="after", color=colour, line_width=2, legend_label=label)
    p.xaxis.axis_label = "seconds until spamc returned"
    p.yaxis.axis_label = "share of messages"
    return p


def page(a: Run, b: Run, diff: RunDiff) -> str:
    """The HTML comparison (``templates/compare.html``), handed plain values."""
    title = f"spamdrill compare {a.run} -> {b.run}"
    plots: dict[str, Any] = {}
    scenarios: list[dict[str, Any]] = []
    for i, s in enumerate(diff.scenarios):
        sa, sb = a.scenario(s.name), b.scenario(s.name)
        if sa is None or sb is None:
            scenarios.append({"name": s.name, "key": "", "only_in": "A" if sa else "B"})
            continue
        key = f"c{i}"
        plots[key] = _ecdf_plot(s.name, sa, sb)
        rows = [[c.what, c.a, c.b, change(c.direction, c.direction or "changed")
                 if c.changed else ""]
                for c in s.changes if c.changed or not c.what.startswith("finding of case")]
        scenarios.append({"name": s.name, "key": key, "rows": rows,
                          "a_verdict": badge(sa.verdict), "a_finding": badge(sa.finding),
                          "b_verdict": badge(sb.verdict), "b_finding": badge(sb.finding)})
    return render("compare.html", title, plots, scenarios=scenarios,
                  a={"run": a.run, "date": _date(a.started)},
                  b={"run": b.run, "date": _date(b.started)})


def _date(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) if epoch else "-"


def history_table(runs: list[IndexEntry]) -> Table:
    """``spamdrill history``: one row per run, from its index entry."""
    t = Table(title="spamdrill runs (newest first)")
    for col in ("run", "date (UTC)", "kind", "exit", "scenarios and verdicts", "config"):
        t.add_column(col)
    for r in runs:
        scenarios = r.scenarios
        shown = ", ".join(f"{s.name}: {s.verdict}" for s in scenarios[:8]) + (
            f", ... ({len(scenarios)} in all)" if len(scenarios) > 8 else "")
        conf = " ".join(f"{k}={v}" for k, v in r.config.items()
                        if v not in (None, [], (), "") and k != "scenarios")
        t.add_row(safe(r.run), _date(r.started), safe(r.kind),
                  safe("-" if r.exit_status is None else r.exit_status),
                  safe(shown or "(not recorded)"), safe(conf))
    return t
