"""A TCP fault proxy (Toxiproxy's ideas, in-process): sits between spamc and spamd and
shapes the traffic. Modes, switchable while connections are open:

- ``pass``: forward untouched;
- ``latency``: each chunk waits ``latency`` seconds (each direction);
- ``bandwidth``: at most ``rate`` bytes per second each direction;
- ``drip``: ``slice`` bytes at a time, ``interval`` seconds apart;
- ``blackhole``: accept and read, never forward;
- ``reset``: forward ``after`` bytes, then reset the connection (RST);
- ``close``: forward ``after`` bytes, then close it cleanly;
- ``down``: stop listening (new connections are refused).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass

MODES = ("pass", "latency", "bandwidth", "drip", "blackhole", "reset", "close", "down")


@dataclass
class Shape:
    mode: str = "pass"
    latency: float = 0.0
    rate: float = 0.0
    slice: int = 1
    interval: float = 0.0
    after: int = 0


class FaultProxy:
    def __init__(self, target: tuple[str, int], shape: Shape | None = None) -> None:
        self.target = target
        self.shape = shape or Shape()
        if self.shape.mode not in MODES:
            raise ValueError(f"unknown proxy mode {self.shape.mode!r} ({', '.join(MODES)})")
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.listener.listen(4096)
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.append(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            if self.shape.mode == "down":
                with contextlib.suppress(OSError):
                    self.listener.close()
                return
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._track(client)
            if self.shape.mode == "blackhole":
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._track(server)
            budget = [self.shape.after]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b, budget),
                                 daemon=True).start()

    def _swallow(self, s: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set() and s.recv(65536):
                pass

    def _pump(self, src: socket.socket, dst: socket.socket, budget: list[int]) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                self._send(data, dst, budget, src)
        except OSError:
            return

    def _send(self, data: bytes, dst: socket.socket, budget: list[int],
              src: socket.socket) -> None:
        sh = self.shape
        if sh.mode in ("reset", "close"):
            allowed = max(0, budget[0])
            if len(data) >= allowed:
                dst.sendall(data[:allowed])
                budget[0] = 0
                for s in (src, dst):
                    if sh.mode == "reset":  # SO_LINGER 0: close sends RST
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                    s.close()
                return
            budget[0] -= len(data)
        if sh.mode == "latency":
            time.sleep(sh.latency)
        if sh.mode == "bandwidth" and sh.rate > 0:
            for i in range(0, len(data), 1024):
                piece = data[i:i + 1024]
                dst.sendall(piece)
                time.sleep(len(piece) / sh.rate)
            return
        if sh.mode == "drip":
            for i in range(0, len(data), max(1, sh.slice)):
                dst.sendall(data[i:i + max(1, sh.slice)])
                time.sleep(sh.interval)
            return
        dst.sendall(data)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()
