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

from spamdrill.budget.spamc import parse_args, slow_link
from spamdrill.lab.proxy import FaultProxy, Shape, mode_shape
from spamdrill.lab.toxics import Bandwidth, Latency, LimitData, Slicer

pytestmark = pytest.mark.lab


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


@pytest.mark.parametrize("mode,knobs,expect,at_least", [
    ("pass", {}, (10000, "eof"), 0.0),
    ("latency", {"latency": 0.3}, (10000, "eof"), 0.6),  # each way
    ("latency", {"latency": 0.3, "jitter": 0.1}, (10000, "eof"), 0.4),
    ("bandwidth", {"rate": 20000}, (10000, "eof"), 0.45),  # 10 kB at 20 kB/s
    ("drip", {"slice_": 1000, "interval": 0.05}, (10000, "eof"), 0.45),  # ten slices
    ("reset", {"after": 10}, (0, "reset"), 0.0),
    ("close", {"after": 10}, (0, "eof"), 0.0),
    ("blackhole", {}, (0, "timeout"), 0.0),
])
def test_proxy_shapes(echo: tuple[str, int], mode: str, knobs: dict[str, float],
                      expect: tuple[int, str], at_least: float) -> None:
    proxy = FaultProxy(echo, mode_shape(mode, **knobs))  # type: ignore[arg-type]
    try:
        size, how, seconds = roundtrip(proxy.port)
    finally:
        proxy.close()
    if mode in ("reset", "close"):
        # the 10 bytes let through may be echoed back before the cut reaches the client
        assert how == expect[1] and size <= 10, (size, how)
    else:
        assert (size, how) == expect
    assert seconds >= at_least
    if mode != "pass":
        assert proxy.counters.shaped_chunks > 0  # the evidence a drill reads


def test_toxics_chain_per_direction(echo: tuple[str, int]) -> None:
    """Toxics compose (latency and a bandwidth cap on the way up) and each direction has
    its own chain: a slow upload with an untouched download."""
    shape = Shape(upstream=(Latency(latency=0.2), Bandwidth(rate=50_000)))
    proxy = FaultProxy(echo, shape)
    try:
        size, how, seconds = roundtrip(proxy.port, size=20000)
    finally:
        proxy.close()
    assert (size, how) == (20000, "eof")
    assert seconds >= 0.2 + 20000 / 50_000 * 0.9
    assert proxy.counters.upstream_bytes == 20000 == proxy.counters.downstream_bytes
    cut = FaultProxy(echo, Shape(downstream=(Slicer(size=100, interval=0.01),
                                             LimitData(after=500, how="close"))))
    try:
        size, how, _ = roundtrip(cut.port, size=2000)
    finally:
        cut.close()
    assert size <= 500 and how == "eof"


class _OversleepingClock:
    """``time`` as a loaded machine gives it: every sleep lasts 2 ms longer than asked."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s + 0.002


def test_bandwidth_paces_against_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-piece sleeps would add their overshoot up; pacing against the clock keeps the
    carried rate within a few percent of the asked one (the net-slow drill's line sits at
    -t x rate). On a clock whose every sleep overshoots by 2 ms: 50 pieces at 100 kB/s
    take 0.5 s and one overshoot, where sleeping after each piece would take 0.6 s."""
    from spamdrill.lab import toxics
    from spamdrill.lab.toxics import LinkState

    clock = _OversleepingClock()
    monkeypatch.setattr(toxics, "time", clock)
    bw, link, sent = Bandwidth(rate=100_000, piece=1000), LinkState(), [0]
    bw.apply(b"x" * 50_000, link, lambda d: sent.__setitem__(0, sent[0] + len(d)))
    took = clock.now - 100.0
    assert sent[0] == 50_000 and 0.5 <= took <= 0.5 + 0.002 + 1e-9, took


def test_latency_jitter_stays_within_bounds() -> None:
    import random

    rng = random.Random(7)
    toxic = Latency(latency=0.2, jitter=0.1)
    delays = [toxic.delay(rng) for _ in range(2000)]
    assert all(0.1 <= d <= 0.3 for d in delays)
    assert max(delays) - min(delays) > 0.15  # it does vary
    # jitter larger than the latency: clipped at zero, never negative
    assert min(Latency(latency=0.05, jitter=0.5).delay(rng) for _ in range(200)) == 0


def test_proxy_down_refuses(echo: tuple[str, int]) -> None:
    proxy = FaultProxy(echo, Shape(enabled=False))
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


def test_bandwidth_takes_the_whole_message_at_once() -> None:
    """As a sender's kernel does on a slow link: sendall() returns long before the link
    has carried the data, so a client's read timer starts while the upload still runs."""
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen()
    done = threading.Event()
    got = [0]

    def drain() -> None:
        c, _ = sink.accept()
        while d := c.recv(65536):
            got[0] += len(d)
        c.close()
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    proxy = FaultProxy(sink.getsockname(), mode_shape("bandwidth", rate=200_000))
    try:
        c = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)  # the kernel holds little
        t0 = time.monotonic()
        c.sendall(b"x" * 1_000_000)
        c.shutdown(socket.SHUT_WR)
        sent = time.monotonic() - t0
        assert done.wait(30)
        carried = time.monotonic() - t0
        c.close()
    finally:
        proxy.close()
        sink.close()
    assert got[0] == 1_000_000
    assert carried >= 4  # 1 MB at 200 kB/s: the link really was slow
    assert sent < carried / 4, (sent, carried)  # yet the sender was done long before


def test_net_slow_upload_counts_against_t_download_does_not(tmp_path: Path) -> None:
    [r] = run("net-slow", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults)
    small = [m for m in r.history.messages if m.kind == "large:30000"]
    big = [m for m in r.history.messages if m.kind == "large:180000"]
    # -t is 15 s here (production timings) and the link carries 8,000 B/s each way: 30 kB
    # went up and came back (7.5 s of link time) and was scanned; 180 kB needs 22.5 s to go
    # up, so spamc's first read gave up at -t, before the upload could have finished
    assert small and all(m.outcome in ("ham", "spam") and (m.seconds or 0) > 6
                         for m in small)
    assert big and all(m.outcome == "unscanned" and 13 < (m.seconds or 0) < 18
                       for m in big)
    # the budget model draws the line between them, here and for the field report's -t 100
    # on a 1,200 B/s link (spamdrill budget --link-rate 1200)
    for t, rate in (("15", 8000), ("100", 1200)):
        line = slow_link(parse_args(["-t", t]), rate).largest_scanned
        assert line is not None and 30_000 < line < 180_000
