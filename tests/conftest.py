"""Shared fixtures: real labs in private run directories, always taken down."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig


def new_run_dir() -> Path:
    # under /tmp, mode 0755: spamd's unprivileged user must reach it when tests run as root
    path = Path(tempfile.mkdtemp(prefix="spamdrill-test-", dir="/tmp"))
    os.chmod(path, 0o755)
    return path / "lab"


def spamdrill(*args: str, env: dict[str, str] | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real command line."""
    return subprocess.run([sys.executable, "-m", "spamdrill", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def spamdrill_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line run in this process: its own ``main`` (the same one-line errors and
    exit statuses), stdout and stderr captured, as ``spamdrill`` would give them -- for the
    unit tier, where a new interpreter per call cost a fifth of a second. What only a real
    process shows (the entry point, a traceback's status) stays with ``spamdrill``."""
    import io
    import signal

    from spamdrill.cli import main

    out, err = io.StringIO(), io.StringIO()
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    code: object = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    status = code if isinstance(code, int) else 0 if code is None else 1
    return subprocess.CompletedProcess(["spamdrill", *args], status, out.getvalue(),
                                       err.getvalue())


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = new_run_dir()
    yield path
    lab_ops.down(path)
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[lab_ops.LabState]:
    """One real lab per test module (start-up is ~1.5 s, but provisioning adds up)."""
    path = new_run_dir()
    state = lab_ops.up(path, LabConfig())
    try:
        yield state
    finally:
        lab_ops.down(path)
        shutil.rmtree(path.parent, ignore_errors=True)


TIERS = ("unit", "lab")


def _worker(config: pytest.Config) -> str | None:
    """This process's name when pytest-xdist runs the suite in several (``gw0`` …)."""
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker gets its own TMPDIR, so its drill labs, the doctor's copies and
    every temporary file live apart from the other worker's: the suite's "before and
    after" checks of what is left then judge their own worker's work alone (two
    spamdrills side by side are judged by tests written for that)."""
    _early_session(config)
    worker = _worker(config)
    if worker is None:
        return
    path = tempfile.mkdtemp(prefix=f"sd-{worker}-", dir="/tmp")
    os.chmod(path, 0o755)  # spamd's unprivileged user reaches the labs under it
    os.environ["TMPDIR"] = path
    tempfile.tempdir = None  # forget the directory tempfile chose before
    config.stash[_TMPDIR] = path


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_TMPDIR, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


_TMPDIR = pytest.StashKey[str]()


def _order(item: pytest.Item) -> int:
    """Under xdist: the lab tier first, then the unit tier, so the longest start first and
    the short ones fill the end (the workers steal from each other's tails)."""
    return 1 if item.get_closest_marker("lab") else 2


def _xdist_order(items: list[pytest.Item]) -> None:
    """``_order``, and a test that collects what an ``early`` command did at the end of the
    first worker's share (xdist's work stealing hands each worker a contiguous half, and a
    worker steals from the other's tail): not run before minutes of other tests, so its
    command, started when collection ended, has finished and no worker sits waiting."""
    items.sort(key=_order)  # stable, and the same in every worker
    early = [i for i in items if i.get_closest_marker("early")]
    rest = [i for i in items if not i.get_closest_marker("early")]
    at = max(0, len(items) // 2 - len(early))
    items[:] = rest[:at] + early + rest[at:]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="also run tests marked long: drills of minutes at production "
                          "timings (as `spamdrill run --long`)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test is in exactly one tier (``unit``: no lab programs; ``lab``: real ones),
    so ``pytest -m unit`` is the fast tier and nothing slips into it unmarked. A test
    marked ``long`` runs only with ``--long``, as a long drill runs only with ``spamdrill
    run --long``."""
    bad = [item.nodeid for item in items
           if sum(1 for t in TIERS if item.get_closest_marker(t)) != 1]
    if bad:
        raise pytest.UsageError("tests without exactly one tier marker (unit or lab): "
                                + ", ".join(bad[:10]))
    if not config.getoption("--long"):
        skip = pytest.mark.skip(reason="minutes at production timings: add --long")
        for item in items:
            if item.get_closest_marker("long"):
                item.add_marker(skip)
    if _worker(config) is not None:
        _xdist_order(items)


@contextlib.contextmanager
def syslog_sink() -> Iterator[str]:
    """A syslog socket for one wrapper run that nobody reads: without one the wrapper says
    on stderr that its line was lost (this machine may have no /dev/log)."""
    with tempfile.TemporaryDirectory(prefix="spamdrill-syslog-") as tmp, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        path = os.path.join(tmp, "log.sock")
        sink.bind(path)
        yield path


def with_syslog(args: tuple[str | bytes, ...], path: str) -> list[str | bytes]:
    """``args`` with ``--syslog-socket=path`` first, unless they name one."""
    named = any(isinstance(a, str) and a.startswith("--syslog-socket") for a in args)
    return list(args) if named else [f"--syslog-socket={path}", *args]


@dataclass
class Early:
    """A command started when collection ends, so minutes of waiting on a compiled-in
    timer (maildrop's 300 s) overlap the rest of the suite instead of adding to it; its
    test collects what it did (``early``). It lives in a directory of its own (stdout,
    stderr, its exit status in ``rc`` once it ended): under xdist another worker than the
    one that started it may collect it."""

    dir: Path

    def result(self, timeout: float) -> subprocess.CompletedProcess[str]:
        """Wait for its exit status (the command killed at ``timeout``); its stdout and
        stderr as ``spamdrill()`` gives them."""
        rc = self.dir / "rc"
        deadline = time.monotonic() + timeout
        while not rc.exists() and time.monotonic() < deadline:
            time.sleep(0.5)  # a process another worker started: no wait() from here
        if not rc.exists():
            _kill(self.dir)
            raise TimeoutError(f"the early command in {self.dir} ran past {timeout:.0f} s")
        out = (self.dir / "stdout").read_text(errors="replace")
        err = (self.dir / "stderr").read_text(errors="replace")
        return subprocess.CompletedProcess(["spamdrill"], int(rc.read_text()), out, err)


# runs the command, then writes its exit status where any worker can read it (renamed
# into place: a reader never sees half of it); a SIGTERM goes on to the command, which
# then tears its labs down before it exits
_RUNNER = """import os, signal, subprocess, sys
d = sys.argv[1]
with open(d + "/stdout", "w") as out, open(d + "/stderr", "w") as err:
    proc = subprocess.Popen(sys.argv[2:], stdout=out, stderr=err)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    code = proc.wait()
with open(d + "/rc.new", "w") as f:
    f.write(str(code))
os.rename(d + "/rc.new", d + "/rc")
"""
_EARLY_ROOT = "SPAMDRILL_TEST_EARLY"  # the session's directory of early commands


def _early_dir(nodeid: str) -> Path:
    import hashlib

    return Path(os.environ[_EARLY_ROOT]) / hashlib.sha256(nodeid.encode()).hexdigest()[:16]


def _start(nodeid: str, args_of: Callable[[Path], list[str]]) -> None:
    """Start the command in its directory, unless another process of this session did
    (making the directory is the claim)."""
    path = _early_dir(nodeid)
    try:
        path.mkdir()
    except FileExistsError:
        return
    # its labs live in a TMPDIR of its own, which only the main process removes, after the
    # command ended: under the starting worker's TMPDIR they were deleted under it when that
    # worker finished first, and its lab's services were left running. As short a path as
    # a worker's: a drill lab's Unix sockets must fit under it
    tmp = tempfile.mkdtemp(prefix="sd-early-", dir="/tmp")
    os.chmod(tmp, 0o755)  # spamd's unprivileged user reaches the labs under it
    (path / "tmpdir").write_text(tmp)
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(path), sys.executable, "-m",
                             "spamdrill", *args_of(path)], start_new_session=True,
                            env={**os.environ, "TMPDIR": tmp})
    (path / "pid").write_text(str(proc.pid))


def _kill(path: Path, grace: float = 120.0) -> None:
    """Stop the command if it still runs: SIGTERM, so that it tears its labs down (their
    services run in sessions of their own, out of a group kill's reach), waiting up to
    ``grace`` seconds for its exit status; then its whole session, SIGKILL."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((path / "pid").read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not (path / "rc").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # its exit status, written by the runner: no wait() from here
        os.killpg(pid, signal.SIGKILL)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start each selected test's ``early`` command once per session: under xdist every
    worker collects every test, and the first to get here starts it."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        marker = item.get_closest_marker("early")
        if marker is not None and not item.get_closest_marker("skip"):
            _start(item.nodeid, marker.args[0])


def _early_session(config: pytest.Config) -> None:
    """The session's directory for early commands, made by the main process before any
    worker starts (the workers inherit it through the environment)."""
    if _worker(config) is None and not os.environ.get(_EARLY_ROOT):
        os.environ[_EARLY_ROOT] = tempfile.mkdtemp(prefix="spamdrill-early-", dir="/tmp")
        config.stash[_EARLY_OWNED] = os.environ[_EARLY_ROOT]


_EARLY_OWNED = pytest.StashKey[str]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Nothing started early outlives the session (an interrupted run, a failed test): the
    main process, last to finish, stops what still runs and removes the directories."""
    root = session.config.stash.get(_EARLY_OWNED, None)
    if root is None:
        return
    for path in Path(root).iterdir():
        if not (path / "rc").exists():
            _kill(path)
        with contextlib.suppress(OSError):
            shutil.rmtree((path / "tmpdir").read_text(), ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def early(request: pytest.FixtureRequest) -> Early:
    """This test's early command: started when collection ended, or now."""
    marker = request.node.get_closest_marker("early")
    assert marker is not None, "the early fixture needs @pytest.mark.early(args_of)"
    _start(request.node.nodeid, marker.args[0])  # nothing if collection started it
    return Early(_early_dir(request.node.nodeid))
