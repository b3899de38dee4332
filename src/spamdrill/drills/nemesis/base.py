"""The fault every nemesis builds on: events in the history, set-up before the load,
actions on the load's clock, a heal that always runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from spamdrill.history import FaultEvent
from spamdrill.load.spamc import Action


@dataclass
class Fault:
    """Base: no fault."""

    name: str = "none"
    events: list[FaultEvent] = field(default_factory=list)

    def before_load(self) -> None:
        """Set-up that must hold before the first message is released."""

    def actions(self) -> list[Action]:
        return []

    def heal(self) -> None:
        """Undo everything; idempotent."""

    def _open(self, detail: str) -> FaultEvent:
        ev = FaultEvent(self.name, time.monotonic_ns(), None, detail)
        self.events.append(ev)
        return ev

    def _close_all(self) -> None:
        now = time.monotonic_ns()
        for ev in self.events:
            if ev.end_ns is None:
                ev.end_ns = now
