"""One worker's spamc load, in a process of its own that gevent never patched (see
``spamdrill.dist``): ``load.spamc`` as the local flood runs it -- every spamc spawned with
its message in its stdin pipe, released by closing it -- except that the release waits
for a wall-clock instant the master chose.

Its Locust worker talks to it in JSON lines. In: the share (``plan.Share``), then
``{"release_real_ns": T}`` (T on this machine's wall clock); end of input before the load
is over means the worker died, and every spamc is killed. Out: ``{"ready": pair}`` when
every spamc holds its message, ``{"x": [[index, start_ns, end_ns, status], ...]}`` as
spamc processes exit (Locust's live statistics), ``{"records": [...]}`` in chunks, then
``{"done": {"released": [first_ns, last_ns], "pair": pair}}``; ``{"error": text}`` when
it cannot run (the target rule, flags, spamc missing).

    python -m spamdrill.dist.shot [--i-own-this-target] < share
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from spamdrill.dist import plan, tally
from spamdrill.dist.clock import Pair
from spamdrill.errors import SpamdrillError
from spamdrill.lab.netns import Host
from spamdrill.load import spamc

SPIN_NS = 1_000_000  # the last millisecond before the release is spun, not slept


class Aborted(BaseException):
    """The worker went away: stop, and kill every spamc (``spamc.run``'s clean-up)."""


class Out:
    """JSON lines on stdout, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, doc: dict[str, Any]) -> None:
        line = msgspec.json.encode(doc) + b"\n"
        with self.lock:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()


def pair() -> list[int]:
    return [time.monotonic_ns(), time.time_ns()]


class Release:
    """Reads the release instant (or the end of input) from stdin in a thread."""

    def __init__(self) -> None:
        self.at_real_ns: int | None = None
        self.ready = threading.Event()
        self.over = False
        threading.Thread(target=self._read, name="release", daemon=True).start()

    def _read(self) -> None:
        """Raw reads of fd 0: a daemon thread blocked in a buffered reader would hold its
        lock when the interpreter exits (CPython aborts then)."""
        pending = b""
        while chunk := os.read(0, 4096):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._line(line)
        self.ready.set()  # end of input: the worker is gone
        if not self.over:
            os.kill(os.getpid(), signal.SIGTERM)

    def _line(self, line: bytes) -> None:
        with contextlib.suppress(msgspec.DecodeError):
            doc = msgspec.json.decode(line)
            if isinstance(doc, dict) and isinstance(doc.get("release_real_ns"), int):
                self.at_real_ns = doc["release_real_ns"]
                self.ready.set()

    def wait(self) -> None:
        """Until the release instant, on this machine's monotonic clock."""
        self.ready.wait()
        if self.at_real_ns is None:
            raise Aborted
        now = Pair(time.monotonic_ns(), time.time_ns())
        target = now.to_mono(self.at_real_ns)
        while target - time.monotonic_ns() > 2 * SPIN_NS:
            time.sleep((target - time.monotonic_ns() - SPIN_NS) / 1e9)
        while time.monotonic_ns() < target:
            pass


class Exits:
    """Batches spamc exits (the reaper's callback) into one line every 0.2 s."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.q: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="exits", daemon=True)
        self.thread.start()

    def __call__(self, index: int, start_ns: int, end_ns: int, status: int) -> None:
        self.q.put([index, start_ns, end_ns, status])

    def _drain(self) -> None:
        batch = []
        while not self.q.empty():
            batch.append(self.q.get())
        if batch:
            self.out({"x": batch})

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self._drain()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self._drain()


def _wrap(target: plan.Target) -> Callable[[list[str]], list[str]]:
    if target.netns is None:
        return lambda argv: argv
    if not Path("/run/netns", target.netns).exists():
        raise SpamdrillError(f"no network namespace {target.netns} on this machine",
                             "a lab's client host exists only where the lab runs")
    host = Host(target.netns, target.host)
    return lambda argv: host.exec(argv)


def prepare(share: plan.Share, owned: bool) -> list[spamc.Job]:
    plan.check_target(share.target, owned)
    plan.check_flags(share.spamc_args)
    binary = shutil.which("spamc")
    if binary is None:
        raise SpamdrillError("spamc is not installed on this worker",
                             "apt-get install spamc")
    return plan.jobs(share, binary, _wrap(share.target))


def run(share: plan.Share, owned: bool, out: Out) -> None:
    jobs = prepare(share, owned)
    release = Release()
    exits = Exits(out)

    def gate() -> None:
        out({"ready": pair()})
        release.wait()

    workdir = Path(tempfile.mkdtemp(prefix="spamdrill-shot-"))
    try:
        result = spamc.run(jobs, workdir, max_wait=share.max_wait, gate=gate, exited=exits)
    finally:
        release.over = True
        exits.close()
        shutil.rmtree(workdir, ignore_errors=True)
    for chunk in tally.chunks([tally.to_wire(r) for r in result.records]):
        out({"records": chunk})
    out({"done": {"released": list(result.released_ns), "pair": pair()}})


def _first_line() -> bytes:
    """The share, read byte by byte from fd 0, so nothing after it sits in a buffer."""
    line = bytearray()
    while (b := os.read(0, 1)) and b != b"\n":
        line += b
    return bytes(line)


def _abort(signum: int, frame: object) -> None:
    raise Aborted


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Out()
    signal.signal(signal.SIGTERM, _abort)
    try:
        share = msgspec.json.decode(_first_line(), type=plan.Share)
        run(share, "--i-own-this-target" in args, out)
    except (SpamdrillError, msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        text = exc.one_line() if isinstance(exc, SpamdrillError) else f"bad share: {exc}"
        out({"error": text})
        return 2
    except Aborted:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
