"""Benchmark: ``spamdrill logs`` beside what postmasters run today on the same file in the
same run -- pflogsumm and postfix-logwatch (Debian: ``pflogsumm``; postfix-logwatch ships
inside ``logwatch`` as its ``postfix`` service, run here standalone, as postfix-logwatch
runs) -- each pinned to one core: wall time, CPU time and peak RSS (GNU time).

What each computes, so the speeds are read for what they are:

- pflogsumm: counts (received, delivered, deferred, bounced, rejected), per-hour and
  per-day traffic, per-domain and per-user summaries, the messages' delays, warnings.
- postfix-logwatch: counts of every Postfix event kind, with detail per domain, user and
  reply text.
- spamdrill logs: each message's delivery attempts joined to spamd's scans and maildrop's
  lines, each delivery diagnosed (fate, failure mode, fix), episodes and their suspects.

Each tool's count of delivered messages is read from its output and printed beside the
others: the three read the same deliveries, or the speeds compare nothing.

    python benchmarks/logs_anchors.py [--mb 100] [--rounds 1] [--cpu 1]
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
from pathlib import Path

from logs_throughput import ROOT, generate

LOGWATCH_POSTFIX = "/usr/share/logwatch/scripts/services/postfix"
_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}
_PFLOGSUMM = re.compile(r"^\s*(\d+)([km]?)\s+(received|delivered|deferred|bounced)\b",
                        re.MULTILINE)
_LOGWATCH = re.compile(r"^\s*\S+\s+(Delivered|Deferred|Deferrals|Bounced \(remote\))\s+"
                       r"([\d,]+)\s*$", re.MULTILINE)


def parse_pflogsumm(text: str) -> dict[str, int]:
    """The counts of pflogsumm's "Grand Totals" (the first of each kind): pflogsumm writes
    counts over 512k in units of 1024 (``600k``), so those are approximate."""
    out: dict[str, int] = {}
    for m in _PFLOGSUMM.finditer(text):
        out.setdefault(m.group(3), int(m.group(1)) * _UNITS[m.group(2)])
    return out


def parse_logwatch(text: str) -> dict[str, int]:
    """The counts of postfix-logwatch's summary (its right-hand column, exact), by the
    summary's own names in lower case."""
    out: dict[str, int] = {}
    for m in _LOGWATCH.finditer(text):
        out.setdefault(m.group(1).lower(), int(m.group(2).replace(",", "")))
    return out


def parse_spamdrill(text: str) -> dict[str, int]:
    """The fates of ``spamdrill logs --json``'s deliveries (delivered counts scanned and
    unscanned alike, as the other two count a Postfix ``status=sent``)."""
    fates: dict[str, int] = json.loads(text)["totals"]["fates"]
    delivered = sum(n for fate, n in fates.items() if fate.startswith("delivered"))
    return {"delivered": delivered, **{k: v for k, v in fates.items()
                                       if not k.startswith("delivered")}}


def commands(path: Path) -> dict[str, tuple[list[str], str]]:
    """Each tool's command on ``path`` (through ``sh -c`` only for stdin: the path is ours)."""
    return {
        "pflogsumm": (["pflogsumm", str(path)],
                      "counts, per-hour/day traffic, per-domain and per-user summaries"),
        "postfix-logwatch": (["sh", "-c", 'exec perl "$0" < "$1"', LOGWATCH_POSTFIX,
                              str(path)], "counts of each Postfix event, detail per domain"),
        "spamdrill logs": ([sys.executable, "-m", "spamdrill", "logs", "--json", "-",
                            "--tz", "UTC", "--year", "2026", str(path)],
                           "a join per message (attempts, scans, maildrop) and diagnosis"),
    }


PARSERS = {"pflogsumm": parse_pflogsumm, "postfix-logwatch": parse_logwatch,
           "spamdrill logs": parse_spamdrill}


def timed(argv: list[str], cpu: str) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (user + system: what a busy machine's other work does not
    add), peak RSS (KB) and stdout of one command on one core, by GNU time."""
    done = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "taskset", "-c", cpu,
                           *argv], capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed: {done.stderr[-400:]}")
    wall, user, system, rss = done.stderr.split()[-4:]
    return float(wall), float(user) + float(system), int(rss), done.stdout


def measure(path: Path, lines: int, cpu: str, rounds: int) -> None:
    loads = [os.getloadavg()[0]]
    cmds = commands(path)
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    cpus: dict[str, list[float]] = {name: [] for name in cmds}
    rss: dict[str, int] = dict.fromkeys(cmds, 0)
    counts: dict[str, dict[str, int]] = {}
    for n in range(rounds):
        names = list(cmds) if n % 2 == 0 else list(cmds)[::-1]
        for name in names:
            wall, secs, peak, out = timed(cmds[name][0], cpu)
            walls[name].append(wall)
            cpus[name].append(secs)
            rss[name] = max(rss[name], peak)
            counts[name] = PARSERS[name](out)
            loads.append(os.getloadavg()[0])
    rate = {name: statistics.median(lines / w for w in ws) for name, ws in walls.items()}
    per_cpu = {name: statistics.median(lines / c for c in cs) for name, cs in cpus.items()}
    print(f"  {'':18} {'lines/s':>9} {'per CPU s':>10} {'wall s':>7} {'peak RSS':>9}"
          "  delivered  what it computes   (medians; wall s: the least)")
    for name, (_, what) in cmds.items():
        print(f"  {name:18} {rate[name]:9,.0f} {per_cpu[name]:10,.0f} "
              f"{min(walls[name]):7.1f} {rss[name] / 1024:6.0f} MB  "
              f"{counts[name].get('delivered', -1):9,}  {what}")
    for other in ("pflogsumm", "postfix-logwatch"):
        print(f"  spamdrill logs / {other}: {rate['spamdrill logs'] / rate[other]:.2f}x "
              f"(wall), {per_cpu['spamdrill logs'] / per_cpu[other]:.2f}x (CPU)")
    print("  load average " + ", ".join(f"{x:.1f}" for x in loads), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--incident-every", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=1, help="runs of each tool, interleaved")
    ap.add_argument("--cpu", default="1", help="the core to pin every command to")
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    missing = [p for p in ("pflogsumm", "perl", "taskset") if shutil.which(p) is None]
    missing += [] if Path("/usr/bin/time").exists() else ["GNU time"]
    if missing or not Path(LOGWATCH_POSTFIX).exists():
        raise SystemExit("needs " + ", ".join(missing or ["logwatch"])
                         + " (Debian packages: scripts/setup.sh)")
    os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", "")
    work = Path(tempfile.mkdtemp(prefix="spamdrill-anchors-", dir=args.dir))
    try:
        path = work / "mail.log"
        t0 = time.monotonic()
        lines, bad = generate(path, args.mb / 1000, 0, args.incident_every)
        print(f"{path.stat().st_size / 1e6:.0f} MB, {lines:,} lines ({bad / lines:.0%} from "
              f"fault phases), generated in {time.monotonic() - t0:.0f} s", flush=True)
        measure(path, lines, args.cpu, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
