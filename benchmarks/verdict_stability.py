"""Benchmark: the same verdicts and the same findings, run after run, also with one core
kept busy by another process (issue 13: a verdict that depends on the machine is worse than
none).

Runs ``spamdrill run --json`` ``--runs`` times (as root, every drill but the ``--long``
one), then as many again with a busy loop pinned to one core, and prints per run its wall
time and per drill its verdict, finding and worst time; then whether every drill had one
verdict and one finding throughout. Exit 1 if not.

    python benchmarks/verdict_stability.py --runs 5
    python benchmarks/verdict_stability.py --runs 5 --busy-runs 2
    python benchmarks/verdict_stability.py --runs 1 --only spamd-down flood   # a quick look
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Keep one core busy (pinned to the last one), as other work on a CI machine would."""
    os.sched_setaffinity(0, {os.cpu_count() - 1 if os.cpu_count() else 0})
    while not stop.is_set():
        sum(range(10000))


def one_run(only: list[str], workdir: Path) -> tuple[float, dict[str, dict[str, object]]]:
    out = workdir / f"run-{time.monotonic_ns()}.json"
    t0 = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "spamdrill",
                           "run", *only, "--json", str(out),
                           "--results-dir", str(workdir / "results")],
                          capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - t0
    rss = done.stderr.strip().rsplit("\n", 1)[-1]
    print(f"  spamdrill run's peak RSS: {int(rss) // 1024 if rss.isdigit() else '?'} MB",
          flush=True)
    if not out.exists():
        raise SystemExit(f"spamdrill run wrote no results (exit {done.returncode}): "
                         f"{done.stderr.strip()[-400:]}")
    doc = json.loads(out.read_text())
    drills = {}
    for sc in doc["scenarios"]:
        times = [(m["end_ns"] - m["start_ns"]) / 1e9 for m in sc["messages"] if m["end_ns"]]
        drills[sc["name"]] = {"verdict": sc["verdict"], "finding": sc["finding"],
                              "worst_s": round(max(times), 2) if times else None,
                              "exit": doc["exit_status"]}
    return took, drills


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs quiet, and as many busy")
    parser.add_argument("--only", nargs="*", default=[], help="these drills only")
    parser.add_argument("--busy-runs", type=int, default=None,
                        help="runs with one core busy (default: as many as --runs)")
    parser.add_argument("--quiet-only", action="store_true", help="no busy-core runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spamdrill-stability-"))
    seen: dict[str, dict[str, set[object]]] = defaultdict(lambda: defaultdict(set))
    busy = 0 if args.quiet_only else args.runs if args.busy_runs is None else args.busy_runs
    modes = ["quiet"] * args.runs + ["busy"] * busy
    for i, mode in enumerate(modes, 1):
        stop = multiprocessing.Event()
        burner = multiprocessing.Process(target=spin, args=(stop,)) if mode == "busy" else None
        if burner is not None:
            burner.start()
        try:
            took, drills = one_run(args.only, work)
        finally:
            if burner is not None:
                stop.set()
                burner.join()
        print(f"run {i} ({mode}): {took:.0f} s, exit {next(iter(drills.values()))['exit']}",
              flush=True)
        for name, d in drills.items():
            print(f"  {name}: {d['verdict']}, {d['finding']}, worst {d['worst_s']} s")
            seen[name]["verdict"].add(d["verdict"])
            seen[name]["finding"].add(d["finding"])
    unstable = {n: {k: sorted(map(str, v)) for k, v in d.items() if len(v) > 1}
                for n, d in seen.items()}
    unstable = {n: d for n, d in unstable.items() if d}
    print(f"\n{len(seen)} drills, {len(modes)} runs: "
          + ("every verdict and finding the same in every run" if not unstable
             else f"{len(unstable)} drill(s) changed: {json.dumps(unstable)}"))
    return 1 if unstable else 0


if __name__ == "__main__":
    sys.exit(main())
