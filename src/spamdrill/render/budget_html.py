"""``spamdrill budget --html``: for each failure mode, a waterfall of the steps spamc waits
through (``spamdrill.budget.breakdown``: connect tries, retry sleeps, read waits, the
scan), each step starting where the one before ended, against every layer's limit
(``model.limits``) drawn across, and the mode's outcome. Plots with Bokeh, inline
(``spamdrill.render.plots`` says why Bokeh).
"""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, HoverTool
from bokeh.models.annotations import Label, Span
from bokeh.models.ranges import FactorRange, Range1d
from bokeh.plotting import figure

from spamdrill.budget.breakdown import Step, breakdown
from spamdrill.budget.model import ModeResult, Setup, limits
from spamdrill.render.page import badge, render

KIND_COLOUR = {"connect": "#0072B2", "sleep": "#999999", "read": "#E69F00",
               "scan": "#009E73", "dns": "#CC79A7", "link": "#56B4E9", "deadline": "#000000",
               "other": "#D55E00"}
OUTCOME_CLASS = {"delivered": "within", "delivered unscanned": "delivers unscanned",
                 "deferred": "defers", "bounced": "bounces"}
LIMIT_COLOUR = "#D55E00"


def _end_to_end_limits(s: Setup) -> list[tuple[str, float]]:
    """The limits a whole delivery runs into (per-read and per-connect limits show in the
    steps themselves)."""
    out = []
    for row in limits(s):
        layer, seconds = row["layer"], row["seconds"]
        if seconds is None or layer.startswith(("spamc", "SpamAssassin", "resolver")):
            continue
        out.append((layer, float(seconds)))
    return out


def _extent(steps: list[Step], lims: list[tuple[str, float]]) -> float:
    total = sum(x.seconds for x in steps)
    return max([total, *(v for _, v in lims if v <= 4 * max(total, 1.0)), 1.0])


def waterfall(s: Setup, r: ModeResult) -> Any:
    steps = breakdown(s, r)
    lims = _end_to_end_limits(s)
    edge = _extent(steps, lims) * 1.08
    labels = [f"{i + 1}. {x.label}" for i, x in enumerate(steps)]
    left, lefts = 0.0, []
    for x in steps:
        lefts.append(left)
        left += x.seconds
    rights = [edge if x.unbounded else a + x.seconds for a, x in zip(lefts, steps,
                                                                      strict=True)]
    src = ColumnDataSource({"y": labels, "left": lefts, "right": rights,
                            "colour": [KIND_COLOUR.get(x.kind, "#777777") for x in steps],
                            "kind": [x.kind for x in steps],
                            "s": ["unbounded" if x.unbounded else f"{round(x.seconds, 1):g} s"
                                  for x in steps]})
    spamc = "spamc " + ("unbounded" if r.spamc_s is None else f"{round(r.spamc_s, 1):g} s")
    if s.spamc_deadline is not None:  # the xfilter runs spamdrill-spamc: say its deadline
        spamc = f"spamdrill-{spamc} (--deadline {s.spamc_deadline:g})"
    p = figure(title=f"{r.mode}: {spamc}"
               f", {r.outcome} (fires first: {r.fires_first})", width=900,
               height=max(160, 34 * len(steps) + 90),
               y_range=FactorRange(factors=labels[::-1]), x_range=Range1d(start=0, end=edge),
               tools="xwheel_zoom,box_zoom,reset,save")
    p.toolbar.logo = None
    bars = p.hbar(y="y", left="left", right="right", height=0.6, color="colour", source=src)
    p.add_tools(HoverTool(renderers=[bars], tooltips=[("step", "@y"), ("kind", "@kind"),
                                                      ("takes", "@s")]))
    at: dict[float, list[str]] = {}
    for name, value in lims:
        if value <= edge:
            at.setdefault(value, []).append(name)
    for i, (value, names) in enumerate(sorted(at.items())):
        p.add_layout(Span(location=value, dimension="height", line_color=LIMIT_COLOUR,
                          line_dash="dashed", line_width=1.5))
        p.add_layout(Label(x=value, y=5 + 14 * (i % 3), y_units="screen",
                           text=f" {', '.join(names)}: {value:g} s", text_font_size="8pt",
                           text_color=LIMIT_COLOUR))
    p.xaxis.axis_label = "seconds since maildrop started spamc"
    return p


def page(s: Setup, results: list[ModeResult], notes: list[str]) -> str:
    """The waterfalls' page (``templates/budget.html``), handed plain values; each
    outcome coloured as the finding it amounts to."""
    title = f"spamdrill budget: spamc {s.spamc.render()}, wrapper {s.wrapper}"
    plots: dict[str, Any] = {}
    modes = []
    for i, r in enumerate(results):
        key = f"m{i}"
        plots[key] = waterfall(s, r)
        modes.append({"mode": r.mode, "key": key, "why": r.why, "fixes": r.violations,
                      "outcome": badge(r.outcome, OUTCOME_CLASS.get(r.outcome, r.outcome))})
    limits_rows = [[row["layer"], "-" if row["seconds"] is None else f"{row['seconds']:g}",
                    row["source"]] for row in limits(s)]
    return render("budget.html", title, plots, colours=list(KIND_COLOUR.items()),
                  limits=limits_rows, modes=modes, notes=notes)
