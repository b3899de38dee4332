"""Benchmark: `lab up` to all-ready, on real components (issue: <= 10 s on 2 cores).

Runs N cold start-ups (fresh run directory each: datadir creation, schema load, spamd rule
compile) and prints per-component readiness and the total, as measured by the lab's own
probes (DNS query, SELECT 1, spamd PING).

    python benchmarks/lab_up.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for i in range(args.runs):
        base = Path(tempfile.mkdtemp(prefix="spamdrill-bench-", dir="/tmp"))
        base.chmod(0o755)
        t0 = time.monotonic()
        try:
            state = lab_ops.up(base / "lab", LabConfig())
            wall = time.monotonic() - t0
            rows.append({"run": i, "wall_s": round(wall, 3),
                         **{k: round(v, 3) for k, v in state.ready_s.items()}})
        finally:
            lab_ops.down(base / "lab")
            shutil.rmtree(base, ignore_errors=True)
        print(json.dumps(rows[-1]))
    walls = [r["wall_s"] for r in rows]
    print(f"lab up, {len(walls)} cold starts: median {statistics.median(walls):.2f} s, "
          f"max {max(walls):.2f} s (goal <= 10 s)")


if __name__ == "__main__":
    main()
