"""Floods beyond one machine, on Locust's master and workers.

Locust (2.x, ``locust/runners.py``) gives the parts a load tool's users already know: a
``MasterRunner`` that workers find over ZeroMQ (``client_ready``, then a heartbeat a second;
a worker silent for ``HEARTBEAT_LIVENESS`` beats is set ``missing``), custom messages both
ways (``runner.register_message(type, listener)`` / ``runner.send_message(type, data,
client_id)``), and request statistics that workers report to the master every
``WORKER_REPORT_INTERVAL`` seconds, shown live by its web UI or written as headless CSV
(``stats.StatsCSVFileWriter``). spamdrill uses exactly those and no Locust ``User``: a
message is not a user's task but one real spamc, held by spamdrill's stdin barrier.

Processes, and why each is its own: importing ``locust`` monkey-patches the interpreter
with gevent (``locust/__init__.py``: ``monkey.patch_all()``), which takes ``select.epoll``
away and turns threads into greenlets -- the local load's reaper and release loop depend
on both. So the command (``spamdrill flood``) stays unpatched and owns the lab; it starts
the Locust master (``dist.master``) as a child; every Locust worker (``dist.worker``, a
process of its own, as Locust's docs ask for workers) starts one unpatched *shot*
(``dist.shot``) that runs ``load.spamc`` itself. Sans-IO parts: ``plan`` (who sends what,
the target rules a worker enforces), ``clock`` (clock offsets, the release time, skew),
``tally`` (what came back, and what is lost).
"""

from __future__ import annotations

import importlib.util

from spamdrill.errors import SpamdrillError

INSTALL_HINT = "install the dist extra: pip install 'spamdrill[dist]' (scripts/setup.sh does)"


def require_locust() -> None:
    """One line, not a traceback, when Locust is not installed (it is an optional extra:
    gevent, ZeroMQ and Flask are more than a local flood needs)."""
    if importlib.util.find_spec("locust") is None:
        raise SpamdrillError("distributed floods (--workers, --master, --worker) need Locust",
                             INSTALL_HINT)
