"""Run the real spamc binary as N processes, released together or on a schedule.

spamc reads its whole message from stdin before it connects (``_message_read_raw`` reads up
to ``max_len + 1`` bytes, i.e. until EOF for any message under ``-s``), so the barrier is
its stdin: every spamc is spawned and handed its message first, and *released* by closing
its stdin. Closing N pipe ends takes microseconds each, so a burst of 3,000 reaches spamd
within milliseconds -- unlike the field report's shell loop, whose "3000 at once" spread
its starts over seconds.

Each spamc is watched through a pidfd in one epoll set (no SIGCHLD races, and other
children of this process, such as the lab's spamd, are never reaped by mistake).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spamdrill.corpus import Message
from spamdrill.history import MessageRecord
from spamdrill.proto.rspamc_result import classify as rspamc_classify
from spamdrill.proto.spamc_result import classify


@dataclass
class _Flight:
    index: int
    msg: Message
    pid: int
    stdin: int | None
    pidfd: int
    out: Path
    err: Path
    offset: float
    case: str
    spamc_args: list[str]
    peer: str
    start_ns: int = 0
    end_ns: int | None = None
    status: int | None = None
    killed: bool = False


@dataclass(frozen=True)
class Job:
    """One message for one spamc: what to run, when to release it (seconds after the
    first release), and the case and peer it counts for."""

    message: Message
    argv: list[str]  # the whole command (maybe wrapped to run on the client host)
    spamc_args: list[str]  # spamc's own flags, for the record and the model
    offset: float = 0.0
    case: str = ""
    peer: str = "spamd"


@dataclass
class LoadResult:
    records: list[MessageRecord]
    released_ns: tuple[int, int] = (0, 0)  # first and last release
    notes: list[str] = field(default_factory=list)  # what the load wants the report to say


Exited = Callable[[int, int, int, int], None]  # job index, release ns, exit ns, wait status


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def run(
    jobs: list[Job],
    workdir: Path,
    *,
    max_wait: float,
    started: Callable[[float], None] = lambda t0: None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    gate: Callable[[], None] = lambda: None,
    exited: Exited | None = None,
) -> LoadResult:
    """Run one spamc per job; bounded by ``max_wait`` seconds after the last release, after
    which survivors are killed (lost). ``started`` hears the monotonic time of the first
    release: the clock a nemesis runs its schedule on. ``gate`` runs when every spamc holds
    its message and none is released yet (a distributed worker waits there for its release
    time); ``exited`` hears each spamc's exit as the reaper stamps it (live statistics)."""
    workdir.mkdir(parents=True, exist_ok=True)
    raise_fd_limit(2 * len(jobs) + 256)
    flights: list[_Flight] = []
    try:
        for i, job in enumerate(jobs):
            flights.append(_spawn(i, job, workdir))
        return _drive(flights, max_wait, started, progress, exited, gate)
    finally:
        for f in flights:  # whatever happened, nothing of ours keeps running
            if f.end_ns is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(f.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(f.pid, 0)
            for fd in (f.stdin, f.pidfd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)


def _spawn(i: int, job: Job, workdir: Path) -> _Flight:
    msg, argv = job.message, job.argv
    rd, wr = os.pipe()
    out, err = workdir / f"{i}.out", workdir / f"{i}.err"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_DUP2, rd, 0), (os.POSIX_SPAWN_CLOSE, wr),
               (os.POSIX_SPAWN_OPEN, 1, str(out), flags, 0o600),
               (os.POSIX_SPAWN_OPEN, 2, str(err), flags, 0o600)]
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                              setsigdef=(signal.SIGPIPE,))
    finally:
        os.close(rd)
    pidfd = os.pidfd_open(pid)
    # spamc may already have given up on its input (a usage error): its status will say
    with contextlib.suppress(BrokenPipeError):
        _write_all(wr, msg.data)
    return _Flight(i, msg, pid, wr, pidfd, out, err, job.offset, job.case, job.spamc_args,
                   job.peer)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Reaper:
    """Watches every spamc's pidfd in one epoll set and stamps each exit as it happens."""

    def __init__(self, flights: list[_Flight], progress: Callable[[int, int], None],
                 exited: Exited | None = None) -> None:
        self.flights = flights
        self.exited = exited
        self.by_fd = {f.pidfd: f for f in flights}
        self.ep = select.epoll()
        for f in flights:
            self.ep.register(f.pidfd, select.EPOLLIN)
        self.done = 0
        self.progress = progress
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="spamc-reaper", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for fd, _ in self.ep.poll(0.05):
                f = self.by_fd.get(fd)
                if f is None or f.end_ns is not None:
                    continue
                f.end_ns = time.monotonic_ns()
                f.status = os.waitpid(f.pid, 0)[1]
                self.ep.unregister(fd)
                self.done += 1
                if self.exited is not None:
                    self.exited(f.index, f.start_ns, f.end_ns, f.status)
                self.progress(self.done, len(self.flights))

    def wait(self, deadline: float) -> None:
        while self.done < len(self.flights) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.ep.close()


