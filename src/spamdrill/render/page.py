"""One self-contained HTML page, rendered by Jinja2 with autoescape: the pages hold run
documents, configs and log lines that strangers' mail put there, so every value is
escaped by the engine wherever it lands (text, attribute, class), never by hand. Views
hand the templates (``templates/``) plain values; a cell that needs markup is a ``Mark``
(a badge, a link within the page, a change), which the ``cell`` macro draws.

Only what is made here is marked safe: Bokeh's core bundle (inline, no CDN), the script
that draws each plot as it nears the screen, and each plot's document as JSON, with every
``<``, ``>``, ``&`` and ``'`` written as a ``\\u`` escape so no string in it can end its
script element or open another. The page's Content-Security-Policy forbids any network
access and allows those two scripts by their hashes alone: an injected script would not
run even if something escaped the escaping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

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
.bounces,.loses-mail,.duplicates-mail{background:#c62828}.unknown{background:#555}
.changed{background:#fff3cd}.better{color:#2e7d32}.worse{color:#c62828}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
.note{color:#555;font-size:.9em}.plot{margin:.6em 0}
"""

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

# no network at all; scripts by hash only; Bokeh styles its shadow DOM inline and draws
# its toolbar icons and saved images from data: and blob: addresses
CSP = ("default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'")

_CLASS = re.compile(r"[a-z]+(?:-[a-z]+)*")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def cls(x: object) -> str:
    """A vocabulary word as a CSS class ("delivers unscanned" -> delivers-unscanned);
    anything else is "unknown", so no word from a document chooses the page's classes."""
    word = str(x).replace(" ", "-")
    return word if _CLASS.fullmatch(word) else "unknown"


@dataclass(frozen=True)
class Mark:
    """A cell drawn with markup (``macros.html``'s ``cell``): a badge, a link within the
    page, a change. Only these get markup: a value from a document, whatever its type,
    is shown as its text."""

    kind: str  # badge | link | change
    text: object
    css: str  # the class (badge, change), or the fragment linked to


def badge(x: object, css: str | None = None) -> Mark:
    return Mark("badge", x, cls(x if css is None else css))


def link(fragment: str, text: object) -> Mark:
    return Mark("link", text, fragment)


def change(direction: str, text: object) -> Mark:
    return Mark("change", text, cls(direction))


@cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("spamdrill.render", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.tests["mark"] = lambda x: isinstance(x, Mark)
    return env


@cache
def _bokeh_js() -> tuple[str, ...]:
    from bokeh.resources import Resources

    return tuple(Resources(mode="inline", components=["bokeh"]).js_raw)


def _hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def plot_json(plot: Any) -> Markup:
    """A plot's Bokeh document as JSON that cannot leave its script element."""
    from bokeh.embed import json_item

    text = json.dumps(json_item(plot))
    return Markup(re.sub(r"[<>&']", lambda m: _JSON_ESCAPES[m.group()], text))


def render(template: str, title: str, plots: dict[str, Any], **values: Any) -> str:
    """The page ``template`` for ``values``; ``plots`` by key, drawn where the template
    calls ``plot(key)``."""
    head = _bokeh_js() if plots else ()
    tail = (LAZY_JS,) if plots else ()
    csp = CSP.format(scripts=" ".join(_hash(s) for s in (*head, *tail)) or "'none'")
    slots = {key: {"json": plot_json(p), "height": int(getattr(p, "height", 0) or 300)}
             for key, p in plots.items()}
    return _env().get_template(template).render(
        title=title, csp=csp, style=Markup(STYLE), head_scripts=[Markup(s) for s in head],
        tail_scripts=[Markup(s) for s in tail], plots=slots, **values) + "\n"
