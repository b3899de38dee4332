"""Benchmark: spamdrill-spamc's cost per message against the real spamc, in one run.

    python benchmarks/spamc_overhead.py [--runs 40]

A private lab (real spamd, MariaDB, lab DNS) comes up; then, interleaved so drift hits all
alike, each program checks the same messages (ham, GTUBE, multipart) against it:

- the real spamc (/usr/bin/spamc),
- spamdrill-spamc's ``--make-launcher`` launcher (``python -I -S``, as a postmaster would
  install it), and its console script (``site`` included),

both on the healthy path (a full scan) and for start-up alone (a refused port with one
connect try: start, flags, stdin, connect, fail open), with the interpreter's own floor
(``python3 -I -S -c pass``). Prints min/median/max wall time per
message and the overhead (median minus spamc's median). Goal: a few tens of ms at most.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spamdrill import corpus
from spamdrill.drills.fakes import Fake
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig


def wall(argv: list[str], stdin: bytes, floor: bool = False) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    if not floor and (done.returncode not in (0, 1) or not done.stdout):
        raise SystemExit(f"{argv[0]} failed with {done.returncode}")
    return elapsed


def console_script() -> list[str]:
    script = Path(sys.executable).parent / "spamdrill-spamc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "spamdrill.spamc"]


def row(name: str, xs: list[float], base: float | None) -> str:
    over = "" if base is None else f"   overhead {(statistics.median(xs) - base) * 1000:+7.1f} ms"
    return (f"  {name:34s} min {min(xs) * 1000:7.1f}  median {statistics.median(xs) * 1000:7.1f}"
            f"  max {max(xs) * 1000:7.1f} ms  (n={len(xs)}){over}")


def measure(runs: int, programs: dict[str, list[str]], target: list[str],
            messages: list[bytes]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in programs}
    for argv in programs.values():  # warm caches
        wall([*argv, *target], messages[0])
    for i in range(runs):
        message = messages[i % len(messages)]
        for name, argv in programs.items():
            times[name].append(wall([*argv, *target], message))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    import compileall

    import spamdrill

    # an installed package has its bytecode compiled (pip does it)
    compileall.compile_dir(str(Path(spamdrill.__file__).parent), quiet=1)
    messages = [corpus.ham(1), corpus.gtube(2), corpus.multipart(3)]
    base = Path(tempfile.mkdtemp(prefix="spamdrill-bench-", dir="/tmp"))
    base.chmod(0o755)
    fake = Fake("refuse")
    try:
        launcher = base / "spamdrill-spamc"
        subprocess.run([*console_script(), "--make-launcher", str(launcher)], check=True,
                       stdout=subprocess.DEVNULL)
        script = console_script()
        programs = {"spamc 4.0.1": [shutil.which("spamc") or "/usr/bin/spamc"],
                    "spamdrill-spamc launcher (-IS)": [str(launcher), "--deadline=60"],
                    ("spamdrill-spamc console script" if len(script) == 1 else
                     "python -m spamdrill.spamc"): [*script, "--deadline=60"]}
        state = lab_ops.up(base / "lab", LabConfig())
        healthy = measure(args.runs, programs, ["-d", state.spamd.host, "-p",
                                                str(state.spamd.port), "-u", "alice"],
                          messages)
        startup = measure(args.runs, programs, ["-d", "127.0.0.1", "-p", str(fake.port),
                                                "--connect-retries", "1"], messages)
        # the interpreter alone, which no code of ours can beat
        startup["floor: python3 -I -S -c pass"] = [
            wall([sys.executable, "-I", "-S", "-c", "pass"], b"", floor=True)
            for _ in range(args.runs)]
    finally:
        fake.close()
        lab_ops.down(base / "lab")
        shutil.rmtree(base, ignore_errors=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{time.strftime('%Y-%m-%d')}, {args.runs} interleaved runs each, load average "
          f"{' '.join(load)}")
    for title, times in (("healthy path (a full scan by the lab's spamd):", healthy),
                         ("start-up alone (refused port, one connect try, fail open):",
                          startup)):
        print(title)
        spamc = statistics.median(times["spamc 4.0.1"])
        for name, xs in times.items():
            print(row(name, xs, None if name == "spamc 4.0.1" else spamc))


if __name__ == "__main__":
    main()
