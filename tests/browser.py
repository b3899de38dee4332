"""Open a report in Debian's chromium, headless, as a person's browser would: what it
requested, what it complained of, which plots it drew, how long until the page was
idle, and a screenshot. Driven with Playwright's client against /usr/bin/chromium (no
browser download). As root chromium needs --no-sandbox; the rest of ``ARGS`` stop its
own background traffic (component updates, sync, first-run pings), so any request the
page makes is the page's. Plots are drawn as they near the screen, so the page is read
as a person reads it: the first screen, then scrolled to each plot in turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-default-apps",
        "--disable-domain-reliability", "--no-pings", "--disable-features=MediaRouter"]

# per section: its name, how many plots it says it has, how many were drawn (a Bokeh
# figure with a canvas of non-zero size inside its shadow root)
SECTIONS_JS = """() => {
  const canvases = (root) => {  // Bokeh draws inside nested shadow roots
    let found = [...root.querySelectorAll('canvas')];
    for (const el of root.querySelectorAll('*'))
      if (el.shadowRoot) found = found.concat(canvases(el.shadowRoot));
    return found;
  };
  return [...document.querySelectorAll('section[data-scenario]')].map(s => ({
    name: s.dataset.scenario, expected: Number(s.dataset.plots),
    drawn: [...s.querySelectorAll('.plot')].filter(
      p => canvases(p).some(c => c.width > 0 && c.height > 0)).length,
    text: s.innerText.length}));
}"""
# every plot placed on the first screen is drawn, and Bokeh is idle
FIRST_VIEW_JS = """() => {
  if (typeof Bokeh === 'undefined') return false;
  const visible = [...document.querySelectorAll('div.plot')].filter(
    p => p.getBoundingClientRect().top < window.innerHeight);
  return visible.every(p => p.dataset.drawn) && Bokeh.documents.length >= visible.length
    && Bokeh.documents.every(d => d.is_idle);
}"""
ALL_DRAWN_JS = ("() => Bokeh.documents.length === document.querySelectorAll('div.plot').length"
                " && Bokeh.documents.every(d => d.is_idle)")


def _scroll_through(page: Any, timeout_s: float) -> None:
    """Scroll to each plot in turn, as a reader would, so each is drawn as it comes near."""
    count = page.evaluate("() => document.querySelectorAll('div.plot').length")
    for i in range(count):
        page.evaluate("i => document.querySelectorAll('div.plot')[i].scrollIntoView()", i)
        page.wait_for_function(
            "i => document.querySelectorAll('div.plot')[i].dataset.drawn", arg=i,
            timeout=timeout_s * 1000)
    page.wait_for_function(ALL_DRAWN_JS, timeout=timeout_s * 1000)


@dataclass
class Opened:
    load_s: float  # navigation until the first screen's plots are drawn (Bokeh idle)
    all_s: float  # ... until every plot is drawn, scrolling to each in turn
    sections: list[dict[str, Any]]
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)  # requests other than the file
    screenshot: Path | None = None
    dialogs: list[str] = field(default_factory=list)  # alert(), confirm(), ... opened
    probe: Any = None  # what ``probe`` (a JS expression) gave once the page was read


def open_report(path: Path, screenshot: Path | None = None, timeout_s: float = 60,
                has_plots: bool = True, probe: str | None = None) -> Opened:
    from playwright.sync_api import sync_playwright

    url = path.resolve().as_uri()
    errors: list[str] = []
    page_errors: list[str] = []
    network: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: None if r.url == url or r.url.startswith(
                ("data:", "blob:")) else network.append(r.url))
            t0 = time.perf_counter()
            page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            if has_plots:
                page.wait_for_function(FIRST_VIEW_JS, timeout=timeout_s * 1000)
            load_s = time.perf_counter() - t0
            if has_plots:
                _scroll_through(page, timeout_s)
            all_s = time.perf_counter() - t0
            page.evaluate("() => window.scrollTo(0, 0)")
            sections = page.evaluate(SECTIONS_JS)
            probed = page.evaluate(probe) if probe is not None else None
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return Opened(load_s, all_s, sections, errors, page_errors, network, screenshot,
                  dialogs, probed)
