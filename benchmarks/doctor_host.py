"""spamdrill doctor on a host: wall seconds and peak RSS for a generated mail log (the
logs benchmark's generator: ordinary mail with the whole fixture's incidents between)
plus the field report's configs (/etc), the wrapper measured in its sandbox and the
budget run again on the changed copies.

    python3 benchmarks/doctor_host.py --gb 0.1   # the figure in benchmarks/README.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import logs_throughput as lt

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--gb", type=float, default=0.1)
    ap.add_argument("--incident-every", type=int, default=60)
    ap.add_argument("--cpu", default="1", help="the core to pin the command to")
    ap.add_argument("--dir", default="/tmp")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        log = Path(tmp) / "mail.log"
        lines, bad = lt.generate(log, a.gb, 0, a.incident_every)
        size = log.stat().st_size
        argv = [sys.executable, "-m", "spamdrill", "doctor", "--etc",
                str(ROOT / "examples/field-report"), "--tz", "UTC", "--year", "2026",
                "--json", str(Path(tmp) / "doctor.json"), str(log)]
        wall, rss, _ = lt.timed(argv, a.cpu)
    print(f"doctor: {size / 1e6:.0f} MB, {lines} lines ({bad} in incidents): "
          f"{wall:.1f} s, {lines / wall:,.0f} lines/s, peak RSS {rss / 1024:.0f} MB; "
          f"1 GB at this rate: {wall * 1e9 / size:.0f} s")


if __name__ == "__main__":
    main()
