"""A TCP fault proxy (Toxiproxy's ideas): sits between spamc and spamd (in the runner) or
between spamd and MariaDB (a lab process, ``python -m spamdrill.lab.proxy``, whose shape
a drill switches through a file) and shapes the traffic. Modes, switchable while
connections are open:

- ``pass``: forward untouched;
- ``latency``: each chunk waits ``latency`` seconds, give or take up to ``jitter`` (each
  direction; chunks keep their order, as on one TCP connection);
- ``bandwidth``: at most ``rate`` bytes per second each direction;
- ``drip``: ``slice`` bytes at a time, ``interval`` seconds apart;
- ``blackhole``: accept and read, never forward;
- ``reset``: forward ``after`` bytes, then reset the connection (RST);
- ``close``: forward ``after`` bytes, then close it cleanly;
- ``down``: stop listening (new connections are refused) until the mode changes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MODES = ("pass", "latency", "bandwidth", "drip", "blackhole", "reset", "close", "down")


@dataclass
class Shape:
    mode: str = "pass"
    latency: float = 0.0
    jitter: float = 0.0
    rate: float = 0.0
    slice: int = 1
    interval: float = 0.0
    after: int = 0

    def delay(self, rng: random.Random) -> float:
        """One chunk's delay: ``latency`` give or take up to ``jitter``, never negative."""
        return max(0.0, self.latency + rng.uniform(-self.jitter, self.jitter))


class _Held:
    """What the proxy has read from one side and not yet sent on: bounded (``CAP``), so a
    peer that never stops sending cannot grow it without limit."""

    CAP = 8 << 20

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._dead = False
        self._cond = threading.Condition()

    def put(self, data: bytes) -> bool:
        with self._cond:
            while len(self._buf) >= self.CAP and not self._dead:
                self._cond.wait(0.2)
            if self._dead:
                return False
            self._buf += data
            self._cond.notify_all()
            return True

    def take(self, most: int = 65536) -> bytes:
        """Up to ``most`` bytes, waiting for some; b"" once the sender closed and all of it
        went."""
        with self._cond:
            while not self._buf and not self._eof and not self._dead:
                self._cond.wait(0.2)
            data = bytes(self._buf[:most])
            del self._buf[:most]
            self._cond.notify_all()
            return data

    def close(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def abandon(self) -> None:
        with self._cond:
            self._dead = True
            self._buf.clear()
            self._cond.notify_all()


class FaultProxy:
    """Listens on ``listen`` (port 0: any free one, see ``port``) and forwards to
    ``target``, shaped by ``shape``, which may be replaced at any time."""

    def __init__(self, target: tuple[str, int], shape: Shape | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.target = target
        self.shape = shape or Shape()
        if self.shape.mode not in MODES:
            raise ValueError(f"unknown proxy mode {self.shape.mode!r} ({', '.join(MODES)})")
        self._stop = threading.Event()
        self._rng = random.Random()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.host = listen[0]
        self.listener: socket.socket | None = self._listen(listen[1])
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(4096)
        sock.settimeout(0.2)
        return sock

    def set_shape(self, shape: Shape) -> None:
        """Switch shapes; ``down`` refuses new connections before this returns (shutdown()
        takes a listening socket out of the kernel's table at once and wakes accept())."""
        self.shape = shape
        listener = self.listener
        if shape.mode == "down" and listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.append(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            if self.shape.mode == "down":
                if self.listener is not None:
                    with contextlib.suppress(OSError):
                        self.listener.close()
                    self.listener = None
                self._stop.wait(0.05)
                continue
            if self.listener is None:  # back from down: the same port again
                try:
                    self.listener = self._listen(self.port)
                except OSError:
                    self._stop.wait(0.05)
                    continue
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # shut down for "down": listen again once the mode allows
                if self._stop.is_set():
                    return
                with contextlib.suppress(OSError):
                    self.listener.close()
                self.listener = None
                continue
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
        """Read ``src`` as fast as it sends and shape what goes to ``dst`` in another
        thread. Taking the data at once is what a sender's kernel does on a slow link (its
        send buffer autotunes up to ``tcp_wmem``'s 4 MiB): spamc's ``full_write`` returns
        while the link still has the message to carry, so that time is drawn against
        spamc's read timeout (``-t``), deterministically, not as buffers happen to grow."""
        held = _Held()
        threading.Thread(target=self._drain, args=(held, dst, budget, src),
                         daemon=True).start()
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data or not held.put(data):
                    break
        except OSError:
            pass
        held.close()

    def _drain(self, held: _Held, dst: socket.socket, budget: list[int],
               src: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                data = held.take()
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                self._send(data, dst, budget, src)
        except OSError:
            pass
        finally:
            held.abandon()  # the reader stops at its next put, never waits on a dead link

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
            time.sleep(sh.delay(self._rng))
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
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.close()
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()


def _applied(path: Path) -> Path:
    return path.with_suffix(".applied")


def write_shape(path: Path, shape: Shape, wait: float = 0.0) -> bool:
    """Switch a proxy process's shape (atomically: it never reads half a file); with
    ``wait``, until the process says it applied it. False if it did not within ``wait``
    (no proxy running: nothing to shape)."""
    if shape.mode not in MODES:
        raise ValueError(f"unknown proxy mode {shape.mode!r} ({', '.join(MODES)})")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(shape)))
    os.replace(tmp, path)
    stamp = str(path.stat().st_mtime_ns)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _applied(path).read_text() == stamp:
                return True
        time.sleep(0.01)
    return False


def read_shape(path: Path) -> Shape:
    try:
        shape = Shape(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return Shape()  # no file, or a bad one: forward untouched
    return shape if shape.mode in MODES else Shape()


def main(argv: list[str]) -> int:
    """``LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT SHAPE_FILE``: serve until SIGTERM,
    following the shape file (polled every 50 ms: faults switch within a tick)."""
    lhost, lport, thost, tport, shape_file = argv
    path = Path(shape_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    proxy = FaultProxy((thost, int(tport)), read_shape(path), listen=(lhost, int(lport)))
    print(f"proxy {lhost}:{proxy.port} -> {thost}:{tport}", flush=True)
    seen = 0
    while not stop.wait(0.05):
        with contextlib.suppress(OSError):
            mtime = path.stat().st_mtime_ns
            if mtime != seen:
                seen = mtime
                proxy.set_shape(read_shape(path))
                _applied(path).write_text(str(mtime))  # write_shape(wait=...) sees it
    proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
