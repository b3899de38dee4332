"""spamdrill-deliver against stand-in MDAs: every way an MDA can end, judged the way
Postfix's pipe(8) judges the wrapper (spamdrill.proto.postfix_pipe, from pipe_command.c)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import syslog_sink, with_syslog

from spamdrill.proto.postfix_pipe import judge

pytestmark = pytest.mark.lab

WRAPPER = [sys.executable, "-m", "spamdrill.deliver"]

pytestmark = pytest.mark.lab  # the real wrapper, stand-in or real MDAs


def deliver(*args: str | bytes, stdin: bytes = b"message\n", timeout: float = 60,
            ) -> tuple[int, bytes, str]:
    """Run the real wrapper; return its exit status, its output, Postfix's verdict."""
    with syslog_sink() as log:
        done = subprocess.run([*WRAPPER, *with_syslog(args, log)], input=stdin,
                              capture_output=True, timeout=timeout)
    output = done.stdout + done.stderr  # pipe(8) reads both from one pipe
    verdict = judge(exit_status=done.returncode, signal=None, output=output)
    return done.returncode, output, verdict.action


def sh(script: str, *args: str) -> list[str]:
    return ["--", "/bin/sh", "-c", script, "sh", *args]


def test_every_exit_status_is_judged_safely() -> None:
    seen = {}
    for status in range(256):
        code, out, action = deliver(*sh('cat >/dev/null; exit "$1"', str(status)))
        seen[status] = action
        if status == 0:
            assert (code, out, action) == (0, b"", "delivered")
        elif status == 67:  # EX_NOUSER: the one permanent failure in the table
            assert action == "bounced" and out.startswith(b"5.1.1 "), out
        else:
            assert code == 75 and action == "deferred", (status, code, out)
            assert out.startswith(b"4.3.0 ") and str(status).encode() in out
    assert [s for s, a in seen.items() if a == "delivered"] == [0]


CATCHABLE = sorted(set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP})


@pytest.mark.parametrize("sig", [*CATCHABLE, signal.SIGKILL], ids=lambda s: f"sig{int(s)}")
def test_mda_dying_of_a_signal_is_deferred(sig: int, tmp_path: Path) -> None:
    survived = tmp_path / "survived"
    code, out, action = deliver(
        "--deadline=5", *sh('cat >/dev/null; kill -"$1" $$; echo yes > "$2"', str(int(sig)),
                            str(survived)))
    if survived.exists():
        # the signal's default action is to ignore it: the MDA really finished, exit 0
        assert (code, action) == (0, "delivered")
    else:
        # killed, or stopped and then killed at the deadline: never delivered, never bounced
        assert code == 75 and action == "deferred", (sig, out)
        assert out.startswith(b"4.")


@pytest.mark.parametrize("mda", ["/nonexistent/maildrop", "/etc/hostname", "/tmp"])
def test_mda_that_cannot_be_executed_is_deferred(mda: str) -> None:
    code, out, action = deliver("--", mda, "-d", "alice")
    assert code == 75 and action == "deferred"
    assert out.startswith(b"4.3.5 cannot run the MDA")


@pytest.mark.parametrize("status,text,args,expected", [
    (75, "maildrop: Timeout quota exceeded.", [], ("deferred", b"4.4.7 ")),
    (75, "maildrop: maildir over quota.", [], ("deferred", b"4.2.2 ")),
    (75, "maildrop: maildir over quota.", ["--over-quota=bounce"], ("bounced", b"5.2.2 ")),
    (77, "maildrop: maildir over quota.", [], ("deferred", b"4.2.2 ")),
    (67, "ERR: authdaemon: s_connect() failed\nInvalid user specified.", [],
     ("bounced", b"5.1.1 ")),
    (75, "maildrop: Unable to filter message.", [], ("deferred", b"4.3.0 ")),
    (1, "maildrop: Cannot open /home/x/Maildir", [], ("deferred", b"4.3.0 ")),
    (100, "whatever a wrapper says", [], ("deferred", b"4.3.0 ")),
])
def test_maildrop_messages(status: int, text: str, args: list[str],
                           expected: tuple[str, bytes]) -> None:
    _code, out, action = deliver(*args, *sh('printf "%s\\n" "$2" >&2; exit "$1"', str(status),
                                           text))
    assert (action, out[:6]) == expected, out
    assert text.splitlines()[-1].encode() in out  # the MDA's own words follow ours
    assert out.count(b"\n") == 1 and len(out) <= 4096


