"""Run a command, and everything it starts, under a CPU quota: a slower machine than this
one, made on this one (issue: findings that hold on any machine).

    python benchmarks/cpu_quota.py 0.5 -- bash scripts/test.sh      # half of one core
    python benchmarks/cpu_quota.py 1 -- spamdrill run spamd-overload

A cgroup of its own (cgroup v1's ``cpu.cfs_quota_us``/``cpu.cfs_period_us``, or v2's
``cpu.max``) with ``CORES`` x 100 ms of CPU per 100 ms; the command joins it before it runs,
so the lab's spamd, MariaDB, Postfix and every spamc inherit it. Needs root (cgroups).
The cgroup is removed afterwards. Written by hand: no packaged tool (cgexec, systemd-run)
is on these machines, and the kernel's files are three writes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def _parent() -> tuple[Path, bool]:
    """Where a child cgroup with a CPU quota can be made, and whether it is v2."""
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, False
    if (V2 / "cgroup.controllers").exists() and "cpu" in (V2 / "cgroup.controllers").read_text():
        return V2, True
    raise SystemExit("cpu_quota: no cgroup CPU controller here (v1 cpu or v2 cpu.max)")


@contextlib.contextmanager
def cgroup(cores: float) -> Iterator[Path]:
    """A cgroup limited to ``cores`` CPUs' worth of time; removed on exit once empty."""
    if os.geteuid() != 0:
        raise SystemExit("cpu_quota: cgroups need root")
    parent, v2 = _parent()
    path = parent / f"spamdrill-quota-{os.getpid()}"
    path.mkdir()
    quota = int(cores * PERIOD_US)
    try:
        if v2:
            (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota))
        yield path
    finally:
        deadline = time.monotonic() + 30
        while True:  # a process still exiting keeps the cgroup busy for a moment
            try:
                path.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    print(f"cpu_quota: {path} still in use; remove it by hand",
                          file=sys.stderr)
                    break
                time.sleep(0.2)


def run(argv: list[str], cores: float, **kw: object) -> subprocess.CompletedProcess[str]:
    """``argv`` in a cgroup of ``cores`` CPUs; extra keywords go to ``subprocess.run``."""
    with cgroup(cores) as path:
        procs = path / "cgroup.procs"

        def join() -> None:
            procs.write_text(str(os.getpid()))

        return subprocess.run(argv, preexec_fn=join, check=False, text=True,
                              **kw)  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cores", type=float, help="CPUs' worth of time (0.5: half a core)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not argv or args.cores <= 0:
        parser.error("give a positive number of cores and a command after --")
    t0 = time.monotonic()
    done = run(argv, args.cores)
    print(f"cpu_quota: {args.cores:g} core(s): exit {done.returncode} after "
          f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
