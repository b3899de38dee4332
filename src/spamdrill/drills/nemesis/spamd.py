"""Faults of spamd itself: stopped (before or during a load, and started again on lift,
not awaited: a drill sends mail while it comes up), and clients that stall mid-request and
hold its children."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Annotated

import msgspec

from spamdrill.drills import fakes
from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec, Stopped
from spamdrill.drills.timing import Scale
from spamdrill.evidence import FaultReport
from spamdrill.vocab import Mode


class SpamdDownSpec(FaultSpec, tag="spamd-down", frozen=True):
    """spamd stopped (SIGTERM, as an init script does) at ``at``; started again on lift."""

    def failure_mode(self) -> Mode:
        return Mode.SPAMD_REFUSED

    def build(self, scale: Scale) -> Fault:
        return SpamdDown()


class SpamdDown(Stopped):
    name = "spamd-down"
    server = "spamd"
    missed = ""
    WATCH_S = 120.0  # how long a lift watches for spamd's PONG

    def __init__(self) -> None:
        super().__init__()
        self._answered_ns: int | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def stop(self, ctl: LabControl) -> Undo:
        return ctl.stop_spamd()

    def refuses(self, ctl: LabControl) -> bool:
        return not ctl.accepts(ctl.spamd_endpoint())

    def start(self, ctl: LabControl) -> None:
        ctl.start_spamd()
        self._watcher = threading.Thread(target=self._watch, args=(ctl,), daemon=True)
        self._watcher.start()

    def _watch(self, ctl: LabControl) -> None:
        """When spamd answers PING again: the instant a drill's messages start to meet a
        working spamd."""
        deadline = time.monotonic() + self.WATCH_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            if ctl.spamd_answers():
                self._answered_ns = time.monotonic_ns()
                return
            self._stop.wait(0.05)

    def marks(self) -> dict[str, int]:
        return {} if self._answered_ns is None else {"spamd-answered": self._answered_ns}

    def teardown(self, ctl: LabControl) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)


class SpamdQueueFullSpec(FaultSpec, tag="spamd-queue-full", frozen=True):
    """spamd stopped and its port held by a listener whose accept queue is full: every
    SYN goes unanswered, so each of spamc's connect tries waits out its connect timeout
    (the field report's "3x -t"). Loopback topology. spamd starts again on lift."""

    def failure_mode(self) -> Mode:
        return Mode.SPAMD_ACCEPT_QUEUE_FULL

    def build(self, scale: Scale) -> Fault:
        return SpamdQueueFull()


class SpamdAnswersEmptySpec(FaultSpec, tag="spamd-answers-empty", frozen=True):
    """spamd stopped and its port held by a stand-in that answers every request with a
    well-formed success and no message (what a broken proxy or a truncating middlebox
    in front of spamd could send): spamc prints nothing and exits 0, and maildrop's
    xfilter takes the nothing for the message. Loopback topology. spamd starts again on
    lift."""

    def failure_mode(self) -> Mode:
        return Mode.FILTER_EMPTY

    def build(self, scale: Scale) -> Fault:
        return SpamdAnswersEmpty()


class SpamdReplaced(Fault):
    """spamd stopped and its host:port taken by a protocol-level stand-in
    (``spamdrill.drills.fakes``) of ``kind``; spamd started again on lift."""

    kind = ""
    doing = ""  # what the stand-in does, for the timeline

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._fake: fakes.Fake | None = None

    def inject(self, ctl: LabControl) -> str:
        ep = ctl.spamd_endpoint()
        self._undo = ctl.stop_spamd()
        self._fake = fakes.Fake(self.kind, host=ep.host, port=ep.port)
        self.took(ctl, self._fake)
        return f"spamd's port {ep} held by a stand-in: {self.doing}"

    def took(self, ctl: LabControl, fake: fakes.Fake) -> None:
        """At injection: what shows that the stand-in does what it should."""

    def closing(self, fake: fakes.Fake) -> None:
        """At lift: what the stand-in counted, before it goes."""

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not held"
        if self._fake is not None:
            self.closing(self._fake)
            self._fake.close()
            self._fake = None
        self._undo.heal()
        self._undo = None
        ctl.start_spamd()
        return "spamd starting again"

    def teardown(self, ctl: LabControl) -> None:
        if self._fake is not None:  # never lifted: the schedule lifts first, but be sure
            self._fake.close()
            self._fake = None


class SpamdQueueFull(SpamdReplaced):
    name = "spamd-queue-full"
    kind = "queue-full"
    doing = "a full accept queue"

    def __init__(self) -> None:
        super().__init__()
        self.filled = 0
        self.probe_waited = False

    def took(self, ctl: LabControl, fake: fakes.Fake) -> None:
        self.filled = fake.held
        self.probe_waited = not ctl.accepts(ctl.spamd_endpoint())  # a SYN nobody answers

    def evidence(self, ctl: LabControl) -> FaultReport:
        return self.report(self.filled > 0 and self.probe_waited,
                           f"{self.filled} connection(s) filled the queue; a probe's "
                           + ("connect went unanswered" if self.probe_waited
                              else "connect was answered"))


class SpamdAnswersEmpty(SpamdReplaced):
    name = "spamd-answers-empty"
    kind = "empty"
    doing = "every request answered EX_OK with an empty message"

    def __init__(self) -> None:
        super().__init__()
        self.answered = 0

    def closing(self, fake: fakes.Fake) -> None:
        self.answered = fake.answered

    def evidence(self, ctl: LabControl) -> FaultReport:
        return self.report(self.answered > 0,
                           f"the stand-in answered {self.answered} request(s) with an empty "
                           "message" + ("" if self.answered else ": no spamc reached it"))


class StallingClientsSpec(FaultSpec, tag="stalling-clients", frozen=True):
    """``count`` clients that connect to spamd and send half a request."""

    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1

    def build(self, scale: Scale) -> Fault:
        return StallingClients(self.count)


class StallingClients(Fault):
    """Clients that stall mid-request, holding a child until spamd gives up on them;
    records how long spamd took to close each."""

    name = "stalling-clients"

    def __init__(self, count: int) -> None:
        self.count = count
        self.opened = 0
        self.closed_after: list[float] = []
        self._socks: list[socket.socket] = []

    def inject(self, ctl: LabControl) -> str:
        ep = ctl.spamd_endpoint()
        for _ in range(self.count):
            s = socket.create_connection((ep.host, ep.port), timeout=5)
            s.sendall(b"CHECK SPAMC/1.5\r\n")  # ...and nothing more
            self._socks.append(s)
            self.opened += 1
            threading.Thread(target=self._watch, args=(s, time.monotonic()),
                             daemon=True).start()
        return f"{self.count} client(s) stalled mid-request"

    def _watch(self, s: socket.socket, t0: float) -> None:
        s.settimeout(None)
        with contextlib.suppress(OSError):
            while s.recv(4096):
                pass
            self.closed_after.append(time.monotonic() - t0)

    def lift(self, ctl: LabControl) -> str:
        socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        return f"{len(socks)} stalled client(s) closed" if socks else "none open"

    def evidence(self, ctl: LabControl) -> FaultReport:
        return self.report(self.opened >= self.count,
                           f"{self.opened} connection(s) opened and held mid-request; "
                           + (f"spamd closed {len(self.closed_after)} of them"
                              if self.closed_after else "spamd closed none during the load"))

    def notes(self) -> list[str]:
        return [("stalled clients closed by spamd after "
                 + ", ".join(f"{s:.1f} s" for s in self.closed_after))
                if self.closed_after else "spamd never closed the stalled clients"]
