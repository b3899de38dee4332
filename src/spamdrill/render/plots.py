"""The report's plots, with Bokeh.

Why Bokeh: its JavaScript inlines into the page (``Resources(mode="inline")``, core only:
about 1.3 MB, where plotly's bundle alone is over 4 MB and the report must stay under
5 MB for 10,000 messages), and it ships numeric columns as base64 binary arrays, so a
large run costs bytes per message rather than digits per message. Nothing is loaded from
the network; every figure is interactive (zoom, hover naming the message).

Every plot reads the run's model (``spamdrill.runmodel``), on its time axis: seconds from
the scenario's first release.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
from bokeh.models.annotations import BoxAnnotation, ColorBar, Label, Span
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from spamdrill.runmodel import OUTCOMES, Message, Scenario

# Okabe-Ito: told apart with every common colour-vision deficiency
COLOUR = {"ham": "#009E73", "spam": "#0072B2", "unscanned": "#E69F00", "error": "#D55E00",
          "lost": "#000000"}
LINES_MAX = 1500  # more messages than this: the timeline becomes a density view
BINS = 300
WIDTH = 900
TOOLS = "pan,xwheel_zoom,box_zoom,reset,save"


def _fig(title: str, x_label: str, y_label: str, height: int = 300, **kw: Any) -> Any:
    p = figure(title=title, width=WIDTH, height=height, tools=TOOLS, **kw)
    p.xaxis.axis_label = x_label
    p.yaxis.axis_label = y_label
    p.toolbar.logo = None
    return p


def _end_s(sc: Scenario, m: Message) -> float:
    """Where a message's line ends: its return, or (lost) the end of the drill."""
    return ((m.end_ns if m.end_ns is not None else sc.end_ns) - sc.t0_ns) / 1e9


def _shade_faults(p: Any, sc: Scenario) -> None:
    for f in sc.faults:
        left = sc.rel_s(f.start_ns) or 0.0
        right = ((f.end_ns if f.end_ns is not None else sc.end_ns) - sc.t0_ns) / 1e9
        p.add_layout(BoxAnnotation(left=left, right=right, fill_color="#CC79A7",
                                   fill_alpha=0.15, line_alpha=0))
        p.add_layout(Label(x=left, y=5, y_units="screen", text=f"fault: {f.name}",
                           text_font_size="9pt", text_color="#8b3a6b"))


def _limit_lines(p: Any, sc: Scenario, dimension: Literal["width", "height"]) -> None:
    """spamc's -t (each distinct one) and the budget: across a latency axis
    (``dimension="width"``), or from the first release on a time axis ("height")."""
    lines = [(t, f"-t {t:g} drill s", "#555555") for t in sc.spamc_timeouts]
    lines.append((sc.budget_s, f"budget {sc.budget_s:.3g} drill s = "
                  f"{sc.budget_s * sc.scale:.3g} production s", "#D55E00"))
    for value, text, colour in lines:
        p.add_layout(Span(location=value, dimension=dimension, line_color=colour,
                          line_dash="dashed", line_width=1.5))
        if dimension == "width":
            p.add_layout(Label(x=5, x_units="screen", y=value, text=text,
                               text_font_size="9pt", text_color=colour))
        else:
            p.add_layout(Label(x=value, y=20, y_units="screen", text=text,
                               text_font_size="9pt", text_color=colour))


def _fit(rng: Any, data_max: float, sc: Scenario) -> None:
    """An axis from 0 that shows -t and the budget too, unless they are so far past the
    data (more than 3x) that showing them would flatten it."""
    marks = [x for x in (*sc.spamc_timeouts, sc.budget_s) if x <= 3 * max(data_max, 1e-3)]
    rng.start = 0
    rng.end = max([data_max, *marks, 1e-3]) * 1.05


def _by_outcome(sc: Scenario) -> dict[str, list[Message]]:
    groups: dict[str, list[Message]] = {str(o): [] for o in OUTCOMES}
    for m in sc.messages:
        groups.setdefault(str(m.outcome), []).append(m)
    return {o: ms for o, ms in groups.items() if ms}


def _hover(renderers: list[Any], fields: list[tuple[str, str]]) -> HoverTool:
    return HoverTool(renderers=renderers, tooltips=fields)