def test_hang_past_deadline_kills_the_group_and_defers(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    code, out, action = deliver("--deadline=1", *sh('sleep 60 & echo $! > "$1"; wait',
                                                    str(pidfile)))
    assert time.monotonic() - t0 < 30  # bounded by the deadline, far from the sleep
    assert code == 75 and action == "deferred" and out.startswith(b"4.4.7 ")
    assert not _alive(int(pidfile.read_text()))


def test_leftover_child_holding_the_pipe_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    code, _out, action = deliver(*sh('cat >/dev/null; (sleep 60; echo late) & echo $! > "$1"; '
                                     'exit 0', str(pidfile)))
    assert time.monotonic() - t0 < 30
    assert (code, action) == (0, "delivered")
    assert not _alive(int(pidfile.read_text()))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_output_is_capped_for_postfix() -> None:
    _code, out, action = deliver(*sh("head -c 100000 /dev/zero | tr '\\0' x; exit 1"))
    assert action == "deferred" and out.startswith(b"4.3.0 ")
    assert len(out) <= 4096


@pytest.mark.parametrize("args", [["--bogus"], ["--deadline=soon", "--", "/bin/true"],
                                  ["--over-quota=ignore", "--", "/bin/true"], [],
                                  ["--config=/nonexistent.toml", "--", "/bin/true"],
                                  ["--config=/nonexistent/a\nb.toml", "--", "/bin/true"],
                                  ["--explain"]])
def test_usage_and_config_errors_defer_never_bounce(args: list[str]) -> None:
    code, out, action = deliver(*args)
    assert code == 75 and action == "deferred" and out.startswith(b"4.3.5 "), out
    assert out.count(b"\n") == 1


def test_config_file_rules_and_check_config(tmp_path: Path) -> None:
    cfg = tmp_path / "deliver.toml"
    cfg.write_text('deadline = 30\nover_quota = "bounce"\n'
                   '[[rule]]\nname = "disk-full"\nstatus = [73]\noutput = "no space"\n'
                   'action = "defer"\ndsn = "4.3.1"\nreason = "disk full"\n')
    _code, out, action = deliver(f"--config={cfg}", *sh('echo "no space left" >&2; exit 73'))
    assert action == "deferred" and out.startswith(b"4.3.1 disk full")
    check = subprocess.run([*WRAPPER, f"--config={cfg}", "--check-config", "--", "/bin/true"],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "disk-full" in check.stdout and "deadline: 30" in \
        check.stdout
    cfg.write_text('[[rule]]\nstatus = [1]\naction = "deliver"\ndsn = "2.0.0"\n')
    bad = subprocess.run([*WRAPPER, f"--config={cfg}", "--check-config"], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "action must be 'defer' or 'bounce'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_explain() -> None:
    done = subprocess.run([*WRAPPER, "--explain", "75", "maildrop: Timeout quota exceeded."],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert "maildrop-timeout" in done.stdout and "Postfix: deferred (4.4.7)" in done.stdout
    bad = subprocess.run([*WRAPPER, "--explain", "often", "x"], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "cannot read status" in bad.stdout


def test_one_syslog_line_per_delivery(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(10)
        code, _, _ = deliver(f"--syslog-socket={path}", "--recipient=al\nice@x",
                             "--sender=bob@y", "--queue-id=4XyZ", *sh("cat >/dev/null"))
        line = server.recv(65536).decode()
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.recv(65536)  # exactly one line
    assert code == 0
    assert line.startswith("<22>")  # facility mail, severity info
    assert "spamdrill-deliver[" in line and "4XyZ: to=<al\\x0aice@x> from=<bob@y>" in line
    assert "mda status=0 outcome=deliver" in line and "\n" not in line


def test_no_syslog_socket_still_delivers_and_says_so_once(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    done = subprocess.run([*WRAPPER, f"--syslog-socket={missing}", *sh("cat >/dev/null")],
                          input=b"m\n", capture_output=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr.decode() == (f"spamdrill-deliver: no syslog line: {missing}: "
                                    "No such file or directory\n")


def test_site_less_launcher_delivers_defers_and_logs(tmp_path: Path) -> None:
    launcher = tmp_path / "spamdrill-deliver"
    made = subprocess.run([*WRAPPER, "--make-launcher", str(launcher)], capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr
    assert launcher.read_text().splitlines()[0] == f"#!{sys.executable} -IS"
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(10)
        ok = subprocess.run([str(launcher), f"--syslog-socket={path}", "--recipient=al",
                             *sh("cat > /dev/null")], input=b"m\n", capture_output=True)
        assert ok.returncode == 0 and "outcome=deliver" in server.recv(65536).decode()
    failed = subprocess.run([str(launcher), *sh("exit 1")], capture_output=True)
    assert failed.returncode == 75 and failed.stdout.startswith(b"4.")
    # never overwrites a file it did not write (pip's console script, say)
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\n")
    refused = subprocess.run([*WRAPPER, "--make-launcher", str(other)], capture_output=True,
                             text=True)
    assert refused.returncode == 1 and "not a spamdrill-deliver launcher" in refused.stderr
    assert other.read_text() == "#!/bin/sh\n"


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def check_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WRAPPER, "--check-config", *args], capture_output=True,
                          text=True, timeout=60)


def test_check_config_reads_postfix_and_refuses_a_deadline_at_its_time_limit(
        tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "fixed", root)
    cfg = root / "etc/spamdrill/deliver.toml"
    ok = check_config(f"--etc={root}", f"--config={cfg}")
    assert ok.returncode == 0 and "config OK" in ok.stdout, ok.stderr
    assert "deadline 600 s below its time limit 1000 s" in ok.stdout
    for deadline in ("1200", "1000"):  # at the limit is already too late
        cfg.write_text(f"deadline = {deadline}\n")
        bad = check_config(f"--etc={root}", f"--config={cfg}")
        assert bad.returncode == 1 and "config OK" not in bad.stdout
        assert f"{deadline} s is at or above Postfix's time limit for maildrop, 1000 s" in \
            bad.stderr and "main.cf:28" in bad.stderr  # the line that sets it
        assert "Change: deadline = 900 (100 s below)" in bad.stderr
    cfg.write_text("deadline = 600\n")  # a flag in master.cf's argv wins over the file
    master = root / "etc/postfix/master.cf"
    master.write_text(master.read_text().replace("--queue-id=${queue_id}",
                                                 "--queue-id=${queue_id} --deadline=1500"))
    bad = check_config(f"--etc={root}", f"--config={cfg}")
    assert bad.returncode == 1 and "--deadline=1500 in" in bad.stderr


def test_check_config_refuses_several_recipients_per_delivery(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "fixed", root)
    main = root / "etc/postfix/main.cf"
    main.write_text(main.read_text().replace("maildrop_destination_recipient_limit = 1\n",
                                             ""))
    bad = check_config(f"--etc={root}", f"--config={root / 'etc/spamdrill/deliver.toml'}")
    assert bad.returncode == 1, bad.stdout
    assert "maildrop_destination_recipient_limit = 50" in bad.stderr
    assert f"add 'maildrop_destination_recipient_limit = 1' to {main}" in bad.stderr


def test_check_config_says_what_it_could_not_check(tmp_path: Path) -> None:
    given = check_config(f"--etc={EXAMPLES / 'field-report'}")
    assert given.returncode == 1 and "no pipe service" in given.stderr
    assert "runs spamdrill-deliver" in given.stderr
    empty = check_config(f"--etc={tmp_path}")
    assert empty.returncode == 1 and "no main.cf or master.cf" in empty.stderr
    gone = check_config(f"--etc={tmp_path / 'nothing'}")
    assert gone.returncode == 1 and "no such directory" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1
