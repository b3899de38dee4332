"""Benchmark: ``spamdrill logs --jobs N`` on the logs of several hosts against ``--jobs 1``
(wall time, and peak memory of the whole process tree: the parent and every worker).

Each host's log is ``logs_throughput.py``'s generated mix (the fixture's lines repeated
with fresh queue ids, Message-IDs, pids and times), its host names renamed per host
(``mx1`` -> ``mxN``, ``spamd1`` -> ``spamdN``). Memory is sampled from /proc every 20 ms
over the process tree (RSS summed: what the machine must hold at once) and per process
(the largest one). The documents of both runs are compared.

    python benchmarks/logs_jobs.py [--mb 20] [--hosts 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from logs_throughput import generate


def _tree(root: int) -> list[int]:
    """The pids of ``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _rss(pid: int) -> int:
    """Resident KB of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(argv: list[str]) -> tuple[float, int, int, bytes]:
    """Wall seconds, peak tree RSS (KB), peak single-process RSS (KB), stdout."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        tree = one = 0
        while proc.poll() is None:
            sizes = [_rss(p) for p in _tree(proc.pid)]
            tree, one = max(tree, sum(sizes)), max([one, *sizes])
            time.sleep(0.02)
        wall = time.monotonic() - t0
        out.seek(0)
        return wall, tree, one, out.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--mb", type=float, default=20.0, help="each host's log")
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp) / "base.log"
        lines, _ = generate(base, args.mb / 1000, 0, 60)
        text = base.read_text()
        base.unlink()
        paths = []
        for n in range(1, args.hosts + 1):
            path = Path(tmp) / f"mx{n}.log"
            path.write_text(text.replace(" mx1 ", f" mx{n} ").replace(" spamd1 ",
                                                                      f" spamd{n} "))
            paths.append(str(path))
        del text
        cmd = [sys.executable, "-m", "spamdrill", "logs", "--json", "-", "--tz", "UTC"]
        print(f"{args.hosts} hosts x {args.mb:g} MB ({lines:,} lines each)")
        wall, tree, one, _ = run([*cmd, paths[0]])
        print(f"one host alone: {wall:6.1f} s, {lines / wall:9,.0f} lines/s; peak RSS "
              f"{tree / 1024:5.0f} MB")
        docs = []
        for jobs in (1, args.jobs, 1, args.jobs):
            wall, tree, one, doc = run([*cmd, "--jobs", str(jobs), *paths])
            docs.append(doc)
            print(f"--jobs {jobs}: {wall:6.1f} s, {lines * args.hosts / wall:9,.0f} lines/s; "
                  f"peak RSS {tree / 1024:5.0f} MB all processes, {one / 1024:5.0f} MB the "
                  "largest")
        print("documents the same:", len(set(docs)) == 1)


if __name__ == "__main__":
    main()
