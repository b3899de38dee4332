"""Benchmark: reading a gzipped mail log a block at a time (what ``reader.blocks`` asks of
it: ``read1`` of a megabyte), through Python's ``gzip`` (zlib) and through ISA-L's
``isal.igzip`` (PyPI: ``isal``), the same file, interleaved, min/median/max; and the
instructions each takes (valgrind), which a shared machine does not move.

    python benchmarks/logs_gzip.py [--mb 100] [--rounds 5]

Decides whether ``spamdrill logs`` should decompress through ISA-L: only if it wins by
more than the noise, on the share of a run that decompression takes.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from logs_instructions import instructions
from logs_throughput import generate, timed

READ = """
import sys
from {module} import {cls} as G
n = 0
with G(sys.argv[1]) as fh:
    while data := fh.read1(1 << 20):
        n += len(data)
print(n)
"""
WAYS = {"zlib (gzip.GzipFile)": ("gzip", "GzipFile"),
        "ISA-L (isal.igzip.IGzipFile)": ("isal.igzip", "IGzipFile")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", default="1")
    args = ap.parse_args()
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
        walls: dict[str, list[float]] = {name: [] for name in WAYS}
        for n in range(args.rounds):
            names = list(WAYS) if n % 2 == 0 else list(WAYS)[::-1]
            for name in names:
                module, cls = WAYS[name]
                wall, _, out = timed([sys.executable, "-c", READ.format(module=module, cls=cls),
                                      str(packed)], args.cpu)
                assert int(out) == size, (name, out)
                walls[name].append(wall)
        small = work / "small.log.gz"
        small.write_bytes(gzip.compress(b"x\n"))
        for name, (module, cls) in WAYS.items():
            code = READ.format(module=module, cls=cls)
            per_line = (instructions(code, packed) - instructions(code, small)) / lines
            mbs = sorted(size / 1e6 / w for w in walls[name])
            print(f"  {name:30} {mbs[0]:7.0f} / {statistics.median(mbs):7.0f} / {mbs[-1]:7.0f}"
                  f" MB/s (min/median/max), {per_line:6,.0f} instructions/line")
        print(f"  load average {os.getloadavg()[0]:.1f} after")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
