"""rspamd's budget against the lab: the time rspamd answers a scan while its Redis is frozen,
predicted (``budget.rspamd``: task_timeout + 2 x Redis's timeout) and measured (the
``redis-frozen`` drill, rspamc -t 20, at production timings), for several settings.

Measured on a 2-core machine (2026-12-07): 8 s + 1 s -> 10.0 s (Debian's defaults),
8 s + 0.5 s -> 9.01-9.04 s, 8 s + 3 s -> 14.01-14.03 s, 4 s + 1 s -> 6.01-6.02 s; with
soft_reject_on_timeout (``redis-frozen-soft-reject``), 8 s + 1 s -> 10.01-10.04 s. A
dropped link to Redis (``redis-dropped``, the fault proxy between rspamd and Redis) is a
frozen Redis to rspamd: 8 s + 1 s -> 10.04-10.07 s (the drill's own run, 2026-12-07).

    PYTHONPATH=src python3 benchmarks/rspamd_task_timeout.py   (about a minute each)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from spamdrill.budget.rspamd import RspamdSetup
from spamdrill.drills import runner
from spamdrill.drills.scenario import load_all
from spamdrill.lab.config import LabConfig, RspamdSettings

SETTINGS = ((8.0, 1.0), (8.0, 0.5), (8.0, 3.0), (4.0, 1.0))  # task_timeout, redis timeout
SOFT = "redis-frozen-soft-reject"  # Debian's timeouts, soft_reject_on_timeout = true
DROPPED = "redis-dropped"  # Debian's timeouts, the link to Redis dropping everything


def main() -> None:
    drills = load_all()
    runs = [(drills["redis-frozen"], task, redis) for task, redis in SETTINGS]
    for drill, task, redis in [*runs, (drills[SOFT], 8.0, 1.0), (drills[DROPPED], 8.0, 1.0)]:
        predicted = RspamdSetup(task_timeout=task, redis_timeout=redis).answer_s
        # the drill's own [lab.rspamd] (soft_reject_on_timeout) merges over this base
        base = LabConfig(rspamd=RspamdSettings(enabled=True, task_timeout=task,
                                               redis_timeout=redis))
        with tempfile.TemporaryDirectory() as tmp:
            [r] = runner.run_scenario(drill, scale=1.0, base=base, workdir=Path(tmp))
        times = sorted(m.seconds for m in r.history.messages if m.seconds is not None)
        print(f"{drill.name}: task_timeout {task:g} s, Redis {redis:g} s: predicted "
              f"{predicted:.2f} s, measured {times[0]:.2f}-{times[-1]:.2f} s ({r.verdict})")


if __name__ == "__main__":
    main()
