"""One self-contained HTML page: the plots' JavaScript inline (Bokeh's core bundle, no
CDN), each plot drawn when it nears the screen, a small stylesheet, and HTML written here
with every value escaped through ``e``.

The pages are a few fixed sections of tables and plots, so they are plain functions
rather than a template engine's files: one place escapes, and mypy sees every value.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from bokeh.embed import json_item
from bokeh.resources import Resources

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1000px;color:#222}
h1{font-size:1.5em}h2{border-top:2px solid #ccc;padding-top:.6em;margin-top:2em}
h3{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;margin:.4em 0;font-size:.88em}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1em .5em;border-radius:.6em;font-size:.8em;color:#fff}
.confirmed,.within,.pass{background:#2e7d32}.refuted,.fail{background:#c62828}
.error{background:#8e24aa}.delivers-unscanned,.defers{background:#b26a00}
.bounces,.loses-mail,.duplicates-mail{background:#c62828}
.changed{background:#fff3cd}.better{color:#2e7d32}.worse{color:#c62828}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
.note{color:#555;font-size:.9em}.plot{margin:.6em 0}
"""


def e(x: object) -> str:
    return html.escape("" if x is None else str(x))


def cls(x: str) -> str:
    """A vocabulary word as a CSS class ("delivers unscanned" -> delivers-unscanned)."""
    return x.replace(" ", "-")


def badge(x: str) -> str:
    return f'<span class="badge {cls(x)}">{e(x)}</span>'


def table(head: Iterable[str], rows: Iterable[Iterable[str]], raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells already HTML)."""
    cell = (lambda c: c) if raw else e
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>" + body
            + "</table>")


# Plots are drawn as they come near the screen: a whole suite's report holds over a
# hundred, and drawing them all at once kept chromium busy for most of a minute. Each plot's
# Bokeh document waits as JSON (``json_item``) until an IntersectionObserver sees its
# place, which holds the plot's height meanwhile; ``spamdrillDrawAll()`` draws the rest.
LAZY_JS = """(function () {
  const draw = (el) => {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    const data = document.getElementById("plot-data-" + el.dataset.plot).textContent;
    Bokeh.embed.embed_item(JSON.parse(data), el.id);
  };
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries)
      if (entry.isIntersecting) { seen.unobserve(entry.target); draw(entry.target); }
  }, {rootMargin: "800px 0px"});
  const plots = document.querySelectorAll("div.plot[data-plot]");
  plots.forEach((el) => seen.observe(el));
  window.spamdrillDrawAll = () => plots.forEach(draw);
})();"""


def _plot_div(key: str, plot: Any) -> str:
    """The plot's place (its height held) and its document as JSON, ``</`` escaped so no
    string in it can end the script element."""
    data = json.dumps(json_item(plot)).replace("</", "<\\/")
    height = int(getattr(plot, "height", 0) or 300)
    return (f'<div class="plot" data-plot="{e(key)}" id="plot-{e(key)}" '
            f'style="min-height:{height}px"></div>'
            f'<script type="application/json" id="plot-data-{e(key)}">{data}</script>')


def document(title: str, body: list[str], plots: dict[str, Any]) -> str:
    """The page: ``body`` holds ``<!--plot:KEY-->`` where each plot goes."""
    text = "\n".join(body)
    for key, plot in plots.items():
        text = text.replace(f"<!--plot:{key}-->", _plot_div(key, plot))
    js = Resources(mode="inline", components=["bokeh"]).render_js() if plots else ""
    lazy = f"<script>{LAZY_JS}</script>" if plots else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(title)}</title><style>{STYLE}</style>{js}</head>"
            f"<body>{text}{lazy}</body></html>\n")
