"""spamdrill-deliver's own faults: none of them may bounce (exit 1 is 5.3.0 to Postfix) or
report a delivery that did not happen. One test per finding of the hardening review."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import syslog_sink, with_syslog

from spamdrill.proto.postfix_pipe import judge

WRAPPER = [sys.executable, "-m", "spamdrill.deliver"]

pytestmark = pytest.mark.lab  # starts the real wrapper and stand-in MDAs


def deliver(*args: str, stdin: bytes = b"message\n", timeout: float = 60,
            prefix: list[str] | None = None) -> tuple[int, bytes, str, float]:
    """Run the real wrapper; its exit status, its output, Postfix's verdict, wall time."""
    t0 = time.monotonic()
    with syslog_sink() as log:
        done = subprocess.run([*(prefix or WRAPPER), *with_syslog(args, log)], input=stdin,
                              capture_output=True, timeout=timeout)
    output = done.stdout + done.stderr
    verdict = judge(exit_status=done.returncode, signal=None, output=output)
    return done.returncode, output, verdict.action, time.monotonic() - t0


def sh(script: str, *args: str) -> list[str]:
    return ["--", "/bin/sh", "-c", script, "sh", *args]


def shim(code: str) -> list[str]:
    """The wrapper with a fault the real world gives only sometimes (an old kernel, a
    seccomp filter, an exhausted descriptor table), injected before it starts."""
    return [sys.executable, "-c",
            f"{code}\nfrom spamdrill.deliver.main import entry\nentry()"]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        server.settimeout(10)
        yield str(path), server


def one_line(server: socket.socket) -> str:
    line = server.recv(1 << 20).decode()
    server.settimeout(0.2)
    with pytest.raises(TimeoutError):
        server.recv(1 << 20)  # exactly one line
    return line


# -- finding 1: any unexpected exception exited 1 (a bounce) ------------------------------

BAD_FILES: dict[str, str | bytes] = {
    "deadline-nan": "deadline = nan\n",
    "deadline-inf": "deadline = inf\n",
    "deadline-1e12": "deadline = 1e12\n",
    "deadline-huge-int": "deadline = 1" + "0" * 400 + "\n",
    "invalid-utf8": b"# caf\xe9\ndeadline = 5\n",
    "rule-is-5": "rule = 5\n",
    "nested-arrays": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "nested-regex": ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\noutput = "'
                     + "(" * 3000 + "a" + ")" * 3000 + '"\n'),
    "huge-repeat": ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\n'
                    'output = "a{99999999999}"\n'),
    "rule-unknown-key": '[[rule]]\nstatuses = [1]\naction = "defer"\ndsn = "4.3.0"\n',
    "reason-newline": ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\n'
                       'reason = "a\\nb"\n'),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_policy_file_defers_before_the_mda_runs(name: str, tmp_path: Path) -> None:
    cfg = tmp_path / "deliver.toml"
    text = BAD_FILES[name]
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    ran = tmp_path / "ran"
    code, out, action, _ = deliver(f"--config={cfg}", *sh('touch "$1"; cat >/dev/null',
                                                           str(ran)))
    assert (code, action) == (75, "deferred"), out
    assert out.startswith(b"4.3.5 ") and out.count(b"\n") == 1, out
    assert not ran.exists()  # the MDA never started: nothing delivered, nothing doubled
    check = subprocess.run([*WRAPPER, f"--config={cfg}", "--check-config"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and "config OK" not in check.stdout
    assert len(check.stderr.strip().splitlines()) == 1, check.stderr  # one line, no traceback


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12", "1e999", "0", "-5", "ten",
                                   "86401"])
