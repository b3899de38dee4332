"""Benchmark: how "simultaneous" 3,000 spamc really are, and the runner's memory.

    python benchmarks/launch_skew.py [--count 3000]

A listener on loopback (backlog 4096) accepts and holds every connection, timestamping each
accept; the skew is first-to-last accept. Measured for spamdrill's load (spamc spawned with
its message in the pipe, released by closing stdin) and for the field report's shell loop
(``for n in $(seq 1 N); do ( time spamc ... < msg ; ) >> log 2>&1 & done``), on the same
machine in the same run. Also the runner's peak RSS with all of them in flight
(goal <= 500 MB) and the skew goal (<= 50 ms).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from spamdrill import corpus
from spamdrill.load import spamc

HOLDER = r"""
import os, select, socket, sys, time
try:  # the instrument must not queue behind 3,000 spamc for the CPU
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(2))
except OSError:
    pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4096); s.setblocking(False)
print(s.getsockname()[1], flush=True)
n = int(sys.argv[1]); times = []; conns = []
ep = select.epoll(); ep.register(s.fileno(), select.EPOLLIN)
end = time.monotonic() + 120
while len(times) < n and time.monotonic() < end:
    if not ep.poll(0.05):
        continue
    while True:
        try:
            c, _ = s.accept()
        except BlockingIOError:
            break
        times.append(time.monotonic_ns()); conns.append(c)
print(len(times), (max(times) - min(times)) / 1e6 if times else -1,
      min(times, default=0), max(times, default=0), flush=True)
sys.stdin.read()  # hold every connection until told
"""


class Holder:
    """A listener in its own (SCHED_FIFO, when root) process: accepts as fast as it can,
    timestamps each accept, holds the connections until stop()."""

    def __init__(self, count: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(count)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def result(self) -> tuple[int, float]:
        """Connections accepted, and first-to-last accept in ms (also kept: the first and
        last accept on the machine's monotonic clock, ``first_ns``/``last_ns``)."""
        assert self.proc.stdout is not None
        accepted, skew, first, last = self.proc.stdout.readline().split()
        self.first_ns, self.last_ns = int(first), int(last)
        return int(accepted), float(skew)

    def stop(self) -> None:
        self.proc.communicate("")


def spamdrill_load(count: int, tmp: Path, floor: Path | None = None,
                   ) -> tuple[float, int, float]:
    """spamdrill's load of real spamc; with ``floor``, of the minimal client instead."""
    holder = Holder(count)
    msgs = corpus.mix(["ham"], count, seed=1)
    argv = [str(floor), str(holder.port)] if floor is not None else \
        [shutil.which("spamc") or "spamc", "-l", "-d", "127.0.0.1", "-p", str(holder.port),
         "-t", "30"]
    result_box: list[spamc.LoadResult] = []

    def go() -> None:
        result_box.append(spamc.run([spamc.Job(m, argv, argv[1:]) for m in msgs], tmp / "load",
                                    max_wait=60))

    t = threading.Thread(target=go)
    t.start()
    accepted, skew = holder.result()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    holder.stop()  # spamc now reads EOF and fails open
    t.join()
    return skew, accepted, rss_mb


def shell_loop(count: int, tmp: Path) -> tuple[float, int]:
    holder = Holder(count)
    msg = tmp / "msg.eml"
    msg.write_bytes(corpus.ham(1))
    script = (f'for number in $(seq 1 {count}); do ( time spamc -d 127.0.0.1 -p {holder.port}'
              f' -t 30 < {msg} ; ) >> {tmp}/blah 2>&1 & done; wait')
    proc = subprocess.Popen(["bash", "-c", script])
    accepted, skew = holder.result()
    holder.stop()
    proc.wait()
    return skew, accepted


def floor_client(tmp: Path) -> Path | None:
    """Compile floor_client.c (the least any released client can do), if gcc is here."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    out = tmp / "floor_client"
    subprocess.run([gcc, "-O2", "-o", str(out), str(Path(__file__).with_name(
        "floor_client.c"))], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--floor", action="store_true",
                        help="also release a minimal C client (read stdin, connect) the same "
                             "way: the machine's floor for any one-process-per-message load")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="spamdrill-skew-"))
    try:
        skew, n, rss = spamdrill_load(args.count, tmp)
        print(f"spamdrill load: {n}/{args.count} accepted, first-to-last accept "
              f"{skew:.1f} ms (goal <= 50 ms); runner peak RSS {rss:.0f} MB (goal <= 500)")
        floor = floor_client(tmp) if args.floor else None
        if args.floor and floor is None:
            print("floor: gcc not found (apt-get install gcc), not measured")
        if floor is not None:
            fskew, fn, _ = spamdrill_load(args.count, tmp, floor)
            print(f"floor (minimal C client, same release): {fn}/{args.count} accepted, "
                  f"first-to-last accept {fskew:.1f} ms")
        skew2, n2 = shell_loop(args.count, tmp)
        print(f"field report's shell loop: {n2}/{args.count} accepted, first-to-last accept "
              f"{skew2:.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
