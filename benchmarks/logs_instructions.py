"""Benchmark: instructions per line of ``spamdrill logs`` against the two Python floors of
``logs_throughput.py`` (a loop that only splits each line; the least work a Python join of
these lines takes), counted by valgrind's cachegrind on a small generated log of the same
mix. Counts are the same run after run, where wall time on a shared machine is not: use
them to compare two versions of the code.

    python benchmarks/logs_instructions.py [--mb 4] [--incident-every 60]

Each count has the interpreter's start-up on a log of a few lines taken off, so it is the
work per line. Needs valgrind (Debian: ``apt-get install valgrind``); the log is deleted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from logs_throughput import PY_FLOOR, PY_JOIN_FLOOR, ROOT, generate

sys.path.insert(0, str(ROOT / "src"))
from spamdrill.logs.reader import compiled

SPAMDRILL = ("import sys; from spamdrill.logs.run import analyze; "
             "from spamdrill.logs.reader import Filters; "
             "from spamdrill.logs.summary import Options; "
             "from spamdrill.logs.formats import zone; "
             "analyze([sys.argv[1]], Filters(year=2026, tz=zone('UTC')), "
             "Options(tz=zone('UTC')))")


def instructions(code: str, path: Path, pure: bool = False) -> int:
    """Instructions a run of ``code`` on ``path`` took (the real interpreter, not a shim);
    ``pure``: with ``SPAMDRILL_PURE=1`` (the pure-Python reader loop)."""
    env = dict(os.environ, SPAMDRILL_PURE="1" if pure else "")
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         os.path.realpath(sys.executable), "-c", code, str(path)],
        capture_output=True, text=True, check=False, env=env)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed: {done.stderr[-400:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--incident-every", type=int, default=60)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", "")
    work = Path(tempfile.mkdtemp(prefix="spamdrill-logcount-"))
    try:
        log, tiny = work / "mail.log", work / "tiny.log"
        lines, _ = generate(log, args.mb / 1000, 0, args.incident_every)
        tiny.write_text("".join(log.read_text().splitlines(keepends=True)[:10]))
        print(f"{log.stat().st_size / 1e6:.1f} MB, {lines:,} lines")
        counts = {}
        print(f"  compiled reader loop: {'built' if compiled() else 'NOT BUILT'}")
        for name, code, pure in (("python: split each line", PY_FLOOR, False),
                                 ("python: least-work join", PY_JOIN_FLOOR, False),
                                 ("spamdrill logs", SPAMDRILL, False),
                                 ("spamdrill logs, pure", SPAMDRILL, True)):
            per_line = (instructions(code, log, pure)
                        - instructions(code, tiny, pure)) / (lines - 10)
            counts[name] = per_line
            print(f"  {name:24} {per_line:9,.0f} instructions/line", flush=True)
        for name in ("spamdrill logs", "spamdrill logs, pure"):
            ours = counts[name]
            print(f"  {name}: {ours / counts['python: split each line']:.1f}x the split "
                  f"loop, {ours / counts['python: least-work join']:.1f}x the least-work "
                  "join")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
