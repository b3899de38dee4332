"""When a fault acts (Jepsen's generator, apart from the nemesis that does the acting): a
timeline of inject / observe / lift steps from a ``Schedule`` (sans-IO), and the thread
that runs one fault's timeline on the load's clock.

The load releases messages on its own clock from ``t0``; the nemesis thread sleeps until
``t0 + at`` for each step, so no injection, however slow, delays a release. Injections at
``at == 0`` happen before the first release, so the fault holds for every message. The
history gets one window per time the fault held, opened at its injection and closed at its
lift; a fault still in effect when the load ends is lifted by ``heal``, always.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

from spamdrill.drills.control import LabControl
from spamdrill.drills.nemesis.base import Fault, Schedule
from spamdrill.evidence import FaultReport
from spamdrill.history import FaultWindow

Action = Literal["inject", "observe", "lift"]
FIRST_LOOK_S = 0.5  # drill seconds after an injection: the load has reached the fault
LOOK_EVERY_S = 1.0


@dataclass(frozen=True)
class FaultStep:
    at: float
    action: Action


def timeline(schedule: Schedule, horizon: float = 60.0) -> list[FaultStep]:
    """Every step, in order: each window's injection, looks while it holds (the first
    soon after, then every second, up to ``horizon`` for a fault held to the end), and
    its lift."""
    steps: list[FaultStep] = []
    for start, end in schedule.windows():
        steps.append(FaultStep(start, "inject"))
        stop = end if end is not None else start + horizon
        look = start + FIRST_LOOK_S
        while look < stop:
            steps.append(FaultStep(look, "observe"))
            look += LOOK_EVERY_S
        if end is not None:
            steps.append(FaultStep(end, "lift"))
    order = {"inject": 0, "observe": 1, "lift": 2}
    return sorted(steps, key=lambda s: (s.at, order[s.action]))


class Nemesis:
    """One fault on one lab, run on a timeline; every window recorded."""

    def __init__(self, fault: Fault, schedule: Schedule, ctl: LabControl) -> None:
        self.fault = fault
        self.ctl = ctl
        self.steps = timeline(schedule)
        self.windows: list[FaultWindow] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def before_load(self) -> None:
        """Set up, and inject what must hold from the first message."""
        self.fault.setup(self.ctl)
        while self.steps and self.steps[0].at <= 0 and self.steps[0].action == "inject":
            self._do(self.steps.pop(0).action)

    def start(self, t0: float) -> None:
        """Run the remaining steps on the load's clock (``t0``: its first release)."""
        self._thread = threading.Thread(target=self._run, args=(t0,), name="nemesis",
                                        daemon=True)
        self._thread.start()

    def _run(self, t0: float) -> None:
        for step in self.steps:
            if self._stop.wait(max(0.0, t0 + step.at - time.monotonic())):
                return
            self._do(step.action)

    def _do(self, action: Action) -> None:
        with self._lock:
            try:
                if action == "inject":
                    self.windows.append(FaultWindow(self.fault.name, time.monotonic_ns(),
                                                    None, self.fault.inject(self.ctl)))
                elif action == "observe":
                    self.fault.observe(self.ctl)
                else:
                    self._lift()
            except Exception as exc:  # a fault that fails is evidence
                self.errors.append(f"{action} failed: {exc}")

    def _lift(self) -> None:
        detail = self.fault.lift(self.ctl)
        for w in self.windows:
            if w.end_ns is None:
                w.end_ns = time.monotonic_ns()
                w.detail += f"; {detail}"

    def stop(self) -> None:
        """The load is over: no further step runs."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def heal(self) -> None:
        """Lift whatever still holds (idempotent)."""
        self.stop()
        self._do("lift")

    def evidence(self) -> FaultReport:
        if self.errors:
            return FaultReport(self.fault.name, False, "; ".join(self.errors))
        if not self.windows:
            return FaultReport(self.fault.name, False, "never injected")
        return self.fault.evidence(self.ctl)

    def teardown(self) -> None:
        self.fault.teardown(self.ctl)
