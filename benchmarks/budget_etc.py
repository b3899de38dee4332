"""`spamdrill budget --etc DIR` on a full system, wall time including Python's start-up.

Runs the command line as a user would (a new interpreter each time) on each shipped
example system and prints the median and worst of N runs. The budget: 1 s.

    PYTHONPATH=src python3 benchmarks/budget_etc.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def once(root: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "spamdrill", "budget", "--etc", str(root),
                           "--json"], capture_output=True, timeout=60)
    took = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr.decode())
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    worst_all = 0.0
    for name in ("field-report", "debian-stock", "fixed"):
        times = [once(EXAMPLES / name) for _ in range(args.runs)]
        worst_all = max(worst_all, max(times))
        print(f"{name:13s} median {statistics.median(times):.3f} s, worst {max(times):.3f} s "
              f"({args.runs} runs)")
    print(f"budget 1 s: {'met' if worst_all <= 1.0 else 'MISSED'} (worst {worst_all:.3f} s)")


if __name__ == "__main__":
    main()
