"""Supervised lab processes: start, journal, readiness, stop, and clean-up after a crash.

Every process is started in its own session (so its process group is its pid and a whole
tree can be signalled at once), with the lab's marker in its environment, and recorded in the
run directory's journal *before* anything waits on it. ``lab down`` therefore finds what a
SIGKILLed ``lab up`` left: first from the journal (pid plus kernel start time, so a recycled
pid is never killed), then by scanning /proc for the marker, which also catches spamd's
forked children. A journal record alone never steers a signal: the process must prove it
is the lab's (``ours``: the marker, or its output is the component's own log).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab import safefs
from spamdrill.lab.journal import Journal, StartRecord, StopRecord

MARKER = "SPAMDRILL_LAB"
_ERROR_LINE = re.compile(r"unknown option|error|fail|can't|cannot|denied|invalid", re.I)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name, or None for a finished process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    rest = stat.rsplit(")", 1)[1].split()
    if rest[0] in ("Z", "X"):  # a zombie has finished; nobody reaped it yet
        return None
    return rest


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    rest = _stat(pid)
    return int(rest[19]) if rest else None


def session_members(sid: int, leader_ticks: int) -> list[int]:
    """Live processes of the session our process ``sid`` (started at ``leader_ticks``) led.

    Every lab process leads its own session, and its children stay in it: spamd's children
    rewrite their environment area when they set $0 to "spamd child", so the marker alone
    cannot find them. If a process with pid ``sid`` lives but started at another time, the
    pid was recycled and that process leads a session of its own: setsid() refuses while
    any process of the old session's group remains (POSIX), so none of ours is left, and
    nothing is killed. Members must also have started no earlier than our leader.
    """
    now = start_ticks(sid)
    if now is not None and now != leader_ticks:
        return []
    not_before = leader_ticks
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        rest = _stat(int(entry.name))
        if rest and int(rest[3]) == sid and int(rest[19]) >= not_before:
            out.append(int(entry.name))
    return out


def proc_state(pid: int, ticks: int | None) -> str:
    """The kernel's state letter for our process (``T``: stopped by a signal), or "" when
    it is gone or the pid is not ours any more."""
    if ticks is None or start_ticks(pid) != ticks:
        return ""
    rest = _stat(pid)
    return rest[0] if rest else ""


def is_alive(pid: int, ticks: int | None) -> bool:
    # no recorded start time means it had already exited when journaled: never signal a
    # pid we cannot prove is ours
    return ticks is not None and start_ticks(pid) == ticks


@dataclass
class Proc:
    name: str
    pid: int
    ticks: int | None
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @classmethod
    def of(cls, rec: StartRecord) -> Proc:
        """The process a journal's start record describes."""
        return cls(rec.name, rec.pid, rec.ticks, Path(rec.log))

    def alive(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            return False
        return is_alive(self.pid, self.ticks)

    def log_tail(self, lines: int = 2) -> str:
        """The telling part of the output: the first error-looking line, else the last lines.

        spamd, for one, prints ``Unknown option: x`` and then its whole usage text.
        """
        try:
            raw = safefs.read_text(self.log.parent, self.log)  # no link followed
            text = [ln.strip() for ln in raw.splitlines()]
        except OSError:
            return ""
        text = [ln for ln in text if ln]
        for line in text:
            if _ERROR_LINE.search(line):
                return line
        return " | ".join(text[-lines:])


_SHIELD = {"depth": 0, "pending": 0}


def interrupt_handler(signum: int, _frame: object) -> None:
    """SIGINT/SIGTERM handler for the command line: raise KeyboardInterrupt, unless a
    clean-up is under way, then raise it when the clean-up is done."""
    if _SHIELD["depth"]:
        _SHIELD["pending"] = signum
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold off Ctrl-C and SIGTERM while cleaning up: a second interrupt must not leave a
    half-healed lab (found by benchmarks/interrupt_run.py: a SIGINT during teardown left a
    whole lab running). A flag, not a signal mask: a mask covers one thread, and the
    kernel may hand the signal to another (the reaper), whose handler still runs here."""
    _SHIELD["depth"] += 1
    try:
        yield
    finally:
        _SHIELD["depth"] -= 1
        if not _SHIELD["depth"] and _SHIELD["pending"]:
            _SHIELD["pending"] = 0
            raise KeyboardInterrupt


def spawn(
    name: str,
    argv: list[str],
    *,
    log: Path,
    journal: Journal,
    marker: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start ``argv`` detached in its own session, output to ``log``, and journal it.
    ``log`` lies in the run directory, maybe in a directory a service user owns (mysql's
    ``mariadb/``): opened from the run directory without following a symlink, a regular
    file only (``safefs``), so a restart never appends to a file someone planted a link to.
    """
    full_env = {**os.environ, **(env or {}), MARKER: marker}
    try:
        fd = safefs.append_fd(journal.root, log)
    except OSError as exc:
        raise SpamdrillError(f"cannot start {name}: its log {log}: {exc.strerror}",
                             "remove what is there, or take the lab down and up") from None
    try:
        with os.fdopen(fd, "ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
    except FileNotFoundError:
        raise SpamdrillError(
            f"cannot start {name}: {argv[0]} not found", "run scripts/setup.sh"
        ) from None
    proc = Proc(name=name, pid=popen.pid, ticks=start_ticks(popen.pid), log=log, popen=popen)
    journal.record(StartRecord(name=name, pid=proc.pid, ticks=proc.ticks, log=str(log),
                               argv=argv))
    return proc


def wait_until(
    proc: Proc, ready: Callable[[], bool], timeout: float, what: str
) -> float:
    """Poll a real probe until it succeeds; fail fast if the process dies.

    Returns the seconds it took. Backs off from 20 ms to 200 ms between probes: this is a
    readiness poll, not a sleep standing in for one.
    """
    t0 = time.monotonic()
    pause = 0.02
    while True:
        if ready():
            return time.monotonic() - t0
        if not proc.alive():
            raise SpamdrillError(
                f"{proc.name} exited during start-up: {proc.log_tail() or 'no output'}",
                f"see {proc.log}",
            )
        if time.monotonic() - t0 > timeout:
            raise SpamdrillError(
                f"{proc.name} not ready after {timeout:.0f} s ({what})", f"see {proc.log}"
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop(proc: Proc, journal: Journal | None, grace: float = 10.0, *, marker: str,
         var: str = MARKER) -> list[int]:
    """Stop our process and what its session holds; returns the pids signalled.

    The leader is signalled only if it is provably ours (``ours``: the lab's marker, or its
    output is the component's log): SIGTERM to its group, up to ``grace`` s, then SIGKILL;
    then every process its session still holds. When the leader is gone (or not ours), a
    session member is killed only if it is provably ours itself: a forged or stale start
    record must not steer a kill at a session that merely has that number.
    """
    hit: list[int] = []
    leader = proc.alive() and ours(proc.pid, marker, proc.log, var)
    if leader:
        hit.append(proc.pid)
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while proc.alive() and time.monotonic() < deadline:
            if proc.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(0.05)
            else:
                time.sleep(0.05)
        if proc.alive():
            _signal_group(proc.pid, signal.SIGKILL)
    if proc.ticks is not None:  # children the leader left behind
        for pid in session_members(proc.pid, proc.ticks):
            if leader or ours(pid, marker, proc.log, var):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    hit.append(pid)
    if proc.popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(2)
    if journal is not None:
        journal.record(StopRecord(name=proc.name, pid=proc.pid))
    return hit


def writes_to(pid: int, log: Path) -> bool:
    """Whether the process's stdout or stderr is the file ``log`` (a regular file, the same
    inode): what marks spamd's children as ours after they overwrite their environment
    (setting $0), since they keep the output spamd was started with."""
    try:
        st = os.lstat(log)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    for fd in (1, 2):
        try:
            out = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def ours(pid: int, marker: str, log: Path | None = None, var: str = MARKER) -> bool:
    """The live process ``pid`` is provably this lab's: it carries the marker, or writes
    to the component's own log."""
    return carries(pid, marker, var) or (log is not None and writes_to(pid, log))


def carries(pid: int, marker: str, var: str = MARKER) -> bool:
    """Whether the live process ``pid`` has this lab's marker in its environment: a
    journal's pid is only ever signalled when the process is provably the lab's."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{var}={marker}".encode() in environ.split(b"\0")


def marked_pids(marker: str, var: str = MARKER) -> Iterator[int]:
    """Pids of live processes whose environment carries this lab's marker (``var``: a
    marker of one component, e.g. the private Postfix's, beside the lab's)."""
    needle = f"{var}={marker}".encode()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and start_ticks(int(entry.name)) is not None:
            yield int(entry.name)


def kill_marked(marker: str, var: str = MARKER) -> list[int]:
    """SIGKILL every live process carrying the marker; returns their pids."""
    pids = list(marked_pids(marker, var))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
