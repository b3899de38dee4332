"""This machine's scan time, measured on the lab before a calibrated drill: a few messages,
one after another, through real spamc to the lab's spamd, timed whole (process start-up
included, as each drill message pays it). Bounds and counts that depend on the machine's
speed derive from it (``checks.FitsCapacity``, ``load.fill``), instead of constants that
held on one machine only."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import time
from collections.abc import Callable

from spamdrill import corpus
from spamdrill.budget import spamc as spamc_model
from spamdrill.drills.targets import new_seed, spamc_binary
from spamdrill.evidence import Calibration
from spamdrill.lab.state import LabState

WARMUP, SAMPLES = 1, 5


def measure(state: LabState, samples: int = SAMPLES) -> Calibration:
    """The median of ``samples`` scans after ``WARMUP`` (a cold child, an empty Bayes)."""
    ep, user = state.spamd, next(iter(state.users))
    argv = state.client_argv([spamc_binary(), "-d", ep.host, "-p", str(ep.port), "-t", "120",
                              "-u", user])
    seed = new_seed()
    times = []
    for i in range(WARMUP + samples):
        t0 = time.monotonic()
        subprocess.run(argv, input=corpus.ham(seed * 100 + i), capture_output=True,
                       timeout=180, check=False)
        times.append(time.monotonic() - t0)
    kept = tuple(times[WARMUP:])
    return Calibration(statistics.median(kept), kept, effective_cores())


def effective_cores() -> float:
    """The CPUs this process may use: its affinity, less a CPU quota on its cgroup (v1
    ``cpu.cfs_quota_us``/``cfs_period_us``, v2 ``cpu.max``), as a container or a slice
    limits it. ``os.cpu_count()`` counts the machine's, which a quota does not change."""
    cores = float(len(os.sched_getaffinity(0)) or os.cpu_count() or 1)
    quota = cgroup_quota(_read("/proc/self/cgroup"), _read)
    return min(cores, quota) if quota else cores


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cgroup_quota(proc_cgroup: str, read: Callable[[str], str]) -> float | None:
    """The CPU quota in CPUs of the cgroup ``/proc/self/cgroup`` names (sans-IO but for
    ``read``), or None when there is none."""
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "" or "cpu" in controllers.split(","):
            if controllers == "":  # v2: the unified hierarchy
                text = read(f"/sys/fs/cgroup{path}/cpu.max").split()
                if len(text) == 2 and text[0] != "max":
                    return int(text[0]) / int(text[1])
                continue
            base = f"/sys/fs/cgroup/cpu{path}"
            quota, period = read(f"{base}/cpu.cfs_quota_us"), read(f"{base}/cpu.cfs_period_us")
            if quota.strip().lstrip("-").isdigit() and int(quota) > 0 and period.strip():
                return int(quota) / int(period)
    return None


def fill_count(fill: float, spamc_args: list[str], cal: Calibration) -> int:
    """``fill`` times as many messages as one child scans within spamc's -t."""
    t = spamc_model.parse_args(spamc_args).timeout
    return max(1, min(10000, math.ceil(fill * t / cal.scan_s)))
