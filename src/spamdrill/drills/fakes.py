"""spamd stand-ins for what the real spamd cannot do on command: a full accept queue, an
accepted connection that never answers, an answer dripped a byte at a time, a peer that
never reads, a well-formed success with an empty message. Each listens on its own port and
stops cleanly (``close()``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from spamdrill.proto import spamd_wire

KINDS = ("refuse", "queue-full", "silent", "drip", "nonreader", "empty")

SCORE = {"Spam": "False ; 0.0 / 5.0"}
# a success with no message: spamc 4.0.1 prints nothing and exits 0, with -x too
# (measured), and maildrop's xfilter takes the nothing as the message
EMPTY_REPLY = spamd_wire.build_reply(0, "EX_OK", SCORE)


class Fake:
    """A misbehaving spamd on 127.0.0.1:``port``."""

    def __init__(self, kind: str, drip_interval: float = 0.5, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fake {kind!r} (known: {', '.join(KINDS)})")
        self.kind = kind
        self.drip_interval = drip_interval
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.answered = 0  # requests read whole and answered (``empty``)
        self._count = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if kind != "refuse":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if kind == "nonreader":  # inherited by accepted sockets: a writer fills it fast
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.host = host
        self.sock.bind((host, port))
        self.port: int = self.sock.getsockname()[1]
        if kind == "refuse":
            # bound, never listening: the kernel answers every SYN with a reset, and no
            # other socket can take the port while this one holds it (closing it here let
            # a later fake's bind(0) get the same port: spamc then met a silent listener)
            return
        self.sock.listen(0 if kind == "queue-full" else 128)
        if kind == "queue-full":
            self._fill_queue()
        else:
            self._spawn(self._accept_loop)

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _fill_queue(self) -> None:
        """Connect until the (never accepted) queue is full and SYNs go unanswered."""
        for _ in range(64):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.settimeout(0.3)
            try:
                c.connect((self.host, self.port))
            except OSError:
                c.close()
                return
            self._conns.append(c)
        self.close()
        raise RuntimeError("the accept queue never filled")

    @property
    def held(self) -> int:
        """Connections this fake holds (for queue-full: the ones filling its queue)."""
        return len(self._conns)

    def _accept_loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            if self.kind == "drip":
                self._spawn(self._drip, conn)
            elif self.kind == "silent":
                self._spawn(self._swallow, conn)
            elif self.kind == "empty":
                self._spawn(self._answer_empty, conn)
            # nonreader: hold the connection, read nothing

    def _swallow(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _read_request(self, conn: socket.socket, whole: bool = False) -> bool:
        """Until the request's headers (with ``whole``, and its body) are in."""
        data = b""
        conn.settimeout(0.2)
        while not spamd_wire.request_complete(data, body=whole):
            if self._stop.is_set():
                return False
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            data += chunk
        return True

    def _answer_empty(self, conn: socket.socket) -> None:
        if not self._read_request(conn, whole=True):
            return
        # counted before the reply goes out: once spamc has it, the count must already
        # say so (counted after, a fault lifted as soon as spamc exited read 0 under load)
        with self._count:
            self.answered += 1
        try:
            conn.sendall(EMPTY_REPLY)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            with self._count:
                self.answered -= 1

    def _drip(self, conn: socket.socket) -> None:
        """Read the request, then answer a well-formed reply one byte at a time."""
        if not self._read_request(conn):
            return
        reply = spamd_wire.build_reply(0, "EX_OK", SCORE,
                                       b"Subject: dripped\r\n\r\nslowly\r\n")
        for byte in reply:
            if self._stop.wait(self.drip_interval):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        with contextlib.suppress(OSError):
            self.sock.close()
        for t in self._threads:
            t.join(timeout=2)


if __name__ == "__main__":  # a quick look by hand: python -m spamdrill.drills.fakes drip
    import sys

    fake = Fake(sys.argv[1])
    print(fake.port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(3600)
    fake.close()
