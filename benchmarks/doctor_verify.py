"""spamdrill doctor --verify on the field report's example (root, a lab machine): wall
seconds for the whole command (the diagnosis, two labs before and after the change, the
end-to-end drills of the diagnosed modes, the origin message replayed among them), and
each drill's own seconds from the two recorded runs. Goal: under 10 minutes on 2 cores.

    sudo PYTHONPATH=$PWD/src python3 benchmarks/doctor_verify.py   # benchmarks/README.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="doctor-verify-bench-") as tmp:
        doc_path = Path(tmp) / "doctor.json"
        argv = [sys.executable, "-m", "spamdrill", "doctor", "--verify", "--etc",
                str(FIELD), "--origin", str(FIELD / "incident/origin.eml"),
                "--results-dir", str(Path(tmp) / "runs"), "--json", str(doc_path),
                str(FIELD / "incident/mail.log")]
        t0 = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - t0
        if not doc_path.is_file():
            sys.exit(f"doctor --verify wrote no document (exit {done.returncode}): "
                     f"{done.stderr[-500:]}")
        v = json.loads(doc_path.read_text())["verify"]
        runs = Path(v["runs"]["results_dir"])
        spans = []
        for side in ("before", "after"):
            run = json.loads((runs / v["runs"][side] / "report.json").read_text())
            for s in run["scenarios"]:
                ns = [m["start_ns"] for m in s["messages"]] + [
                    m["end_ns"] for m in s["messages"] if m["end_ns"]]
                spans.append(f"{side} {s['name']} {(max(ns) - min(ns)) / 1e9:.0f} s"
                             if ns else f"{side} {s['name']} -")
    marks = ", ".join(f"{m['path']}: {m['mark']}" for m in v["marks"])
    print(f"doctor --verify (field report): exit {done.returncode}, wall {wall:.0f} s "
          f"({wall / 60:.1f} min); {marks}; mail in flight per drill: {'; '.join(spans)}")


if __name__ == "__main__":
    main()
