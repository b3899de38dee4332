"""Run the MDA: no shell, stdin passed through untouched, a hard deadline, no leftovers.

- ``posix_spawnp`` of the argv list: recipient text is never parsed by a shell.
- fd 0 is inherited, so the message flows from Postfix to the MDA without passing through
  this process (memory stays flat whatever the message size).
- ``setsid``: the MDA leads its own process group (Postfix's pipe_command() does the same
  for us), so one ``killpg`` reaches the MDA and everything it started. maildrop's own
  timer does not kill a running xfilter (spamc), and a hung spamc would keep the output
  pipe -- and Postfix's pipe -- open; so when the MDA exits, what it left in its group is
  killed (and said so: a background job killed after a success may have held the mail).
- A pidfd tells when the MDA exits even while a leftover child still holds the pipe; where
  the kernel has none (before 5.3, or a seccomp filter), waitpid is polled.
- ``poll``, not ``select``: select cannot watch a descriptor numbered 1024 or above.
- SIGTERM/SIGINT/SIGHUP are blocked around the spawn, so a signal cannot leave an MDA
  running that nobody knows of; the MDA starts with an empty mask.
- Python ignores SIGPIPE and SIGXFSZ; the MDA gets them back at their defaults.
- Exit 0 counts only if the MDA read its input to the end: pipe(8) (``pipe_command.c``)
  writes the whole message and closes the pipe before it waits, and takes exit 0 after
  a write cut short by EPIPE as delivered, so an MDA that exits 0 early loses the mail.
"""

from __future__ import annotations

# the C modules: ``signal`` wraps its in enums, and importing enum costs ~3 ms of every
# delivery (python -X importtime); the wrapper needs only the numbers. ``posix`` is what
# ``os`` re-exports: under ``python -S`` nothing has imported ``os`` yet, and importing it
# (with posixpath, stat and _collections_abc) costs ~2.4 ms of every delivery.
import _signal as signal
import posix as os
import select
import time

from spamdrill.proto.deliver_policy import RULE_TEXT, MdaResult

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing on every delivery
if TYPE_CHECKING:
    from collections.abc import Callable

    from spamdrill.proto.deliver_policy import Decision

KEEP_OUTPUT = RULE_TEXT  # Postfix keeps no more than 4096 bytes of the whole output
DRAIN_AFTER_EXIT = 1.0  # s to read what is left (output, and the end of stdin) after it ends
POLL_STEP = 0.05  # s between waitpid polls without a pidfd
CAUGHT = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
S_IFMT, S_IFIFO, S_IFSOCK = 0o170000, 0o010000, 0o140000  # <sys/stat.h>, as ``stat`` has

# the MDA's pid (= its process group) from spawn until it is reaped: the last resort
# (main.entry) kills its group if the wrapper itself fails meanwhile
STARTED: list[int] = []


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum


class TimeUp(Exception):
    """``within`` ran out of time."""


def _raise(signum: int, _frame: object) -> None:
    raise _Interrupted(signum)


def _time_up(_signum: int, _frame: object) -> None:
    raise TimeUp


def _kill_group(pid: int) -> bool:
    """SIGKILL the group; True if anything was still in it."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False  # nothing left in the group
    return True


def kill_started() -> None:
    """For the last resort: whatever the MDA's group still holds goes."""
    for pid in STARTED:
        _kill_group(pid)


def _decode_status(status: int) -> tuple[int | None, int | None]:
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status), None


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000) + 1)


