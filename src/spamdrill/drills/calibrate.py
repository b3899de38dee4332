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
    return Calibration(statistics.median(kept), kept, os.cpu_count() or 1)


def fill_count(fill: float, spamc_args: list[str], cal: Calibration) -> int:
    """``fill`` times as many messages as one child scans within spamc's -t."""
    t = spamc_model.parse_args(spamc_args).timeout
    return max(1, min(10000, math.ceil(fill * t / cal.scan_s)))
