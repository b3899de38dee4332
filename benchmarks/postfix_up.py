"""Benchmark: a private Postfix up, from nothing to its first SMTP greeting (goal <= 1 s).

    python benchmarks/postfix_up.py [--runs 10]      (as root)

Each run starts in a fresh run directory: main.cf and master.cf written, the queue made by
Postfix's own ``post-install create-missing``, master spawned, and readiness probed with a
real SMTP greeting (``postfix.greeting``). Prints each run's wall time and how long the
greeting took after master was spawned; then takes it down and checks nothing is left.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from spamdrill.lab import postfix as pf


def one(run: Path) -> dict[str, float]:
    settings = pf.Settings(transports=(pf.Transport("maildrop", ("/bin/true",)),))
    marks: list[float] = []
    t0 = time.monotonic()
    state = pf.up(run, settings, marker=uuid.uuid4().hex,
                  progress=lambda _: marks.append(time.monotonic() - t0))
    wall = time.monotonic() - t0
    t1 = time.monotonic()
    pf.down(run)
    down = time.monotonic() - t1
    if pf.alive(state) or not pf.port_free(state.address, state.port):
        raise SystemExit("Postfix left something running")
    # progress marks: config written, queue made (post-install), greeting
    return {"wall_s": round(wall, 3), "config_s": round(marks[0], 3),
            "post_install_s": round(marks[1] - marks[0], 3),
            "greeting_after_master_s": round(state.ready_s, 3), "down_s": round(down, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for _ in range(args.runs):
        base = Path(tempfile.mkdtemp(prefix="spamdrill-bench-", dir="/tmp"))
        base.chmod(0o755)
        try:
            rows.append(one(base / "lab"))
        finally:
            pf.down(base / "lab")
            shutil.rmtree(base, ignore_errors=True)
        print(json.dumps(rows[-1]))
    walls = [r["wall_s"] for r in rows]
    greet = [r["greeting_after_master_s"] for r in rows]
    install = [r["post_install_s"] for r in rows]
    print(f"private Postfix up, {len(walls)} cold starts: median {statistics.median(walls):.3f}"
          f" s, max {max(walls):.3f} s (goal <= 1 s); post-install create-missing: median "
          f"{statistics.median(install):.3f} s; greeting after master spawned: median "
          f"{statistics.median(greet):.3f} s")


if __name__ == "__main__":
    main()
