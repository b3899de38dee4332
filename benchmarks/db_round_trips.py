"""Benchmark: how many spamd-to-MariaDB round trips one scan makes, by delaying that link.

The lab's TCP fault proxy sits between spamd and MariaDB and holds every chunk ``latency``
seconds each way; a scan's extra wall time divided by ``2 x latency`` is the number of
request/answer exchanges it made with the database. Measured for fresh ham and spam
messages (unique, so Bayes looks up new tokens) with spamc -t 600, so nothing is cut.
Tells a postmaster what each millisecond of round trip to the database costs per message.

    python benchmarks/db_round_trips.py [--latency 0.05 0.1] [--messages 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from msgspec.structs import replace

from spamdrill import corpus
from spamdrill.lab import faults
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig
from spamdrill.lab.state import LabState
from spamdrill.lab.toxics import mode_shape


def scan_seconds(state: LabState, kind: str, seed: int) -> float:
    msg = corpus.make(kind, seed)
    argv = state.client_argv(["spamc", "-d", state.spamd.host, "-p", str(state.spamd.port),
                              "-t", "600", "-u", "alice"])
    t0 = time.monotonic()
    done = subprocess.run(argv, input=msg.data, capture_output=True, timeout=900)
    took = time.monotonic() - t0
    if b"X-Spam-Status" not in done.stdout:
        raise SystemExit(f"a {kind} message came back unscanned: the drill is broken")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--messages", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="spamdrill-bench-", dir="/tmp"))
    base.chmod(0o755)
    config = LabConfig()
    config = replace(config, database=replace(config.database, proxy=True))
    seed = int.from_bytes(os.urandom(3), "big")
    rows = []
    try:
        state = lab_ops.up(base / "lab", config)
        for latency in [0.0, *args.latency]:
            shaped = faults.proxy_shape(state.journal, mode_shape("latency", latency=latency))
            for kind in ("ham", "spam"):
                times = []
                for _ in range(args.messages):
                    seed += 1
                    times.append(scan_seconds(state, kind, seed))
                rows.append({"latency_s": latency, "kind": kind,
                             "median_scan_s": round(statistics.median(times), 3),
                             "max_scan_s": round(max(times), 3)})
            shaped.heal()
    finally:
        lab_ops.down(base / "lab")
        shutil.rmtree(base, ignore_errors=True)
    plain = {r["kind"]: r["median_scan_s"] for r in rows if r["latency_s"] == 0}
    for r in rows:
        if r["latency_s"]:
            extra = r["median_scan_s"] - plain[r["kind"]]
            r["round_trips"] = round(extra / (2 * r["latency_s"]))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
