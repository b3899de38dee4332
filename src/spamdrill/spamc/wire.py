"""spamdrill-spamc's sockets: spamd's addresses (getaddrinfo within the deadline), the
connect and the exchange under poll, each carried out as the deadline's generator asks
(``run_check``) and recorded for ``--keep-slow``. The C modules, as in ``main``: ``socket``
pulls in enum and selectors, start-up time on every message."""

from __future__ import annotations

import _socket as socket
import posix as os
import select
import time

from spamdrill.spamc import core, deadline


def addresses(mode: core.Mode, end: float = core.INF
              ) -> tuple[list[list[int]], list[tuple[int, object]], int]:
    """(hosts as indexes into the address list, the addresses, failure code).
    ``transport_setup``: each host's getaddrinfo() answers are one entry; none at all is
    EX_NOHOST (EX_TEMPFAIL when a lookup failed for now). A name DNS must answer is looked
    up within the deadline ``end``."""
    if mode.unix_socket is not None:
        return [[0]], [(socket.AF_UNIX, mode.unix_socket)], core.EX_OK
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(mode.family, socket.AF_UNSPEC)
    names: list[str | None] = list(mode.hosts) or [None]
    flat: list[tuple[int, object]] = []
    hosts: list[list[int]] = []
    temporary = False
    for name in names:
        found, again = _lookup(name, str(mode.port), family, end)
        temporary |= again
        if not found:
            continue
        hosts.append(list(range(len(flat), len(flat) + len(found))))
        flat += [(fam, addr) for fam, _, _, _, addr in found]
    if not hosts:
        return [], [], core.EX_TEMPFAIL if temporary else core.EX_NOHOST
    rand = int.from_bytes(os.urandom(2), "little")
    return core.host_order(hosts, mode.randomize, mode.safe_fallback, rand), flat, core.EX_OK


Address = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]
Found = list[tuple[int, int, int, str, Address]]


def _lookup(name: str | None, port: str, family: int, end: float) -> tuple[Found, bool]:
    """getaddrinfo: an address at once; a name in a thread, abandoned at the deadline
    (the C resolver cannot be interrupted). Returns (answers, failed for now)."""
    # bytes: a str host loads the idna codec, start-up time on every message
    host = name.encode() if name is not None and name.isascii() else name
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0,
                                  socket.AI_NUMERICHOST), False
    except socket.gaierror:
        pass
    import threading

    box: list[Found | int] = []

    def ask() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except socket.gaierror as exc:
            box.append(exc.errno or 0)
        except OSError:
            box.append(0)

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    t.join(None if end == core.INF else max(0.0, end - time.monotonic()))
    if not box:
        return [], True  # the deadline came first
    answer = box[0]
    if isinstance(answer, int):
        return [], answer == socket.EAI_AGAIN
    return answer, not answer


# --- carrying out the core's actions ---------------------------------------------------