def timeline(sc: Scenario) -> Any:
    """Every message as a line from release to return (``-t`` and the budget drawn from
    the first release, which is when a burst's messages all start); past ``LINES_MAX``
    messages, how many are in flight over time instead, per outcome."""
    if len(sc.messages) > LINES_MAX:
        return density(sc)
    order = {m.id: i for i, m in enumerate(sorted(sc.messages, key=lambda m: m.start_ns))}
    p = _fig(f"{sc.name}: every message, release to return",
             "drill seconds from the first release", "message (by release)",
             height=max(260, min(700, 8 * len(sc.messages) + 120)))
    renderers = []
    for outcome, ms in _by_outcome(sc).items():
        y = [order[m.id] for m in ms]
        src = ColumnDataSource({
            "x0": np.array([sc.rel_s(m.start_ns) for m in ms], dtype=float),
            "x1": np.array([_end_s(sc, m) for m in ms], dtype=float),
            "y": np.array(y, dtype=float), "id": [m.id for m in ms],
            "case": [m.case or "all" for m in ms],
            "took": ["never returned" if m.seconds is None else f"{m.seconds:.3f} s"
                     for m in ms], "reason": [m.reason for m in ms]})
        renderers.append(p.segment("x0", "y", "x1", "y", source=src, line_width=3,
                                   color=COLOUR.get(outcome, "#999999"),
                                   legend_label=outcome))
    _shade_faults(p, sc)
    _limit_lines(p, sc, "height")
    _fit(p.x_range, (sc.end_ns - sc.t0_ns) / 1e9, sc)
    p.add_tools(_hover(renderers, [("message", "@id"), ("case", "@case"),
                                   ("took", "@took"), ("reason", "@reason")]))
    p.legend.location = "bottom_right"
    p.legend.click_policy = "hide"
    return p


