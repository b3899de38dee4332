"""Reliability: interrupt `spamdrill run` at random moments (SIGINT, SIGTERM, SIGKILL) and
check that nothing remains: no lab process (the database proxy included), no frozen
database, no drill lab directory, no network namespace (nor the nftables rules and veth
links that live in them).

    python benchmarks/interrupt_run.py [--times 20] [--seed 1]

After SIGINT and SIGTERM the run itself must heal and clean up. After SIGKILL nothing can
run in the killed process, so the documented recovery is run first: `spamdrill lab down
--all` (every later `spamdrill run` also cleans labs whose owner is gone). Locks need no
recovery: they belong to the killed process's connections, which MariaDB drops.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spamdrill.lab import lab as lab_ops

SCENARIOS = ["db-frozen", "db-read-lock", "db-write-lock", "dns-dead", "spamd-down",
             "spamd-stopping", "db-refused", "db-slow-link", "net-slow"]
if os.geteuid() == 0:  # hosts in namespaces, nftables rules in them
    SCENARIOS += ["db-dropped", "backlog-full", "spamd-unreachable"]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


def leftovers() -> list[str]:
    """Processes of drill labs (by their paths), stopped mariadbd, drill lab states."""
    found = []
    base = str(lab_ops.drill_labs_dir())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if stat in ("Z", "X"):
            continue
        if base in cmd:
            found.append(f"pid {entry.name} ({stat}): {cmd[:80]}")
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"namespace left: {line.split()[0]}" for line in spaces.splitlines()
              if line.startswith("spamdrill-")]
    d = Path(base)
    if d.is_dir():
        found += [f"lab left: {p.name}" for p in d.iterdir()
                  if lab_ops.LabState.load(lab_ops.Layout(p)) is not None]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--times", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results = tempfile.mkdtemp(prefix="spamdrill-interrupt-")
    clean = 0
    for i in range(args.times):
        scenario, sig = rng.choice(SCENARIOS), rng.choice(SIGNALS)
        delay = rng.uniform(0.3, 6.0)
        proc = subprocess.Popen([sys.executable, "-m", "spamdrill", "run", scenario,
                                 "--results-dir", results], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)  # the random moment itself
        finished_first = proc.poll() is not None
        if not finished_first:
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if sig == signal.SIGKILL:
            subprocess.run([sys.executable, "-m", "spamdrill", "lab", "down", "--all"],
                           capture_output=True, timeout=120)
        left = leftovers()
        clean += not left
        print(f"{i + 1:2d} {scenario:15s} {sig.name:8s} at {delay:4.1f} s"
              f"{' (had finished)' if finished_first else ''}: "
              f"{'clean' if not left else 'LEFT: ' + '; '.join(left[:3])}", flush=True)
    print(f"{clean}/{args.times} interruptions left nothing behind")
    sys.exit(0 if clean == args.times else 1)


if __name__ == "__main__":
    main()
