"""Benchmark: reading a gzipped mail log a block at a time (what ``reader.blocks`` asks of
it: ``read1`` of a megabyte), through Python's ``gzip`` (zlib), ISA-L's ``isal.igzip``
(PyPI: ``isal``) and zlib-ng's ``zlib_ng.gzip_ng`` (PyPI: ``zlib-ng``), the same file,
interleaved, min/median/max; the instructions each takes (valgrind), which a shared
machine does not move; and ``spamdrill logs`` on the same ``.gz`` in the same rounds, so
decompression's share of a run is measured, not estimated.

    python benchmarks/logs_gzip.py [--mb 100] [--rounds 5] [--no-instructions]

Decides whether ``spamdrill logs`` should decompress through a faster inflater: only if it
wins by more than the noise, on the share of a run that decompression takes.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from logs_instructions import instructions
from logs_throughput import ROOT, generate, timed

READ = """
import sys, time
from {module} import {cls} as G
n = 0
t = time.process_time()
try:
    with G(sys.argv[1]) as fh:
        while data := fh.read1(1 << 20):
            n += len(data)
except Exception as exc:
    n = -n - 1  # what came before the error, marked as cut short
print(n, time.process_time() - t)
"""
WAYS = {"zlib (gzip.GzipFile)": ("gzip", "GzipFile"),
        "ISA-L (isal.igzip.IGzipFile)": ("isal.igzip", "IGzipFile"),
        "zlib-ng (zlib_ng.gzip_ng.GzipFile)": ("zlib_ng.gzip_ng", "GzipFile")}
LOGS = "spamdrill logs on the .gz"


def _read(name: str, path: Path, cpu: str) -> tuple[int, float]:
    """Bytes one way reads from ``path`` (negative: -(bytes before its error) - 1), and the
    CPU seconds of its reading loop (the interpreter's start-up left out)."""
    module, cls = WAYS[name]
    _, _, out = timed([sys.executable, "-c", READ.format(module=module, cls=cls), str(path)],
                      cpu)
    n, secs = out.split()
    return int(n), float(secs)


def _cpu(argv: list[str], cpu: str) -> float:
    """User + system seconds of a command on one core (GNU time)."""
    done = subprocess.run(["/usr/bin/time", "-f", "%U %S", "taskset", "-c", cpu, *argv],
                          capture_output=True, text=True, check=True)
    user, system = done.stderr.split()[-2:]
    return float(user) + float(system)


def _damaged(packed: Path, work: Path, cpu: str) -> None:
    """What each way reads before the damage in a cut ``.gz`` (a log copied while gzip
    wrote it) and in one whose second member is not deflate data: ``spamdrill logs``
    keeps every line before the damage, so a way that gives other bytes there would
    change its documents."""
    data = packed.read_bytes()
    cases = {"cut in half": data[: len(data) // 2],
             "a bad second member": data + b"\x1f\x8b\x08\x00\0\0\0\0\0\xff"
                                    + b"\xff" * 64}
    for case, raw in cases.items():
        path = work / "damaged.log.gz"
        path.write_bytes(raw)
        got = {name: -_read(name, path, cpu)[0] - 1 for name in WAYS}
        ref = got["zlib (gzip.GzipFile)"]
        print(f"  {case}: bytes before the error " + ", ".join(
            f"{name.split()[0]} {n:,}" + ("" if n == ref else f" ({n - ref:+,})")
            for name, n in got.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", default="1")
    ap.add_argument("--no-instructions", action="store_true",
                    help="skip valgrind's counts (minutes on a loaded machine)")
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", "")
    logs = [sys.executable, "-m", "spamdrill", "logs", "--json", "-", "--tz", "UTC",
            "--year", "2026"]
    work = Path(tempfile.mkdtemp(prefix="spamdrill-gzbench-"))
    try:
        log = work / "mail.log"
        lines, _ = generate(log, args.mb / 1000, 0, 60)
        packed = work / "mail.log.gz"
        with open(log, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        size = log.stat().st_size
        print(f"{size / 1e6:.0f} MB, {lines:,} lines; gzipped {packed.stat().st_size / 1e6:.0f}"
              f" MB; load average {os.getloadavg()[0]:.1f}")
        cpus: dict[str, list[float]] = {name: [] for name in [*WAYS, LOGS]}
        for n in range(args.rounds):
            names = [*WAYS, LOGS] if n % 2 == 0 else [LOGS, *list(WAYS)[::-1]]
            for name in names:
                if name == LOGS:  # user + sys of the whole run, start-up included
                    cpus[name].append(_cpu([*logs, str(packed)], args.cpu))
                    continue
                got, cpu = _read(name, packed, args.cpu)
                assert got == size, (name, got)
                cpus[name].append(cpu)
        small = work / "small.log.gz"
        small.write_bytes(gzip.compress(b"x\n"))
        run = statistics.median(cpus[LOGS])
        print(f"  {LOGS}: {run:.1f} CPU s (median), {lines / run:,.0f} lines per CPU second")
        for name, (module, cls) in WAYS.items():
            code = READ.format(module=module, cls=cls)
            per_line = "" if args.no_instructions else (
                f", {(instructions(code, packed) - instructions(code, small)) / lines:6,.0f}"
                " instructions/line")
            mbs = sorted(size / 1e6 / c for c in cpus[name])
            share = statistics.median(cpus[name]) / run
            print(f"  {name:36} {mbs[0]:6.0f} / {statistics.median(mbs):6.0f} / {mbs[-1]:6.0f}"
                  f" MB per CPU second (min/median/max); {share:.1%} of the run's CPU time"
                  f"{per_line}")
        _damaged(packed, work, args.cpu)
        print(f"  load average {os.getloadavg()[0]:.1f} after")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
