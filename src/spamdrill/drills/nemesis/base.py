"""What every fault is: a spec (typed, validated when its scenario is parsed) that builds a
``Fault``, and the fault itself, which only injects and lifts (Jepsen's nemesis,
``jepsen/nemesis.clj``); when it does so is the schedule's business
(``spamdrill.drills.nemesis.timeline``, Jepsen's generator). Each fault also says whether it took
effect, with what showed it (``evidence``): a drill whose fault left no trace is an
``error``, never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import msgspec

from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.timing import Scale
from spamdrill.evidence import NOT_OCCURRED, FaultReport
from spamdrill.vocab import Mode

Seconds = Annotated[float, msgspec.Meta(ge=0)]


class Schedule(msgspec.Struct, frozen=True):
    """When, in drill seconds from the first release: injected at ``at`` (0: before the
    first message, so it holds for every one), lifted ``duration`` later (None: held to
    the end of the load; 0: lifted as the load starts), again every ``every`` seconds,
    ``times`` times in all."""

    at: float = 0.0
    duration: float | None = None
    every: float | None = None
    times: int = 1

    def windows(self) -> list[tuple[float, float | None]]:
        """(inject, lift) drill seconds of each time the fault holds."""
        step = self.every or 0.0
        return [(self.at + i * step, None if self.duration is None
                 else self.at + i * step + self.duration) for i in range(self.times)]


class FaultSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                tag_field="kind"):
    """Base of every fault spec: the schedule fields, in production seconds."""

    at: Seconds = 0.0
    duration: Seconds | None = None
    every: Annotated[float, msgspec.Meta(gt=0)] | None = None
    times: Annotated[int, msgspec.Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        if self.times > 1 and self.every is None:
            raise ValueError("a fault repeated (times > 1) needs 'every'")
        if self.every is not None and self.duration is not None and \
                self.duration >= self.every:
            raise ValueError("'duration' must be shorter than 'every'")

    @property
    def kind(self) -> str:
        return str(type(self).__struct_config__.tag)

    def schedule(self, scale: Scale) -> Schedule:
        return Schedule(scale.seconds(self.at), scale.maybe(self.duration),
                        scale.maybe(self.every), self.times)

    def failure_mode(self) -> Mode | None:
        """The failure mode this fault stands for, where one fits."""
        return None

    def build(self, scale: Scale) -> Fault:
        raise NotImplementedError

    @property
    def needs_hosts(self) -> bool:
        """Needs the multi-host topology (network namespaces, nftables: root)."""
        return False


def until(cond: Callable[[], bool], within: float) -> bool:
    """Poll ``cond`` every 20 ms until it holds or ``within`` seconds pass: a signal is
    acted on when its target next runs, so the effect of a kill is not there at once."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


class Fault:
    """Base: inject, lift (idempotent), observe while it holds, evidence afterwards."""

    name = "none"

    def setup(self, ctl: LabControl) -> None:
        """Before the load; nothing in effect yet (a proxy starts passing traffic)."""

    def inject(self, ctl: LabControl) -> str:
        raise NotImplementedError

    def lift(self, ctl: LabControl) -> str:
        """Undo ``inject``; lifting what is not in effect does nothing."""
        raise NotImplementedError

    def observe(self, ctl: LabControl) -> None:
        """Look at the lab while the fault holds (for ``evidence``)."""

    def evidence(self, ctl: LabControl) -> FaultReport:
        raise NotImplementedError

    def teardown(self, ctl: LabControl) -> None:
        """Release what ``setup`` took; idempotent."""

    def notes(self) -> list[str]:
        """What the fault saw that a report should quote."""
        return []

    def marks(self) -> dict[str, int]:
        """Instants the fault saw (monotonic ns) that checks may judge against."""
        return {}

    def report(self, took_effect: bool, detail: str) -> FaultReport:
        return FaultReport(self.name, took_effect, detail)


class Stopped(Fault):
    """A server stopped (SIGTERM, as an init script does; journaled) at injection and
    started again on lift, not awaited: a drill sends mail while it comes up. Its port
    refusing connections once it was stopped is the evidence. A server's fault names it
    and says how to stop, start and probe it."""

    server = ""  # as the fault's lines name it
    restarting = "starting again"
    missed = NOT_OCCURRED  # what the evidence of a stop that did not take starts with
    # seconds for the port to refuse once the server's main process is gone: its children
    # hold the listening socket until they have died too (slower on a loaded machine)
    REFUSED_WITHIN = 10.0

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._refused = False
        self._back = False

    def stop(self, ctl: LabControl) -> Undo:
        raise NotImplementedError

    def refuses(self, ctl: LabControl) -> bool:
        """Whether the server's port refuses connections now."""
        raise NotImplementedError

    def start(self, ctl: LabControl) -> None:
        raise NotImplementedError

    def inject(self, ctl: LabControl) -> str:
        self._undo = self.stop(ctl)
        self._refused = until(lambda: self.refuses(ctl), self.REFUSED_WITHIN)
        return f"{self.server} stopped (SIGTERM)"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not stopped"
        self._undo.heal()
        self._undo = None
        self.start(ctl)
        self._back = True
        return f"{self.server} {self.restarting}"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if not self._refused:
            return self.report(False, self.missed + (
                f"{self.server}'s port still accepted connections after the stop"
                if self._undo is not None or self._back else f"{self.server} was never stopped"))
        return self.report(True, f"{self.server}'s port refused connections once it was "
                           "stopped" + ("; started again when the fault was lifted"
                                        if self._back else ""))
