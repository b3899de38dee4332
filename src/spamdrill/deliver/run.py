"""Run the MDA: no shell, stdin passed through untouched, a hard deadline, no leftovers.

- ``posix_spawnp`` of the argv list: recipient text is never parsed by a shell.
- fd 0 is inherited, so the message flows from Postfix to the MDA without passing through
  this process (memory stays flat whatever the message size).
- ``setsid``: the MDA leads its own process group (Postfix's pipe_command() does the same
  for us), so one ``killpg`` reaches the MDA and everything it started. maildrop's own
  timer does not kill a running xfilter (spamc), and a hung spamc would keep the output
  pipe -- and Postfix's pipe -- open; so when the MDA exits, what it left in its group is
  killed.
- A pidfd tells when the MDA exits even while a leftover child still holds the pipe.
- Python ignores SIGPIPE and SIGXFSZ; the MDA gets them back at their defaults.
"""

from __future__ import annotations

# the C modules: ``signal`` and ``socket`` wrap them in enums, and importing enum costs
# ~3 ms of every delivery (python -X importtime); the wrapper needs only the numbers
import _signal as signal
import os
import select
import time

from spamdrill.deliver.policy import MdaResult

KEEP_OUTPUT = 4096  # Postfix keeps no more than this of the whole output
DRAIN_AFTER_EXIT = 1.0  # s to read what the MDA's group wrote before it was killed


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum


def _raise(signum: int, _frame: object) -> None:
    raise _Interrupted(signum)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return  # nothing left in the group


def _decode_status(status: int) -> tuple[int | None, int | None]:
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status), None


def run_mda(argv: list[str], deadline: float) -> MdaResult:
    """Run ``argv`` with our stdin; return how it ended and the start of its output."""
    rd, wr = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, wr, 1), (os.POSIX_SPAWN_DUP2, wr, 2),
               (os.POSIX_SPAWN_CLOSE, rd)]
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions, setsid=True,
                              setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except OSError as exc:
        os.close(rd)
        os.close(wr)
        return MdaResult(exec_error=f"{argv[0]}: {exc.strerror or exc}")
    os.close(wr)
    pidfd = os.pidfd_open(pid)
    old = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    out = bytearray()
    end = time.monotonic() + deadline
    status: int | None = None
    timed_out = False
    interrupted: int | None = None
    try:
        open_fds = [rd, pidfd]
        while status is None:
            left = end - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(open_fds, [], [], left)
            if rd in ready:
                chunk = os.read(rd, 65536)
                if chunk:
                    out += chunk[: max(0, KEEP_OUTPUT - len(out))]
                else:
                    open_fds.remove(rd)
            if pidfd in ready:
                _kill_group(pid)  # the leader is a zombie: its pgid is still ours
                status = os.waitpid(pid, 0)[1]
    except _Interrupted as exc:
        interrupted = exc.signum
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if status is None:  # deadline or interrupted: the whole group goes
        _kill_group(pid)
        status = os.waitpid(pid, 0)[1]
    _drain(rd, out)
    os.close(rd)
    os.close(pidfd)
    exit_status, sig = _decode_status(status)
    if timed_out or interrupted is not None:
        exit_status, sig = None, None
    return MdaResult(exit_status=exit_status, signal=sig, timed_out=timed_out,
                     interrupted=interrupted, output=bytes(out))


def _drain(rd: int, out: bytearray) -> None:
    """Read what is left; give up after a moment if something outside the group holds it."""
    end = time.monotonic() + DRAIN_AFTER_EXIT
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([rd], [], [], left)
        if not ready:
            return
        chunk = os.read(rd, 65536)
        if not chunk:
            return
        out += chunk[: max(0, KEEP_OUTPUT - len(out))]
