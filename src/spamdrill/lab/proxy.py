"""A TCP fault proxy (Toxiproxy's shape): sits between spamc and spamd (in the runner) or
between spamd and MariaDB (a lab process, ``python -m spamdrill.lab.proxy``, whose shape a
drill switches through a file) and passes each direction through its chain of toxics
(``spamdrill.lab.toxics``), switchable while connections are open. It counts what it did
(connections, refusals, bytes per direction, chunks shaped): the evidence that a fault on
the link took effect.

It reads what a peer sends as fast as the peer sends it, and shapes what it passes on in
another thread: taking data at once is what a sender's kernel does on a slow link (its send
buffer autotunes up to ``tcp_wmem``'s 4 MiB), so spamc's ``full_write`` returns while the
link still carries the message and that time is drawn against spamc's read timeout,
deterministically, not as buffers happen to grow.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from spamdrill.lab.toxics import (
    CLOSE,
    MODES,
    PASS,
    RESET,
    AnyToxic,
    LinkState,
    Shape,
    mode_shape,
    run_chain,
)

__all__ = ["MODES", "FaultProxy", "Shape", "mode_shape", "read_shape", "write_shape"]


@dataclass
class Counters:
    """What the proxy did since it started."""

    connections: int = 0
    down_spells: int = 0  # times the proxy stopped listening (a disabled shape)
    upstream_bytes: int = 0
    downstream_bytes: int = 0
    shaped_chunks: int = 0  # chunks that went through at least one toxic


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


def _end(src: socket.socket, dst: socket.socket, how: str) -> None:
    for s in (src, dst):
        with contextlib.suppress(OSError):
            if how == RESET:  # SO_LINGER 0: close sends RST
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()


class FaultProxy:
    """Listens on ``listen`` (port 0: any free one, see ``port``) and forwards to
    ``target``, shaped by ``shape``, which may be replaced at any time."""

    def __init__(self, target: tuple[str, int], shape: Shape | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.target = target
        self.shape = shape or Shape()
        self.counters = Counters()
        self._stop = threading.Event()
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
        """Switch shapes; a disabled proxy refuses new connections before this returns
        (shutdown() takes a listening socket out of the kernel's table at once and wakes
        accept())."""
        if self.shape.enabled and not shape.enabled:
            self.counters.down_spells += 1
        self.shape = shape
        listener = self.listener
        if not shape.enabled and listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.append(s)

    def _listener_for_now(self) -> socket.socket | None:
        """The listening socket if the shape accepts connections (re-opened on the same
        port after being down), else None."""
        if not self.shape.enabled:
            if self.listener is not None:
                with contextlib.suppress(OSError):
                    self.listener.close()
                self.listener = None
            return None
        if self.listener is None:
            with contextlib.suppress(OSError):
                self.listener = self._listen(self.port)
        return self.listener

    def _accept(self) -> None:
        while not self._stop.is_set():
            listener = self._listener_for_now()
            if listener is None:
                self._stop.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # shut down to go down: listen again once the shape allows
                if self._stop.is_set():
                    return
                with contextlib.suppress(OSError):
                    listener.close()
                self.listener = None
                continue
            self._track(client)
            self.counters.connections += 1
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self._track(server)
        for a, b, way in ((client, server, "upstream"), (server, client, "downstream")):
            threading.Thread(target=self._pump, args=(a, b, way), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        """Read ``src`` as fast as it sends; ``_drain`` shapes what goes to ``dst``."""
        held = _Held()
        threading.Thread(target=self._drain, args=(held, src, dst, way),
                         daemon=True).start()
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data or not held.put(data):
                    break
        except OSError:
            pass
        held.close()

    def _chain(self, way: str) -> tuple[AnyToxic, ...]:
        return self.shape.upstream if way == "upstream" else self.shape.downstream

    def _drain(self, held: _Held, src: socket.socket, dst: socket.socket, way: str) -> None:
        states: dict[int, LinkState] = {}
        try:
            while not self._stop.is_set():
                data = held.take()
                if not data:
                    if not any(t.holds_eof for t in self._chain(way)):
                        with contextlib.suppress(OSError):
                            dst.shutdown(socket.SHUT_WR)
                    return
                chain = self._chain(way)
                # one state per toxic, kept while that toxic stays in the chain
                link = [states.setdefault(id(t), LinkState()) for t in chain]
                if chain:  # counted as it enters: a delayed chunk is shaped already
                    self.counters.shaped_chunks += 1
                verdict = run_chain(chain, link, data, lambda d: self._send(dst, d, way))
                if verdict in (CLOSE, RESET):
                    _end(src, dst, verdict)
                    return
                assert verdict == PASS
        except OSError:
            pass
        finally:
            held.abandon()  # the reader stops at its next put, never waits on a dead link

    def _send(self, dst: socket.socket, data: bytes, way: str) -> None:
        dst.sendall(data)
        if way == "upstream":
            self.counters.upstream_bytes += len(data)
        else:
            self.counters.downstream_bytes += len(data)

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


def counters_path(path: Path) -> Path:
    """Where a proxy process keeps its counters, next to its shape file."""
    return path.with_suffix(".counters")


def write_shape(path: Path, shape: Shape, wait: float = 0.0) -> bool:
    """Switch a proxy process's shape (atomically: it never reads half a file); with
    ``wait``, until the process says it applied it. False if it did not within ``wait``
    (no proxy running: nothing to shape)."""
    import time

    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(shape.encode())
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
        return Shape.decode(path.read_bytes())
    except (OSError, ValueError):
        return Shape()  # no file, or a bad one: forward untouched


def read_counters(path: Path) -> Counters | None:
    try:
        return Counters(**json.loads(counters_path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def main(argv: list[str]) -> int:
    """``LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT SHAPE_FILE``: serve until SIGTERM,
    following the shape file (polled every 50 ms: faults switch within a tick) and keeping
    its counters beside it."""
    lhost, lport, thost, tport, shape_file = argv
    path = Path(shape_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    proxy = FaultProxy((thost, int(tport)), listen=(lhost, int(lport)))
    proxy.set_shape(read_shape(path))
    print(f"proxy {lhost}:{proxy.port} -> {thost}:{tport}", flush=True)
    seen, shown = 0, ""
    while not stop.wait(0.05):
        with contextlib.suppress(OSError):
            mtime = path.stat().st_mtime_ns
            if mtime != seen:
                seen = mtime
                proxy.set_shape(read_shape(path))
                _applied(path).write_text(str(mtime))  # write_shape(wait=...) sees it
            now = json.dumps(asdict(proxy.counters))
            if now != shown:
                shown = now
                tmp = counters_path(path).with_suffix(".ctmp")
                tmp.write_text(now)
                os.replace(tmp, counters_path(path))
    proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