def test_deadline_must_be_finite_and_bounded(value: str, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    code, out, action, _ = deliver(f"--deadline={value}",
                                   *sh('touch "$1"; cat >/dev/null', str(ran)))
    assert (code, action) == (75, "deferred") and out.startswith(b"4.3.5 "), out
    assert not ran.exists()
    check = subprocess.run([*WRAPPER, f"--deadline={value}", "--check-config"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and "deadline" in check.stderr


@pytest.mark.parametrize("mda", ["", " "])
def test_empty_mda_name_defers(mda: str) -> None:
    code, out, action, _ = deliver("--", mda, "-d", "alice")
    assert (code, action) == (75, "deferred") and out.startswith(b"4."), out


def test_without_pidfd_open_the_wrapper_still_works(tmp_path: Path) -> None:
    """Kernels before 5.3, and seccomp filters, refuse pidfd_open(2)."""
    no_pidfd = ("import errno, os\n"
                "def _nope(*a, **k):\n    raise OSError(errno.ENOSYS, 'Function not implemented')\n"
                "os.pidfd_open = _nope")
    pidfile = tmp_path / "child.pid"
    code, out, action, _ = deliver(*sh('cat >/dev/null; sleep 60 & echo $! > "$1"; exit 0',
                                       str(pidfile)), prefix=shim(no_pidfd))
    assert (code, action) == (0, "delivered"), out
    assert not alive(int(pidfile.read_text()))
    code, out, action, took = deliver("--deadline=1", *sh("sleep 60"), prefix=shim(no_pidfd))
    assert (code, action) == (75, "deferred") and out.startswith(b"4.4.7 "), out
    assert took < 1 + 2


def test_no_file_descriptors_left_defers() -> None:
    exhaust = ("import resource, os\n"
               "import spamdrill.deliver.main, spamdrill.deliver.run, spamdrill.lean\n"
               "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
               "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))\n"
               "held = []\n"
               "while True:\n"
               "    try:\n        held.append(os.open('/dev/null', os.O_RDONLY))\n"
               "    except OSError:\n        break")
    code, out, action, _ = deliver(*sh("cat >/dev/null"), prefix=shim(exhaust))
    assert (code, action) == (75, "deferred") and out.startswith(b"4."), out


def test_crash_while_the_mda_runs_kills_its_group_and_defers(
        tmp_path: Path, syslog_socket: tuple[str, socket.socket]) -> None:
    """Whatever goes wrong inside the wrapper: 4.3.0 and 75, never 1, and nothing of the
    MDA's left running (it would deliver after Postfix was told to retry)."""
    crash = ("import signal\n"
             "def _boom(*a):\n    raise RuntimeError('injected fault')\n"
             "signal.signal(signal.SIGUSR1, _boom)")
    pidfile = tmp_path / "mda.pid"
    path, server = syslog_socket
    proc = subprocess.Popen(
        [*shim(crash), f"--syslog-socket={path}", "--queue-id=CRASH1",
         *sh('echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 60', str(pidfile))],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 30
        while not pidfile.exists():  # readiness: the MDA says it runs
            assert proc.poll() is None and time.monotonic() < end
            time.sleep(0.01)
        mda = int(pidfile.read_text())
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 75, out
    assert out.startswith(b"4.3.0 ") and b"injected fault" in out and out.count(b"\n") == 1
    assert not alive(mda)
    line = one_line(server)
    assert "CRASH1:" in line and "outcome=defer" in line and "injected fault" in line


# -- finding 2: a slow policy regex defeated the deadline ---------------------------------

def test_slow_rule_regex_is_bounded_by_the_deadline(tmp_path: Path) -> None:
    cfg = tmp_path / "deliver.toml"
    cfg.write_text('deadline = 2\n[[rule]]\nstatus = [1]\noutput = "(a+)+$"\n'
                   'action = "bounce"\ndsn = "5.3.0"\n')
    code, out, action, took = deliver(
        f"--config={cfg}", *sh('cat >/dev/null; printf "%s!" "$1"; exit 1', "a" * 36),
        timeout=60)
    assert took < 2 + 2, took
    assert (code, action) == (75, "deferred") and out.startswith(b"4.4.7 "), out


# -- finding 3: exit 0 was trusted blindly ------------------------------------------------

@pytest.mark.parametrize("size", [8, 1 << 20], ids=["fits-the-pipe", "1MiB"])
def test_exit_0_without_reading_the_message_defers(size: int) -> None:
    code, out, action, _ = deliver("--", "/bin/true", stdin=b"x" * size)
    assert (code, action) == (75, "deferred"), out
    assert out.startswith(b"4.3.0 ") and b"did not read" in out


def test_exit_0_after_handing_input_to_a_killed_background_job_defers(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    code, out, action, _ = deliver(*sh('(sleep 1; cat > "$1") & exit 0', str(kept)),
                                   stdin=b"x" * 100_000)
    assert (code, action) == (75, "deferred"), out
    assert not kept.exists() or kept.stat().st_size < 100_000


def test_group_members_killed_after_a_success_are_logged(
        syslog_socket: tuple[str, socket.socket]) -> None:
    path, server = syslog_socket
    code, _out, action, _ = deliver(f"--syslog-socket={path}",
                                    *sh("cat >/dev/null; sleep 60 & exit 0"))
    assert (code, action) == (0, "delivered")
    line = one_line(server)
    assert "outcome=deliver" in line and "killed-leftovers" in line


def test_a_reading_mda_that_exits_0_is_delivered_and_not_flagged(
        syslog_socket: tuple[str, socket.socket]) -> None:
    path, server = syslog_socket
    code, _out, _action, _ = deliver(f"--syslog-socket={path}", *sh("cat >/dev/null"),
                                     stdin=b"x" * (1 << 20))
    assert code == 0
    assert "killed-leftovers" not in one_line(server)


# -- finding 4: syslog on every exit path, every field bounded ----------------------------

@pytest.mark.parametrize("args", [
    ["--bogus", "--", "/bin/true"],
    ["--deadline=soon", "--", "/bin/true"],
    ["--config=/nonexistent/deliver.toml", "--", "/bin/true"],
    [],
    ["--deadline=1", "--", "/bin/sleep", "60"],
], ids=["usage", "bad-deadline", "missing-config", "no-mda", "deadline"])
def test_every_exit_path_logs_one_line_with_its_reason(
        args: list[str], syslog_socket: tuple[str, socket.socket]) -> None:
    path, server = syslog_socket
    code, out, _action, _ = deliver(f"--syslog-socket={path}", "--queue-id=QID1", *args)
    assert code == 75
    line = one_line(server)
    assert line.startswith("<22>") and "QID1:" in line and "outcome=defer" in line
    reason = out.decode().split(" ", 1)[1].strip()[:40]
    assert "reason=" in line and reason in line, (line, out)


def test_huge_fields_are_cut_so_the_line_is_never_dropped(
        syslog_socket: tuple[str, socket.socket]) -> None:
    path, server = syslog_socket
    huge = "r" * 130_000  # each argument may hold 128 KiB; three make a 390 kB line
    code, _out, _action, _ = deliver(f"--syslog-socket={path}", f"--recipient={huge}@x",
                                     f"--sender={huge}", f"--queue-id={huge}",
                                     *sh("cat >/dev/null"))
    assert code == 0
    line = one_line(server)
    assert len(line.encode()) <= 2048 and "outcome=deliver" in line and "to=<rrr" in line


# -- finding 6: rules that turn a transient failure into a bounce -------------------------

@pytest.mark.parametrize("rule", [
    'status = [75]\naction = "bounce"\ndsn = "5.2.2"\n',
    'action = "bounce"\ndsn = "5.3.0"\noutput = "anything"\n',  # any status: 75 too
])
def test_rule_bouncing_a_transient_status_is_refused_unless_marked(
        rule: str, tmp_path: Path) -> None:
    cfg = tmp_path / "deliver.toml"
    cfg.write_text("[[rule]]\n" + rule)
    code, out, action, _ = deliver(f"--config={cfg}",
                                   *sh('cat >/dev/null; echo anything; exit 75'))
    assert (code, action) == (75, "deferred") and out.startswith(b"4.3.5 "), out
    assert b"bounce_transient" in out
    cfg.write_text("[[rule]]\n" + rule + "bounce_transient = true\n")
    code, out, action, _ = deliver(f"--config={cfg}",
                                   *sh('cat >/dev/null; echo anything; exit 75'))
    assert (code, action) == (69, "bounced") and out.startswith(b"5."), out


def test_status_true_is_a_type_error(tmp_path: Path) -> None:
    cfg = tmp_path / "deliver.toml"
    cfg.write_text('[[rule]]\nstatus = [true]\naction = "defer"\ndsn = "4.3.0"\n')
    check = subprocess.run([*WRAPPER, f"--config={cfg}", "--check-config"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and "status" in check.stderr, check.stdout


# -- the launcher: a package it cannot load must defer, not bounce -------------------------

def test_launcher_that_cannot_load_the_package_defers(tmp_path: Path) -> None:
    from spamdrill.deliver.admin import launcher_text

    launcher = tmp_path / "spamdrill-deliver"
    launcher.write_text(launcher_text(sys.executable, str(tmp_path / "gone")))
    launcher.chmod(0o755)
    done = subprocess.run([str(launcher), "--", "/bin/true"], input=b"m\n",
                          capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 75, done
    assert done.stdout.startswith(b"4.3.5 ") and done.stdout.count(b"\n") == 1
    assert not done.stderr


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-zero"])
def test_config_that_is_no_regular_file_defers_at_once(kind: str, tmp_path: Path) -> None:
    """A FIFO would block open() forever, /dev/zero would never end: neither may hold a
    delivery past its deadline."""
    cfg = tmp_path / "deliver.toml"
    if kind == "fifo":
        os.mkfifo(cfg)
    elif kind == "directory":
        cfg.mkdir()
    else:
        cfg = Path("/dev/zero")
    code, out, action, took = deliver(f"--config={cfg}", "--deadline=2",
                                      *sh("cat >/dev/null"), timeout=60)
    assert (code, action) == (75, "deferred") and out.startswith(b"4.3.5 "), out
    assert took < 2 + 2


@pytest.mark.parametrize("mode", [["--help"], ["--check-config"], ["--explain", "75", "x"],
                                  ["--make-launcher", "/nonexistent/spamdrill-deliver"]])
def test_admin_modes_given_to_a_delivery_defer(mode: list[str], tmp_path: Path) -> None:
    """They print and exit 0, which pipe(8) takes as delivered: in a master.cf line that
    would lose every message."""
    ran = tmp_path / "ran"
    code, out, action, _ = deliver(*mode, *sh('touch "$1"; cat >/dev/null', str(ran)))
    assert (code, action) == (75, "deferred") and out.startswith(b"4.3.5 "), out
    assert not ran.exists()
    # from a terminal, a script or ssh (no message waiting) they work as before
    done = subprocess.run([*WRAPPER, *mode], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60)
    assert done.returncode in (0, 1) and not done.stdout.startswith(b"4.3.5")
