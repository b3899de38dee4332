"""Benchmark: ``spamdrill logs`` on a generated mail log of 1 GB (>= 5 million lines), on one
core, against ``grep -c`` on the same file (goals: >= 300,000 lines/s; <= 300 MB RSS
whatever the log's size).

The log is built from the real fixture lines (tests/data/logs/mail.log: Postfix, maildrop,
spamdrill-deliver and spamd lines of every fault phase), repeated with new queue ids,
Message-IDs, pids and times: each round is the fixture's few minutes shifted later, so the
log covers weeks (and crosses a year end: the classic stamps have no year). It is written
to a temporary file, measured at two sizes (a tenth of it first, to show memory does not
grow with the size), and deleted.

Two Python floors beside ``grep -c``: a loop that only splits each line (what any per-line
Python costs), and the least work a join of these lines takes in Python (split, the
program by syslog tag, queue id -> Message-ID -> the scan's end by Message-ID, a count per
delivery in time; no validation, no detail, no windows): what pure Python can reach here.

    python benchmarks/logs_throughput.py [--gb 1.0] [--min-lines 5000000] [--cpu 1]
                                         [--incident-every 60] [--rounds 3] [--small-only]

``spamdrill logs`` runs twice a round, with the compiled reader loop and with the pure one
(``SPAMDRILL_PURE=1``), in alternating order, and the two documents are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass
class Block:
    """Fixture lines as (seconds from the block's start, format string) with numbered
    slots for queue ids, Message-IDs and pids."""

    lines: list[tuple[float, str]]
    nq: int
    nm: int
    np: int
    span: float


def block(lines: list[str]) -> Block:
    qids: dict[str, int] = {}
    mids: dict[str, int] = {}
    pids: dict[str, int] = {}
    out = []
    first: datetime | None = None
    for line in lines:
        stamp = datetime.strptime(f"2026 {' '.join(line[:15].split())}", "%Y %b %d %H:%M:%S")
        first = first or stamp
        rest = line[16:].replace("{", "{{").replace("}", "}}")
        rest = _PID.sub(lambda m: "[" + _slot("p", pids, m.group(1)) + "]", rest)
        rest = _QID.sub(lambda m: _slot("q", qids, m.group(0)), rest)
        rest = _MID.sub(lambda m: "<" + _slot("m", mids, m.group(1)) + "@", rest)
        out.append(((stamp - first).total_seconds(), rest))
    return Block(out, len(qids), len(mids), len(pids), out[-1][0] + 10.0)


def blocks() -> tuple[Block, Block]:
    """The normal phase's lines (ordinary mail), and the whole fixture (every fault)."""
    lines = FIXTURE.read_text().splitlines()
    manifest = json.loads((FIXTURE.parent / "raw" / "manifest.json").read_text())

    def first(phase: str) -> int:
        qid = manifest[phase][0]["queue_id"]
        return next(i for i, line in enumerate(lines) if qid in line)

    return block(lines[first("normal"):first("slow-first")]), block(lines)


def generate(path: Path, gb: float, min_lines: int, incident_every: int) -> tuple[int, int]:
    """Rounds of ordinary mail with every ``incident_every``-th round the whole fixture;
    returns (lines, lines of incidents)."""
    normal, incident = blocks()
    target = int(gb * 1e9)
    stamps: dict[int, str] = {}
    written = count = bad = rnd = 0
    at = 0.0
    with path.open("w") as fh:
        while written < target or count < min_lines:
            b = incident if incident_every and rnd % incident_every == 0 else normal
            q = [f"{(0x1000000000 + rnd * 7919 + i * 104729) & 0xFFFFFFFFFFF:011X}"
                 for i in range(b.nq)]
            m = [f"gen{rnd}x{i}-{rnd}-r" for i in range(b.nm)]
            p = [str(1000 + (rnd * 37 + i * 101) % 30000) for i in range(b.np)]
            chunk = []
            for offset, fmt in b.lines:
                sec = int(at + offset)
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
            bad += len(chunk) if b is incident else 0
            at += b.span
            rnd += 1
    return count, bad


def timed(argv: list[str], cpu: str | None,
          env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KB, GNU time) and stdout of one command on one core."""
    pin = ["taskset", "-c", cpu] if cpu is not None and shutil.which("taskset") else []
    gnu = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.monotonic()
    done = subprocess.run([*gnu, *pin, *argv], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    wall = time.monotonic() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed: {done.stderr[-400:]}")
    rss = int(done.stderr.strip().splitlines()[-1]) if gnu else 0
    return wall, rss, done.stdout


PY_FLOOR = """
import sys
seen = {}
n = 0
for line in open(sys.argv[1], errors="replace"):
    parts = line.split(None, 5)
    if len(parts) == 6:
        seen[parts[4]] = line[:15]
    n += 1
print(n)
"""


PY_JOIN_FLOOR = """
import sys
from collections import deque
kinds, mids, scans, by_mid, pending = {}, {}, {}, {}, deque()
n = fine = other = 0
prev, ts, rest = "\\0", 0, ""
with open(sys.argv[1], "rb") as fh:
    while block := fh.read1(1 << 20):
        lines = (rest + block.decode("utf-8", "replace")).split("\\n")
        rest = lines.pop()
        for line in lines:
            n += 1
            parts = line.split(None, 5)
            if len(parts) != 6:
                continue
            if not line.startswith(prev):
                prev, ts = line[:15], n
            kind = kinds.get(parts[4])
            if kind is None:
                prog, _, pid = parts[4].partition("[")
                kind = kinds[parts[4]] = (prog.rsplit("/", 1)[-1], pid[:-2])
            prog, pid = kind
            msg = parts[5]
            if prog == "spamd":
                if msg.startswith("spamd: connection"):
                    scans[pid] = [ts, "", 0]
                elif msg.startswith("spamd: processing") and pid in scans:
                    scans[pid][1] = msg[26:msg.find(" ", 26)]
                elif msg.startswith("spamd: result") and pid in scans:
                    scan = scans.pop(pid)
                    scan[2] = ts
                    by_mid[scan[1]] = scan
                continue
            qid, sep, body = msg.partition(": ")
            if not sep:
                continue
            if prog == "pipe":
                fields = body.split(", ")
                if len(fields) >= 6:
                    pending.append((ts, qid, fields[5][7:11]))
            elif prog == "cleanup" and body.startswith("message-id="):
                mids[qid] = body[11:]
            while pending and pending[0][0] + 330 < ts:
                end, qid, status = pending.popleft()
                scan = by_mid.pop(mids.pop(qid, ""), None)
                if status == "sent" and scan is not None and scan[2] <= end + 1:
                    fine += 1
                else:
                    other += 1
print(n, fine, other)
"""


def _spread(rates: list[float]) -> str:
    """min / median / max of a list of lines/s."""
    return " / ".join(f"{r:,.0f}" for r in (min(rates), statistics.median(rates),
                                            max(rates)))


PATHS = (("compiled", ""), ("pure", "1"))  # SPAMDRILL_PURE for each reader loop


def measure(path: Path, lines: int, cpu: str | None, rounds: int) -> dict[str, float]:
    """Every command ``rounds`` times, interleaved (grep, the floors, then both reader
    loops in an order that alternates), so the machine's load falls on all alike."""
    loads = [os.getloadavg()[0]]
    cmd = [sys.executable, "-m", "spamdrill", "logs", "--json", "-", "--tz", "UTC",
           "--year", "2026", str(path)]
    walls: dict[str, list[float]] = {}
    rss: dict[str, int] = {}
    docs: dict[str, str] = {}
    g_out = ""
    for n in range(rounds):
        runs: list[tuple[str, list[str], dict[str, str] | None]] = [
            ("grep -c status=", ["grep", "-c", "status=", str(path)], None),
            ("python: split each line", [sys.executable, "-c", PY_FLOOR, str(path)], None),
            ("python: least-work join", [sys.executable, "-c", PY_JOIN_FLOOR, str(path)],
             None)]
        order = PATHS if n % 2 == 0 else PATHS[::-1]
        runs += [(f"spamdrill logs, {name}", cmd, {"SPAMDRILL_PURE": pure})
                 for name, pure in order]
        for name, argv, env in runs:
            wall, peak, out = timed(argv, cpu, env)
            walls.setdefault(name, []).append(wall)
            rss[name] = max(rss.get(name, 0), peak)
            if name.startswith("spamdrill"):
                docs[name] = out
            elif name.startswith("grep"):
                g_out = out
        loads.append(os.getloadavg()[0])
    doc = json.loads(docs["spamdrill logs, compiled"])
    what = {"grep -c status=": f"{g_out.strip()} matches",
            "python: split each line": "the fastest any Python loop goes",
            "python: least-work join": "what pure Python can reach here",
            "spamdrill logs, compiled": f"{doc['totals']['deliveries']:,} deliveries, "
                                        f"{doc['totals']['scans']:,} scans",
            "spamdrill logs, pure": "SPAMDRILL_PURE=1"}
    rates = {name: [lines / w for w in ws] for name, ws in walls.items()}
    print(f"  lines/s over {rounds} rounds, min / median / max; peak RSS")
    for name, rs in rates.items():
        print(f"  {name:26} {_spread(rs):>32}  {rss[name] / 1024:6.1f} MB  ({what[name]})")
    same = docs["spamdrill logs, compiled"] == docs["spamdrill logs, pure"]
    ours = statistics.median(rates["spamdrill logs, compiled"])
    pure = statistics.median(rates["spamdrill logs, pure"])
    floor = statistics.median(rates["python: least-work join"])
    print(f"  medians: compiled {ours / pure:.2f}x the pure loop, {ours / floor:.0%} of the "
          f"least-work join; documents {'the same' if same else 'DIFFER'}; load average "
          + ", ".join(f"{x:.1f}" for x in loads))
    print(f"  goals: >= 300,000 lines/s: {'met' if ours >= 300_000 else 'NOT met'} "
          f"({ours / 300_000:.0%}); <= 300 MB: "
          f"{'met' if rss['spamdrill logs, compiled'] <= 300 * 1024 else 'NOT met'} "
          f"({rss['spamdrill logs, compiled'] / 1024:.0f} MB)", flush=True)
    return {"rate": ours, "rss_mb": rss["spamdrill logs, compiled"] / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--min-lines", type=int, default=5_000_000)
    ap.add_argument("--incident-every", type=int, default=60,
                    help="one round of the whole fixture (every fault) per N rounds of "
                         "ordinary mail; 1: faults only")
    ap.add_argument("--cpu", default="1", help="the core to pin every command to")
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each command, interleaved")
    ap.add_argument("--small-only", action="store_true", help="only the tenth of --gb")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spamdrill-logbench-", dir=args.dir))
    os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", "")
    try:
        sizes = [(args.gb / 10, args.min_lines // 10), (args.gb, args.min_lines)]
        for gb, min_lines in sizes[:1] if args.small_only else sizes:
            path = work / "mail.log"
            t0 = time.monotonic()
            lines, bad = generate(path, gb, min_lines, args.incident_every)
            print(f"{path.stat().st_size / 1e9:.2f} GB, {lines:,} lines ({bad / lines:.0%} "
                  f"from fault phases), generated in {time.monotonic() - t0:.0f} s",
                  flush=True)
            measure(path, lines, args.cpu, args.rounds)
            path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