class _Run:
    """One MDA run's state: spawned, waited for, finished."""

    def __init__(self) -> None:
        self.pid = 0
        self.pidfd = -1
        self.rd = -1
        self.error: str | None = None
        self.out = bytearray()
        self.status: int | None = None
        self.timed_out = False
        self.interrupted: int | None = None
        self.leftovers = False

    def spawn(self, argv: list[str]) -> None:
        try:
            self.rd, wr = os.pipe()
        except OSError as exc:
            self.error = f"no pipe for its output: {exc.strerror}"
            return
        actions = [(os.POSIX_SPAWN_DUP2, wr, 1), (os.POSIX_SPAWN_DUP2, wr, 2),
                   (os.POSIX_SPAWN_CLOSE, self.rd)]
        try:
            self.pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                                       setsid=True, setsigmask=(),
                                       setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        except (OSError, ValueError) as exc:  # ValueError: an empty program name
            self.error = f"{argv[0]}: {getattr(exc, 'strerror', None) or exc}"
            return
        finally:
            os.close(wr)
        STARTED.append(self.pid)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except OSError:
            self.pidfd = -1  # no pidfds here: poll waitpid instead

    def wait(self, end: float) -> None:
        poller = select.poll()
        poller.register(self.rd, select.POLLIN)
        if self.pidfd >= 0:
            poller.register(self.pidfd, select.POLLIN)
        while self.status is None:
            left = end - time.monotonic()
            if left <= 0:
                self.timed_out = True
                return
            step = left if self.pidfd >= 0 else min(left, POLL_STEP)
            for fd, _ in poller.poll(_ms(step)):
                if fd == self.rd:
                    self._read(poller)
                else:
                    self._reap(0)
            if self.pidfd < 0 and self.status is None:
                self._reap(os.WNOHANG)

    def _read(self, poller: select.poll) -> None:
        chunk = os.read(self.rd, 65536)
        if chunk:
            self.out += chunk[: max(0, KEEP_OUTPUT - len(self.out))]
        else:
            poller.unregister(self.rd)

    def _reap(self, flags: int) -> None:
        pid, status = os.waitpid(self.pid, flags)
        if pid == 0:
            return
        self.status = status
        STARTED.remove(self.pid)
        # the group outlives its reaped leader while members remain, and the kernel does
        # not hand a pid in use as a group id to a new process; if none remain, the pid
        # comes back only after the whole pid space has cycled
        self.leftovers = _kill_group(self.pid)

    def finish(self) -> MdaResult:
        if self.pid and self.status is None:  # deadline or interrupted: the whole group
            _kill_group(self.pid)
            self.status = os.waitpid(self.pid, 0)[1]
            STARTED.remove(self.pid)
        grace = time.monotonic() + DRAIN_AFTER_EXIT
        if self.rd >= 0:
            _drain(self.rd, self.out, grace)
            os.close(self.rd)
        if self.pidfd >= 0:
            os.close(self.pidfd)
        if self.error is not None or self.status is None:
            return MdaResult(exec_error=self.error or "not started")
        exit_status, sig = _decode_status(self.status)
        if self.timed_out or self.interrupted is not None:
            exit_status, sig = None, None
        return MdaResult(exit_status=exit_status, signal=sig, timed_out=self.timed_out,
                         interrupted=self.interrupted, output=bytes(self.out),
                         input_left=exit_status == 0 and _input_left(grace),
                         leftovers=self.leftovers)


def run_mda(argv: list[str], end: float) -> MdaResult:
    """Run ``argv`` with our stdin until it ends or ``end`` (time.monotonic()) passes;
    return how it ended and the start of its output."""
    run = _Run()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, CAUGHT)
    old = {s: signal.signal(s, _raise) for s in CAUGHT}
    try:
        run.spawn(argv)
        if run.pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending signal: raised here
            run.wait(end)
    except _Interrupted as exc:
        run.interrupted = exc.signum
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, CAUGHT)
        for s, handler in old.items():
            signal.signal(s, handler)
    try:
        return run.finish()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _drain(rd: int, out: bytearray, until: float) -> None:
    """Read what is left; give up at ``until`` if something outside the group holds it."""
    poller = select.poll()
    poller.register(rd, select.POLLIN)
    while (left := until - time.monotonic()) > 0:
        if not poller.poll(_ms(left)):
            return
        chunk = os.read(rd, 65536)
        if not chunk:
            return
        out += chunk[: max(0, KEEP_OUTPUT - len(out))]


def _input_left(until: float) -> bool:
    """Did the MDA leave part of the message unread? Judged for a pipe or socket (what
    pipe(8) gives): data still there, or a writer that has not closed by ``until`` (the
    MDA never saw the end). A file or terminal cannot tell, and is not judged."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    if mode & S_IFMT not in (S_IFIFO, S_IFSOCK):
        return False
    poller = select.poll()
    poller.register(0, select.POLLIN)
    if not poller.poll(_ms(until - time.monotonic())):
        return True
    try:
        return os.read(0, 1) != b""
    except OSError:
        return True  # cannot confirm the end was read


def within(seconds: float, fn: Callable[[MdaResult], Decision], arg: MdaResult) -> Decision:
    """Call ``fn(arg)``, raising TimeUp after ``seconds``. CPython's regex engine checks
    for signals every 4096 steps while it backtracks (``MAYBE_CHECK_SIGNALS`` in
    ``Modules/_sre/sre_lib.h``), so an interval timer stops a runaway policy regex in
    this process; nothing else could, short of classifying in another one."""
    if seconds <= 0:
        raise TimeUp
    old = signal.signal(signal.SIGALRM, _time_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(arg)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
