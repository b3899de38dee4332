"""Benchmark: the same verdicts and the same findings, run after run, with one core kept
busy by another process, and under CPU quotas that make this machine slower (a verdict
that depends on the machine is worse than none).

Runs ``spamdrill run --json`` ``--runs`` times (as root, every drill but the ``--long``
one), then as many again with a busy loop pinned to one core, then once per ``--quotas``
(CPUs' worth of time for the run and all it starts: ``cpu_quota.py``), and prints per run
its wall time and per drill its verdict, finding and worst time; then whether every drill
had one verdict and one finding throughout. A drill in ``error`` because its condition
did not occur on a slow machine is said apart (it did not answer falsely). Exit 1 if a
drill changed otherwise.

    python benchmarks/verdict_stability.py --runs 5
    python benchmarks/verdict_stability.py --runs 5 --busy-runs 2
    python benchmarks/verdict_stability.py --runs 1 --busy-runs 1 --quotas 2 1 0.5
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

sys.path.insert(0, str(Path(__file__).parent))
import cpu_quota  # a sibling script, not a package


def spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Keep one core busy (pinned to the last one), as other work on a CI machine would."""
    os.sched_setaffinity(0, {os.cpu_count() - 1 if os.cpu_count() else 0})
    while not stop.is_set():
        sum(range(10000))


def one_run(only: list[str], workdir: Path,
            cores: float | None = None) -> tuple[float, dict[str, dict[str, object]]]:
    out = workdir / f"run-{time.monotonic_ns()}.json"
    argv = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "spamdrill", "run", *only,
            "--json", str(out), "--results-dir", str(workdir / "results")]
    t0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=7200) \
        if cores is None else cpu_quota.run(argv, cores, capture_output=True, timeout=7200)
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
        unmet = [c["detail"] for c in sc["checks"] if c["status"] == "error"
                 and "did not occur" in c["detail"]] + [
            f["detail"] for f in sc["fault_evidence"] if "did not occur" in f["detail"]]
        drills[sc["name"]] = {"verdict": sc["verdict"], "finding": sc["finding"],
                              "worst_s": round(max(times), 2) if times else None,
                              "exit": doc["exit_status"], "unmet": unmet,
                              "scan_s": (sc["timing"].get("calibration") or {}).get("scan_s")}
    return took, drills


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs quiet, and as many busy")
    parser.add_argument("--only", nargs="*", default=[], help="these drills only")
    parser.add_argument("--busy-runs", type=int, default=None,
                        help="runs with one core busy (default: as many as --runs)")
    parser.add_argument("--quiet-only", action="store_true", help="no busy-core runs")
    parser.add_argument("--quotas", nargs="*", type=float, default=[],
                        help="then one run under each CPU quota (cores: 2 1 0.5)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spamdrill-stability-"))
    seen: dict[str, dict[str, set[object]]] = defaultdict(lambda: defaultdict(set))
    busy = 0 if args.quiet_only else args.runs if args.busy_runs is None else args.busy_runs
    modes = ["quiet"] * args.runs + ["busy"] * busy + [f"{q:g} cores" for q in args.quotas]
    unmet: dict[str, list[str]] = defaultdict(list)
    for i, mode in enumerate(modes, 1):
        stop = multiprocessing.Event()
        burner = multiprocessing.Process(target=spin, args=(stop,)) if mode == "busy" else None
        if burner is not None:
            burner.start()
        try:
            cores = float(mode.split()[0]) if mode.endswith("cores") else None
            took, drills = one_run(args.only, work, cores)
        finally:
            if burner is not None:
                stop.set()
                burner.join()
        print(f"run {i} ({mode}): {took:.0f} s, exit {next(iter(drills.values()))['exit']}",
              flush=True)
        for name, d in drills.items():
            scan = f", scan {d['scan_s']} s" if d["scan_s"] else ""
            print(f"  {name}: {d['verdict']}, {d['finding']}, worst {d['worst_s']} s{scan}")
            if d["unmet"]:  # said, not a false answer: kept apart from the others
                unmet[name].append(f"{mode}: {d['unmet'][0]}")
                continue
            seen[name]["verdict"].add(d["verdict"])
            seen[name]["finding"].add(d["finding"])
    unstable = {n: {k: sorted(map(str, v)) for k, v in d.items() if len(v) > 1}
                for n, d in seen.items()}
    unstable = {n: d for n, d in unstable.items() if d}
    print(f"\n{len(seen)} drills, {len(modes)} runs: "
          + ("every verdict and finding the same in every run" if not unstable
             else f"{len(unstable)} drill(s) changed: {json.dumps(unstable)}"))
    for name, why in unmet.items():
        print(f"  {name}: error, its condition did not occur in " + "; ".join(why))
    return 1 if unstable else 0


if __name__ == "__main__":
    sys.exit(main())