def in_flight(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of the intervals [start, end) hold at each edge, sans-IO."""
    s = np.sort(starts)
    e = np.sort(ends)
    return (np.searchsorted(s, edges, side="right")
            - np.searchsorted(e, edges, side="right")).astype(float)


def density(sc: Scenario) -> Any:
    end = (sc.end_ns - sc.t0_ns) / 1e9
    edges = np.linspace(0.0, max(end, 1e-3), BINS)
    data: dict[str, Any] = {"t": edges}
    groups = _by_outcome(sc)
    for outcome, ms in groups.items():
        starts = np.array([sc.rel_s(m.start_ns) for m in ms], dtype=float)
        ends = np.array([_end_s(sc, m) for m in ms], dtype=float)
        data[outcome] = in_flight(starts, ends, edges)
    p = _fig(f"{sc.name}: messages in flight ({len(sc.messages)} messages: a density "
             "view, not one line each)", "drill seconds from the first release",
             "messages in flight")
    names = list(groups)
    p.varea_stack(names, x="t", source=ColumnDataSource(data),
                  color=[COLOUR.get(o, "#999999") for o in names], legend_label=names)
    _shade_faults(p, sc)
    _limit_lines(p, sc, "height")
    p.legend.location = "top_right"
    return p


def latency_density(sc: Scenario) -> Any:
    """For thousands of messages: how many were released when and took how long, as a
    heat map (one image, where ten thousand points would hide each other)."""
    done = [m for m in sc.messages if m.seconds is not None]
    x = np.array([sc.rel_s(m.start_ns) for m in done], dtype=float)
    y = np.array([m.seconds for m in done], dtype=float)
    x_max = max(float(x.max()) if len(x) else 0.0, 1e-3)
    y_max = max(float(y.max()) if len(y) else 0.0, 1e-3)
    counts, _, _ = np.histogram2d(x, y, bins=(BINS // 2, 80), range=((0, x_max), (0, y_max)))
    p = _fig(f"{sc.name}: latency over time ({len(done)} messages: how many in each cell)",
             "released at (drill seconds from the first release)",
             "drill seconds until spamc returned")
    mapper = LinearColorMapper(palette=Viridis256[::-1], low=1, high=max(1.0, counts.max()),
                               low_color=(0, 0, 0, 0))
    p.image(image=[counts.T], x=0, y=0, dw=x_max, dh=y_max, color_mapper=mapper)
    p.add_layout(ColorBar(color_mapper=mapper, title="messages"), "right")
    _shade_faults(p, sc)
    _limit_lines(p, sc, "width")
    _fit(p.y_range, y_max, sc)
    return p


def latency(sc: Scenario) -> Any:
    """Each message's time against when it was released; -t and the budget across."""
    if len(sc.messages) > LINES_MAX:
        return latency_density(sc)
    p = _fig(f"{sc.name}: latency over time", "released at (drill seconds from the first release)",
             "drill seconds until spamc returned")
    renderers = []
    for outcome, ms in _by_outcome(sc).items():
        done = [m for m in ms if m.seconds is not None]
        if not done:
            continue
        src = ColumnDataSource({
            "x": np.array([sc.rel_s(m.start_ns) for m in done], dtype=float),
            "y": np.array([m.seconds for m in done], dtype=float),
            "id": [m.id for m in done], "case": [m.case or "all" for m in done]})
        renderers.append(p.scatter("x", "y", source=src, size=5, alpha=0.7,
                                   color=COLOUR.get(outcome, "#999999"),
                                   legend_label=outcome))
    _shade_faults(p, sc)
    _limit_lines(p, sc, "width")
    _fit(p.y_range, sc.summary.max_s or 0.0, sc)
    p.add_tools(_hover(renderers, [("message", "@id"), ("case", "@case"),
                                   ("seconds", "@y{0.000}")]))
    if renderers:
        p.legend.location = "top_left"
        p.legend.click_policy = "hide"
    return p


def distribution(sc: Scenario) -> Any:
    """How the latencies spread, stacked per outcome, with -t and the budget."""
    times = [m.seconds for m in sc.messages if m.seconds is not None]
    data_max = max([*times, 1e-3])
    top = max([data_max, *(x for x in (*sc.spamc_timeouts, sc.budget_s)
                           if x <= 3 * data_max)])
    edges = np.linspace(0.0, top * 1.02, 61)
    p = _fig(f"{sc.name}: latency distribution", "drill seconds until spamc returned", "messages")
    bottom = np.zeros(len(edges) - 1)
    for outcome, ms in _by_outcome(sc).items():
        counts, _ = np.histogram([m.seconds for m in ms if m.seconds is not None], edges)
        if not counts.any():
            continue
        p.quad(left=edges[:-1], right=edges[1:], bottom=bottom.copy(),
               top=bottom + counts, color=COLOUR.get(outcome, "#999999"),
               legend_label=outcome, line_color="white", line_width=0.5)
        bottom = bottom + counts
    _limit_lines(p, sc, "height")
    return p


def outcome_counts(sc: Scenario) -> Any:
    counts = sc.summary.counts
    names = [o for o in counts if counts[o]] or [str(o) for o in OUTCOMES]
    p = _fig(f"{sc.name}: outcomes", "", "messages", height=240, x_range=names)
    src = ColumnDataSource({"outcome": names, "n": [counts.get(o, 0) for o in names],
                            "colour": [COLOUR.get(o, "#999999") for o in names]})
    bars = p.vbar(x="outcome", top="n", width=0.7, source=src, color="colour")
    p.add_tools(_hover([bars], [("outcome", "@outcome"), ("messages", "@n")]))
    p.y_range.start = 0
    return p


def predicted_vs_measured(sc: Scenario) -> Any | None:
    """Each case's measured worst time against the budget model's prediction."""
    cases = [c for c in sc.cases if c.predicted_s is not None and c.summary.max_s is not None]
    if not cases:
        return None
    names = [c.name for c in cases]
    finite = [c.predicted_s for c in cases if c.predicted_s != float("inf")]
    cap = max([*(c.summary.max_s or 0.0 for c in cases), *(x or 0.0 for x in finite), 1.0])
    p = _fig(f"{sc.name}: the budget's predicted worst case against the measured",
             "drill seconds", "", height=max(200, 26 * len(cases) + 90), y_range=names[::-1])
    measured = ColumnDataSource({"case": names, "s": [c.summary.max_s for c in cases]})
    predicted = ColumnDataSource({
        "case": names, "s": [min(c.predicted_s or 0.0, cap * 1.1) for c in cases],
        "shown": ["unbounded" if c.predicted_s == float("inf") else f"{c.predicted_s:g} s"
                  for c in cases]})
    r1 = p.scatter("s", "case", source=predicted, size=14, marker="diamond",
                   color="#999999", legend_label="predicted (unbounded: at the right edge)")
    r2 = p.scatter("s", "case", source=measured, size=8, color="#0072B2",
                   legend_label="measured worst")
    p.add_tools(_hover([r1], [("case", "@case"), ("predicted", "@shown")]),
                _hover([r2], [("case", "@case"), ("measured", "@s{0.000} s")]))
    p.add_layout(Span(location=sc.budget_s, dimension="height", line_color="#D55E00",
                      line_dash="dashed"))
    _fit(p.x_range, cap * 1.1, sc)
    p.add_layout(p.legend[0], "below")  # not over the points of a one-case drill
    return p


def scenario_plots(sc: Scenario) -> dict[str, Any]:
    """The plots of one scenario's section, by name; none for a drill with no messages."""
    if not sc.messages:
        return {}
    plots = {"timeline": timeline(sc), "latency": latency(sc),
             "distribution": distribution(sc), "outcomes": outcome_counts(sc)}
    budget = predicted_vs_measured(sc)
    if budget is not None:
        plots["budget"] = budget
    return plots
