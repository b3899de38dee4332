"""Faults of spamd itself: down, stopped or starting during a load, and clients that
stall mid-request and hold its children."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

from spamdrill.drills.nemesis.base import Fault
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig
from spamdrill.load.spamc import Action


@dataclass
class SpamdDown(Fault):
    """spamd not running for the whole load."""

    state: lab_ops.LabState | None = None
    config: LabConfig | None = None

    def before_load(self) -> None:
        assert self.state is not None
        lab_ops.stop_spamd(self.state)
        self._open("spamd stopped before the load")

    def heal(self) -> None:
        if self.state is not None and self.config is not None and \
                "spamd" not in self.state.pids:
            lab_ops.start_spamd(self.state, self.config, wait=True)
        self._close_all()


@dataclass
class SpamdStop(SpamdDown):
    """SIGTERM to spamd ``at`` seconds into the load (shutdown in a thread)."""

    at: float = 0.0
    _thread: threading.Thread | None = None

    def before_load(self) -> None:
        pass

    def actions(self) -> list[Action]:
        def inject() -> str:
            assert self.state is not None
            self._open("SIGTERM to spamd during the load")
            state = self.state
            self._thread = threading.Thread(target=lab_ops.stop_spamd, args=(state,),
                                            daemon=True)
            self._thread.start()
            return "SIGTERM sent"
        return [Action(self.at, "spamd-stop", inject)]

    def heal(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
        super().heal()


@dataclass
class SpamdStart(SpamdDown):
    """spamd stopped before the load and started (not awaited) ``at`` seconds into it."""

    at: float = 0.0

    def actions(self) -> list[Action]:
        def inject() -> str:
            assert self.state is not None and self.config is not None
            lab_ops.start_spamd(self.state, self.config, wait=False)
            self._close_all()
            self._open("spamd starting during the load")
            return "spamd started"
        return [Action(self.at, "spamd-start", inject)]


@dataclass
class StallingClients(Fault):
    """Clients that connect to spamd and stall mid-request, holding a child until spamd's
    --timeout-tcp gives up on them. Records how long spamd took to close each."""

    host: str = "127.0.0.1"
    port: int = 0
    count: int = 1
    at: float = 0.0
    closed_after: list[float] = field(default_factory=list)
    _socks: list[socket.socket] = field(default_factory=list)

    def actions(self) -> list[Action]:
        def inject() -> str:
            for _ in range(self.count):
                s = socket.create_connection((self.host, self.port), timeout=5)
                s.sendall(b"CHECK SPAMC/1.5\r\n")  # ...and nothing more
                self._socks.append(s)
                threading.Thread(target=self._watch, args=(s, time.monotonic()),
                                 daemon=True).start()
            self._open(f"{self.count} client(s) stalled mid-request")
            return f"{self.count} stalled"
        return [Action(self.at, "stalling-clients", inject)]

    def _watch(self, s: socket.socket, t0: float) -> None:
        s.settimeout(None)
        with contextlib.suppress(OSError):
            while s.recv(4096):
                pass
            self.closed_after.append(time.monotonic() - t0)

    def heal(self) -> None:
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        self._close_all()
