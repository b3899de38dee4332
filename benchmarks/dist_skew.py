"""Benchmark: "3,000 at once" split over W Locust worker processes, against the local load
and the C floor; the master's memory with 30,000 records.

    python benchmarks/dist_skew.py [--count 3000] [--workers 1 2 4] [--memory 30000]
                                   [--alone 1500 750]

Skew, as ``launch_skew.py`` measures it: listeners on loopback (its ``Holder``, SCHED_FIFO
as root) accept and hold every connection and timestamp each accept. For W workers there
are W listeners, one per worker (``launch.Options.targets``), so each worker's own skew
(first to last accept of its spamc) is measured apart, and the whole flood's is first to
last accept over all W, on the machine's one monotonic clock. Also, from the master's
result: each worker's release after the master's chosen instant (goal: <= 5 ms added),
its clock offset, and its own release spread. In the same run: the local load and the
minimal C client (``floor_client.c``) released by the same loader. ``--alone C``: one
worker with C spamc against the local load with C (what each of W machines would send).

Memory (``--memory N``): the Locust master's peak RSS (its own ``ru_maxrss``) with N
records gathered from N / 10,000 workers. The workers here are fakes that answer the plan
with made-up records instead of running spamc (30,000 real spamc on this machine would
measure the machine, not the master); the master's side -- messages, the tally, the
result file -- is the real one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import launch_skew

from spamdrill.dist import launch, plan
from spamdrill.drills.runner import LoadRequest
from spamdrill.drills.targets import AddressTarget, LoadPlan
from spamdrill.drills.timing import Scale
from spamdrill.lab.net import free_port
from spamdrill.load.spamc import LoadResult

MS = 1e6


def _request(count: int, work: Path, args: list[str]) -> LoadRequest:
    return LoadRequest(LoadPlan(count, ("ham",), [0.0] * count, args),
                       AddressTarget("127.0.0.1", 1), None, Scale(1.0), work, 60.0,
                       lambda t0: None, lambda done, total: None)


def distributed(count: int, workers: int, tmp: Path) -> dict[str, Any]:
    """N spamc at once over W local workers, each against its own listener."""
    holders = [launch_skew.Holder(len(part)) for part in plan.split(count, workers)]
    opts = launch.Options(workers, workers, wait_workers_s=120, targets=tuple(
        plan.Target("address", "127.0.0.1", h.port) for h in holders))
    box: list[LoadResult] = []
    load = launch.loader(opts)
    t = threading.Thread(target=lambda: box.append(load(_request(
        count, tmp / f"w{workers}", ["-t", "30"]))))
    t.start()
    got = [h.result() for h in holders]
    for h in holders:
        h.stop()  # spamc now read EOF and fail open
    t.join()
    result = launch.read_result(tmp / f"w{workers}" / "dist" / "result.json")
    doc = _result_doc(tmp / f"w{workers}" / "dist" / "result.json")
    return {"accepted": sum(n for n, _ in got), "own_ms": [s for _, s in got],
            "skew_ms": (max(h.last_ns for h in holders) - min(h.first_ns for h in holders))
            / MS, "late_ms": [w["late_ns"] / MS for w in doc["workers"]],
            "offset_ms": [w["offset_ns"] / MS for w in doc["workers"]],
            "rtt_ms": [w["rtt_ns"] / MS for w in doc["workers"]],
            "release_ms": [w["own_ns"] / MS for w in doc["workers"]],
            "rss_mb": doc["peak_rss_kb"] / 1024, "records": len(result.records)}


def _result_doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


FAKE_WORKER = r"""
import sys, time
from locust.env import Environment
from spamdrill.dist import messages as m, plan, tally
from spamdrill.history import MessageRecord
import msgspec

env = Environment(user_classes=[])
runner = env.create_worker_runner("127.0.0.1", int(sys.argv[1]))
state = {}

def pong(environment, msg, **_):
    runner.send_message(m.PONG, {**msg.data, "peer_ns": time.time_ns(), "host": "fake",
                                 "machine": m.machine_id()})

def on_plan(environment, msg, **_):
    state["share"] = msgspec.convert(msg.data, plan.Share)
    runner.send_message(m.READY, {"pair": [time.monotonic_ns(), time.time_ns()]})