class Wire:
    """The sockets and what happened on them (for the log line and --keep-slow)."""

    def __init__(self, flat: list[tuple[int, object]]) -> None:
        self.flat = flat
        self.sock: socket.socket | None = None
        self.events: list[dict[str, object]] = []
        self.sent = self.received = 0
        self.peer = ""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def connect(self, action: deadline.Connect, start: float) -> tuple[int, float]:
        self.close()
        family, address = self.flat[action.address]
        t0 = time.monotonic()
        errno = self._connect(family, address, action.timeout, action.by_deadline)
        now = time.monotonic()
        self.peer = _show(address)
        self.events.append({"connect": self.peer, "at_s": round(t0 - start, 4),
                            "took_s": round(now - t0, 4),
                            "result": "ok" if errno == 0 else
                            ("deadline" if errno == -1 else
                             core.ERRNO_TEXT.get(errno, f"errno {errno}"))})
        return errno, now

    def _connect(self, family: int, address: object, timeout: float,
                 by_deadline: bool) -> int:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            return exc.errno or core.EX_SOFTWARE
        s.setblocking(False)
        until = time.monotonic() + timeout
        err = 0
        while True:
            err = s.connect_ex(address)  # type: ignore[arg-type]
            if err == 11 and family == socket.AF_UNIX:  # EAGAIN: the backlog is full
                if time.monotonic() >= until:
                    s.close()
                    return -1 if by_deadline else core.EINTR
                time.sleep(0.01)
                continue
            break
        if err in (0, 106):  # EISCONN
            self.sock = s
            return 0
        if err != 115:  # EINPROGRESS
            s.close()
            return err
        poller = select.poll()
        poller.register(s.fileno(), select.POLLOUT)
        if not poller.poll(max(0, int((until - time.monotonic()) * 1000) + 1)):
            s.close()
            return -1 if by_deadline else core.EINTR  # spamc's alarm: EINTR
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            s.close()
            return err
        self.sock = s
        return 0

    def talk(self, action: deadline.Talk, limit: int) -> deadline.Heard:
        """Write the request while reading whatever comes; after the write, ``idle``
        bounds each wait for data (spamc's -t per read); ``end`` bounds all."""
        s = self.sock
        assert s is not None
        t = _Talk(s, action.request)
        how = "eof"
        while True:
            now = time.monotonic()
            wait = action.end - now
            if t.written and action.idle > 0:
                wait = min(wait, action.idle - (now - t.last))
            if wait <= 0:
                how = "deadline" if action.end <= now else "idle"
                break
            how = t.step(wait)
            if how == "more":
                if len(t.data) > limit:
                    how = "too-big"
                elif not (action.headers_only and _headers_end(t.data)):
                    continue
                else:
                    how = "headers"
            if how != "wait":
                break
        self.sent += t.sent
        self.received += len(t.data)
        now = time.monotonic()
        self.events.append({"talk": self.peer, "sent": t.sent, "received": len(t.data),
                            "ended": how, "last_byte_s_ago": round(now - t.last, 4)})
        self.close()
        return deadline.Heard(bytes(t.data), how == "eof", how, t.sent, now)


class _Talk:
    """One exchange's state: what is written, what has come back, when data last moved."""

    def __init__(self, s: socket.socket, request: bytes) -> None:
        self.s = s
        self.view = memoryview(request)
        self.sent = 0
        self.data = bytearray()
        self.last = time.monotonic()
        self.poller = select.poll()

    @property
    def written(self) -> bool:
        return self.sent >= len(self.view)

    def step(self, wait: float) -> str:
        """Wait up to ``wait`` s for the socket; "wait" (nothing yet or written some),
        "more" (data came), "eof" or "error"."""
        writing = not self.written
        self.poller.register(self.s.fileno(),
                             select.POLLIN | (select.POLLOUT if writing else 0))
        events = self.poller.poll(int(min(wait, 3600.0) * 1000) + 1)  # inf: no deadline
        if not events:
            return "wait"
        flags = events[0][1]
        if writing and flags & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            self._send()
        if not flags & (select.POLLIN | select.POLLERR | select.POLLHUP):
            return "wait"
        try:
            chunk = self.s.recv(1 << 16)
        except BlockingIOError:
            return "wait"
        except OSError:
            return "error"
        if not chunk:
            return "eof"
        self.data += chunk
        self.last = time.monotonic()
        return "more"

    def _send(self) -> None:
        try:
            self.sent += self.s.send(self.view[self.sent:self.sent + (1 << 18)])
        except BlockingIOError:
            return
        except OSError:
            self.sent = len(self.view)  # spamc ignores a failed write and reads on
        if self.written:
            self.last = time.monotonic()  # -t counts from here
            try:
                self.s.shutdown(socket.SHUT_WR)
            except OSError:
                return


def _headers_end(data: bytearray) -> bool:
    first = data.find(b"\n")
    return first >= 0 and (data.find(b"\n\r\n", first) >= 0 or data.find(b"\n\n", first) >= 0)


def _show(address: object) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def run_check(mode: core.Mode, request: bytes, hosts: list[list[int]], wire: Wire,
              start: float) -> deadline.Result:
    """Drive the core's generator: each action carried out, its answer sent back."""
    steps = deadline.check(mode, request, hosts, start)
    limit = mode.max_size + core.EXPANSION_ALLOWANCE + 2 * core.LINE_MAX + 64
    reply: deadline.Reply | None = None
    try:
        while True:
            action = steps.send(reply) if reply is not None else next(steps)
            if isinstance(action, deadline.Connect):
                reply = wire.connect(action, start)
            elif isinstance(action, deadline.Sleep):
                time.sleep(action.seconds)
                reply = time.monotonic()
            else:
                reply = wire.talk(action, limit)
    except StopIteration as done:
        result: deadline.Result = done.value
        return result
    finally:
        wire.close()
