"""Benchmark: ``spamdrill logs`` on a generated mail log of 1 GB (>= 5 million lines), on one
core, against ``grep -c`` on the same file (goals: >= 300,000 lines/s; <= 300 MB RSS
whatever the log's size).

The log is built from the real fixture lines (tests/data/logs/mail.log: Postfix, maildrop,
spamdrill-deliver and spamd lines of every fault phase), repeated with new queue ids,
Message-IDs, pids and times: each round is the fixture's few minutes shifted later, so the
log covers weeks (and crosses a year end: the classic stamps have no year). It is written
to a temporary file, measured at two sizes (a tenth of it first, to show memory does not
grow with the size), and deleted.

    python benchmarks/logs_throughput.py [--gb 1.0] [--min-lines 5000000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "logs" / "mail.log"
_QID = re.compile(r"\b[0-9A-F]{10,12}\b")
_MID = re.compile(r"<(\w+-\d+-[^<>@\s]+)@")  # the corpus's Message-IDs, not addresses
_PID = re.compile(r"\[(\d+)\]")
START = datetime(2026, 12, 20)  # crosses the year end


def _slot(name: str, table: dict[str, int], value: str) -> str:
    """A numbered format slot (``{q[3]}``) for each distinct value."""
    return "{" + f"{name}[{table.setdefault(value, len(table))}]" + "}"


def template() -> tuple[list[tuple[float, str]], int, int, int, float]:
    """The fixture as (seconds from its start, format string) with numbered slots."""
    qids: dict[str, int] = {}
    mids: dict[str, int] = {}
    pids: dict[str, int] = {}
    out = []
    first: datetime | None = None
    for line in FIXTURE.read_text().splitlines():
        stamp = datetime.strptime(f"2026 {' '.join(line[:15].split())}", "%Y %b %d %H:%M:%S")
        first = first or stamp
        rest = line[16:].replace("{", "{{").replace("}", "}}")
        rest = _PID.sub(lambda m: "[" + _slot("p", pids, m.group(1)) + "]", rest)
        rest = _QID.sub(lambda m: _slot("q", qids, m.group(0)), rest)
        rest = _MID.sub(lambda m: "<" + _slot("m", mids, m.group(1)) + "@", rest)
        out.append(((stamp - first).total_seconds(), rest))
    span = out[-1][0] + 10.0
    return out, len(qids), len(mids), len(pids), span


def generate(path: Path, gb: float, min_lines: int) -> int:
    lines, nq, nm, np_, span = template()
    target = int(gb * 1e9)
    stamps: dict[int, str] = {}
    written = count = 0
    with path.open("w") as fh:
        rnd = 0
        while written < target or count < min_lines:
            base = START + timedelta(seconds=rnd * span)
            q = [f"{(0x1000000000 + rnd * 7919 + i * 104729) & 0xFFFFFFFFFFF:011X}"
                 for i in range(nq)]
            m = [f"gen{rnd}x{i}.r{rnd}" for i in range(nm)]
            p = [str(1000 + (rnd * 37 + i * 101) % 30000) for i in range(np_)]
            chunk = []
            for offset, fmt in lines:
                sec = int((base - START).total_seconds() + offset)
                stamp = stamps.get(sec)
                if stamp is None:
                    t = START + timedelta(seconds=sec)
                    stamp = stamps[sec] = f"{t:%b} {t.day:2d} {t:%H:%M:%S}"
                    if len(stamps) > 100_000:
                        stamps.clear()
                chunk.append(f"{stamp} {fmt.format(q=q, m=m, p=p)}\n")
            data = "".join(chunk)
            fh.write(data)
            written += len(data)
            count += len(chunk)
            rnd += 1
    return count


def timed(argv: list[str], cpu: str | None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KB, GNU time) and stdout of one command on one core."""
    pin = ["taskset", "-c", cpu] if cpu is not None and shutil.which("taskset") else []
    gnu = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.monotonic()
    done = subprocess.run([*gnu, *pin, *argv], capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed: {done.stderr[-400:]}")
    rss = int(done.stderr.strip().splitlines()[-1]) if gnu else 0
    return wall, rss, done.stdout


def measure(path: Path, lines: int, cpu: str | None) -> None:
    size = path.stat().st_size
    g_wall, g_rss, g_out = timed(["grep", "-c", "status=", str(path)], cpu)
    cmd = [sys.executable, "-m", "spamdrill", "logs", "--json", "-", "--tz", "UTC",
           "--year", "2026", str(path)]
    s_wall, s_rss, s_out = timed(cmd, cpu)
    deliveries = s_out.split('"deliveries": ', 2)[1].split(",", 1)[0] if s_out else "?"
    print(f"{size / 1e9:.2f} GB, {lines:,} lines:")
    print(f"  grep -c status=  {g_wall:7.1f} s  {lines / g_wall:12,.0f} lines/s  "
          f"{g_rss / 1024:6.1f} MB  ({g_out.strip()} matches)")
    print(f"  spamdrill logs   {s_wall:7.1f} s  {lines / s_wall:12,.0f} lines/s  "
          f"{s_rss / 1024:6.1f} MB  ({deliveries} delivery attempts)")
    print(f"  spamdrill logs / grep: {s_wall / g_wall:.1f}x the time; goals: >= 300,000 "
          f"lines/s ({'met' if lines / s_wall >= 300_000 else 'NOT met'}), <= 300 MB "
          f"({'met' if s_rss <= 300 * 1024 else 'NOT met'})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--min-lines", type=int, default=5_000_000)
    ap.add_argument("--cpu", default="1", help="the core to pin both commands to")
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spamdrill-logbench-", dir=args.dir))
    os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", "")
    try:
        for gb, min_lines in ((args.gb / 10, args.min_lines // 10), (args.gb, args.min_lines)):
            path = work / "mail.log"
            t0 = time.monotonic()
            lines = generate(path, gb, min_lines)
            print(f"generated {path.stat().st_size / 1e9:.2f} GB ({lines:,} lines) in "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
            measure(path, lines, args.cpu)
            path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
