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
from spamdrill.proto.spamc_result import classify


@dataclass
class Action:
    """A nemesis step run on the load's clock: ``at`` seconds after the first release."""

    at: float
    name: str
    run: Callable[[], str]  # returns a detail for the history


@dataclass
class _Flight:
    msg: Message
    pid: int
    stdin: int | None
    pidfd: int
    out: Path
    err: Path
    offset: float
    case: str
    argv: list[str]
    start_ns: int = 0
    end_ns: int | None = None
    status: int | None = None
    killed: bool = False


@dataclass
class LoadResult:
    records: list[MessageRecord]
    actions: list[tuple[str, int, str]] = field(default_factory=list)  # name, ns, detail
    released_ns: tuple[int, int] = (0, 0)  # first and last release


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def run(
    jobs: list[tuple[Message, list[str], float, str]],
    workdir: Path,
    *,
    max_wait: float,
    actions: list[Action] | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> LoadResult:
    """Run one spamc per job ``(message, argv, release offset s, case)``; bounded by
    ``max_wait`` seconds after the last release, after which survivors are killed (lost)."""
    workdir.mkdir(parents=True, exist_ok=True)
    raise_fd_limit(2 * len(jobs) + 256)
    flights: list[_Flight] = []
    try:
        for i, (msg, argv, offset, case) in enumerate(jobs):
            flights.append(_spawn(i, msg, argv, offset, case, workdir))
        return _drive(flights, actions or [], max_wait, progress)
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


def _spawn(i: int, msg: Message, argv: list[str], offset: float, case: str,
           workdir: Path) -> _Flight:
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
    return _Flight(msg, pid, wr, pidfd, out, err, offset, case, argv)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _drive(flights: list[_Flight], actions: list[Action], max_wait: float,
           progress: Callable[[int, int], None]) -> LoadResult:
    by_fd = {f.pidfd: f for f in flights}
    ep = select.epoll()
    for f in flights:
        ep.register(f.pidfd, select.EPOLLIN)
    done = 0
    lock = threading.Lock()
    stop = threading.Event()

    def reap() -> None:
        nonlocal done
        while not stop.is_set():
            for fd, _ in ep.poll(0.05):
                f = by_fd.get(fd)
                if f is None or f.end_ns is not None:
                    continue
                f.end_ns = time.monotonic_ns()
                f.status = os.waitpid(f.pid, 0)[1]
                ep.unregister(fd)
                with lock:
                    done += 1
                progress(done, len(flights))

    reaper = threading.Thread(target=reap, name="spamc-reaper", daemon=True)
    reaper.start()
    result = LoadResult(records=[])
    order = sorted(flights, key=lambda f: f.offset)
    pending = sorted(actions, key=lambda a: a.at)
    t0 = time.monotonic()
    first_ns = time.monotonic_ns()
    with _unpreempted():
        for f in order:
            while pending and pending[0].at <= f.offset:
                _act(pending.pop(0), t0, result)
            _sleep_until(t0 + f.offset)
            f.start_ns = time.monotonic_ns()
            assert f.stdin is not None
            os.close(f.stdin)  # the release: spamc now has its whole message and connects
            f.stdin = None
    last_ns = time.monotonic_ns()
    result.released_ns = (first_ns, last_ns)
    deadline = time.monotonic() + max_wait
    while pending or done < len(flights):
        if pending and time.monotonic() - t0 >= pending[0].at:
            _act(pending.pop(0), t0, result)
            continue
        if time.monotonic() >= deadline:
            break
        next_at = t0 + pending[0].at if pending else deadline
        time.sleep(max(0.0, min(0.05, next_at - time.monotonic())))
    for f in flights:  # past the bound: these never came back
        if f.end_ns is None:
            f.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(f.pid, signal.SIGKILL)
    while done < len(flights) and time.monotonic() < deadline + 5:
        time.sleep(0.01)
    stop.set()
    reaper.join()
    ep.close()
    result.records = [_record(f) for f in flights]
    return result


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


def _act(action: Action, t0: float, result: LoadResult) -> None:
    _sleep_until(t0 + action.at)
    ns = time.monotonic_ns()
    detail = action.run()
    result.actions.append((action.name, ns, detail))


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
    verdict = classify(f.msg.data, stdout, stderr, exit_code, killed=f.killed)
    reason = verdict.reason
    if f.status is not None and os.WIFSIGNALED(f.status) and not f.killed:
        reason = f"spamc killed by signal {os.WTERMSIG(f.status)}"
    for p in (f.out, f.err):
        p.unlink(missing_ok=True)
    return MessageRecord(
        id=f.msg.id, kind=f.msg.kind, size=len(f.msg.data), start_ns=f.start_ns,
        end_ns=None if f.killed else f.end_ns, outcome=verdict.outcome, exit_code=exit_code,
        reason=reason, spamc_args=f.argv[1:], score=verdict.score, case=f.case)