def _release(flights: list[_Flight], started: Callable[[float], None],
             gate: Callable[[], None] = lambda: None) -> tuple[int, int]:
    """Close each spamc's stdin at its offset; returns the first and last release (ns).
    ``gate`` waits inside the unpreempted section: a SCHED_FIFO sleeper wakes on time
    even with hundreds of another load's spamc runnable (measured: a worker waiting at
    normal priority released 30 ms late behind the other worker's spamc)."""
    order = sorted(flights, key=lambda f: f.offset)
    with _unpreempted():
        gate()
        t0 = time.monotonic()
        first_ns = time.monotonic_ns()
        started(t0)  # a thread it starts runs normally (SCHED_RESET_ON_FORK)
        for f in order:
            _sleep_until(t0 + f.offset)
            f.start_ns = time.monotonic_ns()
            assert f.stdin is not None
            os.close(f.stdin)  # the release: spamc now has its whole message and connects
            f.stdin = None
    return first_ns, time.monotonic_ns()


def _drive(flights: list[_Flight], max_wait: float, started: Callable[[float], None],
           progress: Callable[[int, int], None], exited: Exited | None = None,
           gate: Callable[[], None] = lambda: None) -> LoadResult:
    reaper = _Reaper(flights, progress, exited)
    try:  # the gate after the reaper's set-up (milliseconds for thousands of pidfds)
        released = _release(flights, started, gate)
        deadline = time.monotonic() + max_wait
        reaper.wait(deadline)
        for f in flights:  # past the bound: these never came back
            if f.end_ns is None:
                f.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(f.pid, signal.SIGKILL)
        reaper.wait(deadline + 5)
    finally:
        reaper.close()
    return LoadResult([_record(f) for f in flights], released)


@contextlib.contextmanager
def _unpreempted() -> Iterator[None]:
    """Each close wakes a spamc, and the scheduler lets it preempt the releasing thread:
    measured here, that alone spread a 3,000 burst over ~150 ms. As root the release
    loop runs SCHED_FIFO (woken normal tasks cannot preempt it) for its few milliseconds;
    otherwise it runs as it is."""
    try:
        old = os.sched_getscheduler(0), os.sched_getparam(0)
        # RESET_ON_FORK: a process an action starts meanwhile (spamd) runs normally
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
    except (PermissionError, OSError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, old[0], old[1])


def _sleep_until(t: float) -> None:
    """Pacing of the schedule itself (release times), not a wait for readiness."""
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _record(f: _Flight) -> MessageRecord:
    stdout = f.out.read_bytes() if f.out.exists() else b""
    stderr = f.err.read_text(errors="replace") if f.err.exists() else ""
    exit_code: int | None = None
    if f.status is not None and os.WIFEXITED(f.status):
        exit_code = os.WEXITSTATUS(f.status)
    judge = rspamc_classify if f.peer == "rspamd" else classify  # rspamc --mime's output
    verdict = judge(f.msg.data, stdout, stderr, exit_code, killed=f.killed)
    reason = verdict.reason
    if f.status is not None and os.WIFSIGNALED(f.status) and not f.killed:
        reason = f"spamc killed by signal {os.WTERMSIG(f.status)}"
    for p in (f.out, f.err):
        p.unlink(missing_ok=True)
    return MessageRecord(
        id=f.msg.id, kind=f.msg.kind, size=len(f.msg.data), start_ns=f.start_ns,
        end_ns=None if f.killed else f.end_ns, outcome=verdict.outcome, exit_code=exit_code,
        reason=reason, spamc_args=f.spamc_args, score=verdict.score, case=f.case, peer=f.peer,
        message_id=f.msg.message_id)
