"""The TCP fault proxy shapes real connections, and the net-slow drill runs through it."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_drills import run

from spamdrill.lab.proxy import FaultProxy, Shape


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=pump, args=(c,), daemon=True).start()

    def pump(c: socket.socket) -> None:
        try:
            while d := c.recv(65536):
                c.sendall(d)
        except OSError:
            pass
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()
    stop.set()
    srv.close()


def roundtrip(port: int, size: int = 10000, timeout: float = 3) -> tuple[int, str, float]:
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.monotonic()
    got, how = b"", "eof"
    try:
        c.sendall(b"x" * size)
        c.shutdown(socket.SHUT_WR)
        while d := c.recv(65536):
            got += d
    except TimeoutError:
        how = "timeout"
    except (ConnectionResetError, BrokenPipeError):
        how = "reset"
    except OSError as exc:  # shutdown() after the proxy's RST: not connected any more
        if exc.errno != errno.ENOTCONN:
            raise
        how = "reset"
    finally:
        c.close()
    return len(got), how, time.monotonic() - t0


@pytest.mark.parametrize("shape,expect", [
    (Shape(), (10000, "eof")),
    (Shape("latency", latency=0.3), (10000, "eof")),
    (Shape("latency", latency=0.3, jitter=0.1), (10000, "eof")),
    (Shape("bandwidth", rate=20000), (10000, "eof")),
    (Shape("drip", slice=1000, interval=0.05), (10000, "eof")),
    (Shape("reset", after=10), (0, "reset")),
    (Shape("close", after=10), (0, "eof")),
    (Shape("blackhole"), (0, "timeout")),
])
def test_proxy_shapes(echo: tuple[str, int], shape: Shape, expect: tuple[int, str]) -> None:
    proxy = FaultProxy(echo, shape)
    try:
        size, how, seconds = roundtrip(proxy.port)
    finally:
        proxy.close()
    if shape.mode in ("reset", "close"):
        # the 10 bytes let through may be echoed back before the cut reaches the client
        assert how == expect[1] and size <= shape.after, (size, how)
    else:
        assert (size, how) == expect
    if shape.mode == "latency":
        assert seconds >= shape.latency - shape.jitter
    if shape.mode in ("bandwidth", "drip"):
        assert seconds >= 0.45  # 10 kB at 20 kB/s; ten slices 50 ms apart


def test_latency_jitter_stays_within_bounds() -> None:
    import random

    rng = random.Random(7)
    shape = Shape("latency", latency=0.2, jitter=0.1)
    delays = [shape.delay(rng) for _ in range(2000)]
    assert all(0.1 <= d <= 0.3 for d in delays)
    assert max(delays) - min(delays) > 0.15  # it does vary
    # jitter larger than the latency: clipped at zero, never negative
    assert min(Shape("latency", latency=0.05, jitter=0.5).delay(rng) for _ in range(200)) == 0


def test_proxy_down_refuses(echo: tuple[str, int]) -> None:
    proxy = FaultProxy(echo, Shape("down"))
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the proxy kept accepting")
    finally:
        proxy.close()


def test_net_slow_transfers_outlast_t_and_still_scan(tmp_path: Path) -> None:
    [r] = run("net-slow", tmp_path)
    assert r.verdict == "pass", r.checks
    large = [m for m in r.history.messages if m.kind.startswith("large:")]
    # -t is 3 s here: the large transfers took longer, and were scanned all the same
    assert large and all((m.seconds or 0) > 3 and m.outcome in ("ham", "spam")
                         for m in large)
