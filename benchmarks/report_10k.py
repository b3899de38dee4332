"""The HTML report for a run of 10,000 messages: time to generate, size, time to open in
chromium (goals: <= 10 s, <= 5 MB, <= 3 s).

The run document is made from a real small run's shape, scaled up: spamd-stopping from
tests/data/runs/field/report.json (30 messages at production pace, spamd SIGTERMed in the
middle: scanned, then unscanned) multiplied to 10,000 by tests/scaleup.py (each message a
copy of one of the 30, released over a stream ten times as long, its time jittered +-10 %;
the fault window stretched with it). It is written to a file and reported as a user would:

    spamdrill report big.json --html big.html --junit big.xml --csv big-csv/

a new interpreter each time (start-up and imports included). Opening: Debian's chromium,
headless, from navigation until the first screen's plots are drawn (plots are drawn as
they near the screen), and until every plot is drawn, scrolling to each in turn; same
flags as the tests (tests/browser.py). The first open is also the check that nothing was
requested and nothing complained.

    PYTHONPATH=src python3 benchmarks/report_10k.py [--messages 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import open_report  # noqa: E402
from scaleup import scale_up  # noqa: E402


def generate(doc: Path, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "spamdrill", "report", str(doc), *extra],
                          capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    if done.returncode not in (0, 1, 3):  # report exits with the recorded run's status
        raise SystemExit(done.stderr)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    field = json.loads((ROOT / "tests/data/runs/field/report.json").read_text())
    big = scale_up(field, "spamd-stopping", args.messages)
    with tempfile.TemporaryDirectory(prefix="spamdrill-bench-") as tmp:
        d = Path(tmp)
        doc = d / "big.json"
        doc.write_text(json.dumps(big))
        page = d / "big.html"
        gen = [generate(doc, page, "--html", str(page)) for _ in range(args.runs)]
        everything = generate(doc, page, "--html", str(page), "--junit", str(d / "big.xml"),
                              "--csv", str(d / "csv"))
        first = open_report(page)
        assert not first.console_errors and not first.page_errors, first
        assert not first.network, first.network
        assert all(s["drawn"] == s["expected"] for s in first.sections), first.sections
        more = [open_report(page) for _ in range(args.runs - 1)]
        opens = [first.load_s] + [o.load_s for o in more]
        alls = [first.all_s] + [o.all_s for o in more]
        size = page.stat().st_size
    print(f"messages: {args.messages}")
    print(f"generate (spamdrill report --html, wall): median {statistics.median(gen):.2f} s, "
          f"max {max(gen):.2f} s (goal <= 10 s)")
    print(f"generate HTML + JUnit + CSV: {everything:.2f} s")
    print(f"size: {size / 1e6:.2f} MB (goal <= 5 MB)")
    print(f"open in chromium, first screen drawn: median {statistics.median(opens):.2f} s, "
          f"min {min(opens):.2f} s, max {max(opens):.2f} s (goal <= 3 s)")
    print(f"... and every plot drawn, scrolling to each: median {statistics.median(alls):.2f} s, "
          f"max {max(alls):.2f} s")
    print(f"plots drawn: {sum(s['drawn'] for s in first.sections)}; console errors: 0; "
          f"requests: 0; load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