def release(environment, msg, **_):
    share, now = state["share"], time.monotonic_ns()
    records = []
    for i in share.indices:  # what a shot would send: one record per message
        msg_ = plan.message(share, i)
        records.append(tally.to_wire(MessageRecord(
            msg_.id, msg_.kind, len(msg_.data), now, now + 150_000_000, "ham", 0,
            "identified ham (-1.9/5.0)", plan.flags_for(share, i), -1.9)))
    for chunk in tally.chunks(records):
        runner.send_message(m.RECORDS, {"records": chunk})
    runner.send_message(m.DONE, {"released": [now, now], "pair": [now, time.time_ns()]})

runner.register_message(m.PING, pong)
runner.register_message(m.PLAN, on_plan)
runner.register_message(m.RELEASE, release)
runner.send_message(m.HELLO, {})
runner.greenlet.join()
"""


def master_memory(count: int, tmp: Path) -> dict[str, Any]:
    """The master's peak RSS with ``count`` records from fake workers."""
    workers = -(-count // plan.MAX_PER_WORKER)
    opts = launch.Options(workers, 0, port=free_port(), wait_workers_s=60,
                          targets=(plan.Target("address", "127.0.0.1", 9),))
    fakes = [subprocess.Popen([sys.executable, "-c", FAKE_WORKER, str(opts.port)],
                              env=launch.child_env()) for _ in range(workers)]
    try:
        started = time.monotonic()
        result = launch.loader(opts)(_request(count, tmp / "memory", ["-t", "30"]))
        wall = time.monotonic() - started
    finally:
        for f in fakes:
            f.wait(30)
    doc = _result_doc(tmp / "memory" / "dist" / "result.json")
    return {"records": len(result.records), "rss_mb": doc["peak_rss_kb"] / 1024,
            "wall_s": wall, "workers": workers}


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.1f}" if x >= 0.1 else f"{x:.2f}" for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--memory", type=int, default=30000,
                        help="records for the master's memory (0: skip)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the local load and the C floor")
    parser.add_argument("--alone", type=int, nargs="*", default=[],
                        help="counts for one worker alone against the local load of the "
                             "same count (what one machine of several sends), e.g. 1500 750")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each --alone count")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="spamdrill-dist-bench-"))
    try:
        if not args.no_baselines:
            skew, n, _ = launch_skew.spamdrill_load(args.count, tmp)
            print(f"local load: {n}/{args.count} accepted, skew {skew:.1f} ms")
            floor = launch_skew.floor_client(tmp)
            if floor is not None:
                fskew, fn, _ = launch_skew.spamdrill_load(args.count, tmp, floor)
                print(f"floor (C client): {fn}/{args.count} accepted, skew {fskew:.1f} ms")
        for w in args.workers:
            r = distributed(args.count, w, tmp)
            print(f"W={w}: {r['accepted']}/{args.count} accepted, skew {r['skew_ms']:.1f} ms;"
                  f" per worker own skew [{_fmt(r['own_ms'])}] ms; release after the "
                  f"master's instant [{_fmt(r['late_ms'])}] ms (median "
                  f"{statistics.median(r['late_ms']):.2f}); clock offsets "
                  f"[{', '.join(f'{x:+.3f}' for x in r['offset_ms'])}] ms (rtt "
                  f"[{', '.join(f'{x:.2f}' for x in r['rtt_ms'])}]); stdin-close spread "
                  f"[{_fmt(r['release_ms'])}] ms; master RSS {r['rss_mb']:.0f} MB")
        for c in args.alone:
            local, alone, late = [], [], []
            for _ in range(args.repeat):  # interleaved: this machine's noise is ~+/-30 ms
                local.append(launch_skew.spamdrill_load(c, tmp)[0])
                r = distributed(c, 1, tmp)
                alone.append(r["skew_ms"])
                late.append(r["late_ms"][0])
            print(f"{c} alone, {args.repeat} interleaved runs: local load skew [{_fmt(local)}] "
                  f"ms (median {statistics.median(local):.1f}); one worker [{_fmt(alone)}] ms "
                  f"(median {statistics.median(alone):.1f}), released [{_fmt(late)}] ms after "
                  "the master's instant")
        if args.memory:
            r = master_memory(args.memory, tmp)
            print(f"master with {r['records']} records from {r['workers']} (fake) workers: "
                  f"peak RSS {r['rss_mb']:.0f} MB (goal <= 500), {r['wall_s']:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
