"""spamdrill-spamc's core (sans-IO) and its I/O against an in-process fake spamd.

The promises: spamc 4.0.1's request, reading and exit status (from libspamc.c/spamc.c);
every wait inside one deadline; and for any failure at any byte of the exchange the output
is the message as it came in, byte for byte, or spamd's complete answer, never anything
in between.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill.proto import spamd_wire
from spamdrill.spamc import args as spamc_args
from spamdrill.spamc import core, deadline, keep
from spamdrill.spamc import main as spamc_main
from spamdrill.spamc import wire as spamc_wire

pytestmark = pytest.mark.unit

MESSAGE = b"From: a@lab.test\r\nMessage-ID: <m1@lab.test>\r\nSubject: hi\r\n\r\nhello\r\n"
SPAM = {"Spam": "True ; 1000.0 / 5.0"}
HAM = {"Spam": "False ; 0.5 / 5.0"}


def mode(*flags: str) -> core.Mode:
    return spamc_args.parse(list(flags))[0]


def reply(body: bytes, headers: dict[str, str] | None = None) -> bytes:
    return spamd_wire.build_reply(0, "EX_OK", HAM if headers is None else headers, body)


# --- flags ------------------------------------------------------------------------------

def test_flags_are_read_by_the_one_spamc_parser() -> None:
    m = mode("-d", "a,b", "-p", "784", "-t", "5", "-n", "2", "--connect-retries", "4",
             "--retry-sleep=3", "--filter-retries", "2", "-x", "-X", "-E", "-u", "bob",
             "-H", "-s", "1000", "-l", "--deadline", "30")
    assert (m.hosts, m.port, m.timeout, m.connect_timeout, m.connect_retries) == \
        (("a", "b"), 784, 5, 2, 4)
    assert (m.retry_sleep, m.filter_retries, m.safe_fallback, m.unavail_tempfail) == \
        (3, 2, False, True)
    assert (m.use_exit_code, m.user, m.randomize, m.max_size, m.log_to_stderr, m.deadline) \
        == (True, "bob", True, 1000, True, 30)
    assert mode("-c", "-R").verb == "CHECK"  # message_filter's order
    assert mode("-y", "-R").verb == "REPORT"
    assert mode("-X", "-x").unavail_tempfail is False  # -X counts only after -x


@pytest.mark.parametrize("flags", [["-L", "spam"], ["-C", "report"], ["-K"], ["-S"],
                                   ["-z"], ["--headers"], ["-e", "/bin/cat"], ["-B"]])
def test_flags_that_are_not_a_check_are_refused_in_one_line(flags: list[str]) -> None:
    with pytest.raises(spamc_args.Usage) as err:
        mode(*flags)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("flags", [["--deadline", "0"], ["--deadline=-1"], ["--deadline=x"],
                                   ["--deadline"], ["-t", "soon"], ["--connect-retry", "2"],
                                   ["--slow=1"]])
def test_bad_flags_exit_64_with_one_line_and_no_output(
        flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert spamc_main.main(flags, time.monotonic()) == 64  # stdin is never read
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("spamdrill-spamc: ")


def test_the_command_refuses_in_one_line_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "spamdrill.spamc", "-L", "spam"],
                          input=MESSAGE, capture_output=True, timeout=30)
    assert (done.returncode, done.stdout) == (64, b""), done
    assert done.stderr == b"spamdrill-spamc: learning (-L) is not a check: use spamc -L\n"


# --- the request and the reply ------------------------------------------------------------

def test_the_request_is_spamcs_bytes() -> None:
    assert core.build_request(mode("-c"), "bob", b"x") == \
        b"CHECK SPAMC/1.5\r\nUser: bob\r\nContent-length: 1\r\n\r\nx"
    assert core.build_request(mode(), None, b"") == \
        b"PROCESS SPAMC/1.5\r\nContent-length: 0\r\n\r\n"


def test_a_healthy_reply_for_each_verb() -> None:
    body = b"Subject: scanned\r\n\r\nhello\r\n"
    j = core.judge(reply(body, SPAM), True, mode(), 1000)
    assert (j.code, j.out, j.is_spam) == (0, body, 1)
    assert core.judge(reply(b"", SPAM), False, mode("-c"), 1000).out == b"1000.0/5.0\n"
    assert core.judge(reply(b"report\r\n", HAM), True, mode("-R"), 1000).out == \
        b"0.5/5.0\nreport\r\n"
    assert core.judge(reply(b"", HAM), True, mode("-r"), 1000).out == b""  # ham: nothing
    assert core.judge(reply(b"GTUBE\r\n", SPAM), True, mode("-r"), 1000).out == \
        b"1000.0/5.0\nGTUBE\r\n"
    assert core.judge(reply(b"", HAM), True, mode("-y"), 1000).code == 0


@pytest.mark.parametrize(("data", "complete", "code", "stage"), [
    (b"", True, core.EX_IOERR, "first-line"),
    (b"SPAMD/1.1 0 EX_OK", False, core.EX_IOERR, "first-line"),
    (b"HTTP/1.1 200 OK\r\n\r\n", True, core.EX_PROTOCOL, "status"),
    (b"SPAMD/0.9 0 EX_OK\r\n\r\n", True, core.EX_PROTOCOL, "status"),
    (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\n", True, core.EX_IOERR, "headers"),
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0 / 5\r\n\r\nbody", True, core.EX_PROTOCOL,
     "headers"),  # no Content-length
    (b"SPAMD/1.1 0 EX_OK\r\nContent-length: -1\r\n\r\n", True, core.EX_PROTOCOL, "headers"),
    (reply(b"hello")[:-1], True, core.EX_PROTOCOL, "body"),
    (reply(b"hello")[:-1], False, core.EX_IOERR, "body"),
    (reply(b"hello") + b"!", True, core.EX_PROTOCOL, "body"),
    (reply(b""), True, core.EX_PROTOCOL, "body"),  # an empty "success"
    (reply(b"hello", {}), True, core.EX_PROTOCOL, "body"),  # no verdict
    (b"SPAMD/1.1 0 " + b"x" * 9000 + b"\r\n", True, core.EX_TOOBIG, "first-line"),
])
def test_a_reply_spamc_would_not_take_is_a_failure(data: bytes, complete: bool, code: int,
                                                   stage: str) -> None:
    j = core.judge(data, complete, mode(), 1000)
    assert (j.code, j.stage) == (code, stage), j


def test_a_reply_larger_than_spamc_takes_is_too_big() -> None:
    big = b"x" * (100 + core.EXPANSION_ALLOWANCE + 1)
    assert core.judge(reply(big), True, mode(), 100).code == core.EX_TOOBIG


def test_only_a_first_line_failure_is_filter_retried() -> None:
    assert core.judge(b"SPAMD/1.1", True, mode(), 10).retryable
    assert not core.judge(b"SPAMD/1.1 0 OK\r\n", True, mode(), 10).retryable


@pytest.mark.parametrize(("text", "shown"), [
    ("5.0", "5.0"), ("-0.5", "-0.5"), ("1000", "1000.0"), ("4.95", "4.9"), ("0.05", "0.1"),
    ("2.25", "2.2"), ("x", "0.0"), ("-3.75", "-3.8"), ("12.3456", "12.3")])
def test_scores_print_as_libspamcs_float_parser_reads_them(text: str, shown: str) -> None:
    """The expected strings are what libspamc.c's _locale_safe_string_to_float, compiled,
    prints with %.1f: single precision, so 4.95 is 4.9."""
    assert (b"%.1f" % core.safe_float(text)).decode() == shown


# --- spamc's outcome ----------------------------------------------------------------------

def test_the_outcome_is_spamc_mains() -> None:
    ok = core.Judged(0, "done", out=b"scanned", is_spam=core.EX_ISSPAM)
    assert core.finish(mode(), MESSAGE, 0, ok) == (b"scanned", 0)
    assert core.finish(mode("-E"), MESSAGE, 0, ok) == (b"scanned", 1)
    assert core.finish(mode("-c"), MESSAGE, 0, ok) == (b"scanned", 1)
    assert core.finish(mode(), MESSAGE, core.EX_UNAVAILABLE, None) == (MESSAGE, 0)
    assert core.finish(mode("-x"), MESSAGE, core.EX_UNAVAILABLE, None) == (b"", 69)
    assert core.finish(mode("-x", "-X"), MESSAGE, core.EX_UNAVAILABLE, None) == (b"", 75)
    assert core.finish(mode("-x", "-X"), MESSAGE, core.EX_IOERR, None) == (b"", 74)
    assert core.finish(mode("-x"), MESSAGE, core.EX_TOOBIG, None) == (MESSAGE, 0)
    assert core.finish(mode("-c"), MESSAGE, core.EX_IOERR, None) == (b"0/0\n", 0)
    assert core.finish(mode("-R", "-x"), MESSAGE, core.EX_IOERR, None) == (b"0/0\n", 74)
    assert core.finish(mode("-y"), MESSAGE, core.EX_IOERR, None) == (b"\n", 0)


def test_host_order_rotates_with_h_and_x_keeps_one() -> None:
    hosts = [[0], [1], [2]]
    assert core.host_order(hosts, False, True, 7) == hosts
    assert core.host_order(hosts, True, True, 7) == [[1], [2], [0]]
    assert core.host_order(hosts, True, False, 8) == [[2]]


# --- the deadline -------------------------------------------------------------------------

def test_wait_and_sleep_are_cut_at_the_deadline() -> None:
    assert deadline.wait_for(0, 10, 3) == (3, False)
    assert deadline.wait_for(8, 10, 3) == (2, True)
    assert deadline.wait_for(0, core.INF, 0) == (core.INF, False)
    assert deadline.wait_for(11, 10, 3) == (0, True)
    assert deadline.sleep_for(0, 10, 1) == 1
    assert deadline.sleep_for(9.5, 10, 1) is None  # the try after it could not start


def drive(m: core.Mode, outcomes: list[str], start: float = 100.0
          ) -> tuple[deadline.Result, float, list[str]]:
    """Run the core against a fake clock where every action takes as long as it may:
    a failed connect its whole timeout ("refused" at once), a talk its whole bound."""
    now = start
    steps = deadline.check(m, b"req", [[0], [1]] if len(m.hosts) > 1 else [[0]], start)
    seen: list[str] = []
    pending: deadline.Reply | None = None
    script = iter(outcomes)
    try:
        while True:
            action = steps.send(pending) if pending is not None else next(steps)
            if isinstance(action, deadline.Sleep):
                now += action.seconds
                seen.append(f"sleep {action.seconds:g}")
                pending = now
                continue
            what = next(script, "silent")
            if isinstance(action, deadline.Connect):
                seen.append(f"connect {action.timeout:g}")
                if what == "refused":
                    pending = (core.ECONNREFUSED, now)
                elif what == "queue-full":
                    now += action.timeout
                    pending = (-1 if action.by_deadline else core.EINTR, now)
                else:
                    pending = (0, now)
                continue
            bound = min(action.idle or core.INF, action.end - now)
            if what == "drip":  # a byte just inside -t, forever: only the deadline ends it
                now = action.end
                pending = deadline.Heard(b"SPAMD/1.1 0 ", False, "deadline", 3, now)
            elif what == "healthy":
                pending = deadline.Heard(reply(b"ok"), True, "eof", 3, now)
            else:
                now += bound
                how = "deadline" if now >= action.end else "idle"
                pending = deadline.Heard(b"", False, how, 3, now)
            seen.append(f"talk {what}")
    except StopIteration as done:
        return done.value, now, seen


def test_a_full_queue_counts_t_three_times_in_spamc_and_once_in_the_deadline() -> None:
    m = mode("-t", "100", "-d", "127.0.0.1")
    result, end, seen = drive(m, ["queue-full"] * 3)
    assert (end - 100, result.code) == (302, core.EX_SOFTWARE)  # the field report's 302 s
    m.deadline = 60
    result, end, seen = drive(m, ["queue-full"] * 3)
    assert end - 100 <= 60 and result.deadline_hit, seen


def test_a_drip_is_bounded_only_by_the_deadline() -> None:
    m = mode("-t", "3", "--deadline", "20")
    result, end, _ = drive(m, ["ok", "drip"])
    assert (end - 100, result.code, result.deadline_hit) == (20, core.EX_TEMPFAIL, True)


def test_a_refused_first_host_costs_no_sleep_and_the_second_answers() -> None:
    m = mode("-d", "a,b")
    result, end, seen = drive(m, ["refused", "ok", "healthy"])
    assert (result.code, end, seen) == (0, 100, ["connect 127", "connect 127",
                                                 "talk healthy"])


def test_filter_retries_rotate_hosts_and_sleep_between() -> None:
    m = mode("-d", "a,b", "-t", "5", "--filter-retries", "3")
    result, end, seen = drive(m, ["ok", "silent", "ok", "silent", "ok", "silent"])
    assert (result.code, end - 100) == (core.EX_IOERR, 3 * 5 + 2 * 1), seen


FAILURES = st.sampled_from(["refused", "queue-full", "ok", "silent", "drip", "healthy"])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 30), st.integers(0, 6), st.integers(0, 5),
       st.integers(0, 4), st.integers(0, 5), st.booleans(), st.floats(0.5, 400),
       st.lists(FAILURES, max_size=40))
def test_any_flags_and_failures_end_within_the_deadline(
        t: int, n: int, retries: int, sleep: int, filter_retries: int, filter_sleep: int,
        two_hosts: bool, deadline: float, outcomes: list[str]) -> None:
    flags = ["-t", str(t), "-n", str(n), "--connect-retries", str(retries), "--retry-sleep",
             str(sleep), "--filter-retries", str(filter_retries), "--filter-retry-sleep",
             str(filter_sleep), "--deadline", repr(deadline)]
    if two_hosts:
        flags += ["-d", "a,b"]
    result, end, seen = drive(mode(*flags), outcomes)
    assert end - 100 <= deadline + 1e-9, seen
    assert result.code == 0 or result.judged is None or result.judged.code != 0


# --- any failure at any byte, through the real I/O -------------------------------------------

class FakeSpamd:
    """A spamd on a UNIX socket that reads the request, sends ``data`` and then ends as
    told: "close" (EOF), "reset" (closes with the request unread), "stall" (holds)."""

    def __init__(self, path: str, data: bytes, end: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.data, self.end = data, end
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            got = b""
            while self.end != "reset" and not spamd_wire.request_complete(got):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
            conn.sendall(self.data)
            if self.end == "stall":
                self.done.wait(10)

    def close(self) -> None:
        self.done.set()
        self.sock.close()
        self.thread.join(5)


BODIES = st.binary(min_size=1, max_size=300).map(lambda b: b"Subject: s\r\n\r\n" + b)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES, st.integers(0, 10_000), st.sampled_from(["close", "reset", "stall"]),
       st.sampled_from([[], ["-x"], ["-E"]]), st.binary(min_size=1, max_size=400))
def test_any_failure_at_any_byte_gives_the_input_or_spamds_whole_answer(
        body: bytes, cut: int, end: str, flags: list[str], message: bytes) -> None:
    answer = reply(body, SPAM)
    data = answer[:cut % (len(answer) + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spamd.sock")
        fake = FakeSpamd(path, data, end)
        try:
            m = mode("-U", path, "-t", "1", "--deadline", "0.3", *flags)
            m.timeout = 0.05
            start = time.monotonic()
            result = spamc_main.check_message(m, message, spamc_wire.Wire([]), start)
            out, code = core.finish(m, message, result.code, result.judged)
            took = time.monotonic() - start
        finally:
            fake.close()
    scanned = (out, code) == (body, 1 if "-E" in flags else 0)
    # -x: nothing and a failure status (maildrop keeps the message); else the message, 0
    failed = (out == b"" and code != 0) if "-x" in flags else (out, code) == (message, 0)
    if data == answer and end != "reset":
        assert scanned
    elif data == answer:  # a reset may discard what was sent before it
        assert scanned or failed
    else:
        assert failed
    assert took < 0.3 + 0.2


# --- keeping the slow message --------------------------------------------------------------

def test_message_id_is_found_unfolded_and_printable() -> None:
    assert keep.message_id(MESSAGE) == "<m1@lab.test>"
    assert keep.message_id(b"Message-Id:\n <a\x1b@b>\n\nbody") == "<a?@b>"
    assert keep.message_id(b"Subject: x\n\nMessage-ID: <in-body>") == ""


def test_kept_files_are_0600_and_a_symlinked_dir_is_refused(tmp_path: Path) -> None:
    m = mode("-d", "h", "--deadline", "5")
    info = keep.record(m, [{"connect": "h:783"}], 10, 0, "deadline", 5.0, MESSAGE, 0)
    said = keep.store(str(tmp_path), MESSAGE, info)
    assert said.startswith(" kept=")
    eml = Path(said.split("=", 1)[1])
    assert eml.read_bytes() == MESSAGE and (eml.stat().st_mode & 0o777) == 0o600
    doc = eml.with_suffix(".json")
    assert (doc.stat().st_mode & 0o777) == 0o600 and b"<m1@lab.test>" in doc.read_bytes()
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(tmp_path)
    assert "symlink" in keep.store(str(link), MESSAGE, info)
    os.chmod(tmp_path, 0o777)
    assert "writable by others" in keep.store(str(tmp_path), MESSAGE, info)


def test_keep_bounds() -> None:
    assert keep.admit(0, 0, 10) == ""
    assert keep.admit(keep.MAX_COUNT, 0, 10)
    assert keep.admit(0, keep.MAX_TOTAL - 5, 10)


# --- the budget knows it --------------------------------------------------------------------

def test_maildroprc_reads_spamdrill_spamc_as_spamc_plus_its_deadline() -> None:
    from spamdrill.system import maildroprc

    rc = maildroprc.parse('xfilter "/usr/local/libexec/spamdrill-spamc --deadline=120 '
                          '--keep-slow /var/spool/slow -d spamd -t 100 -u $LOGNAME"\n',
                          "/etc/maildroprc")
    [x] = rc.spamc_filters
    assert (x.program, x.deadline) == ("spamdrill-spamc", 120.0)
    assert [w for w, _ in x.spamc or []] == ["-d", "spamd", "-t", "100", "-u", "${LOGNAME}"]
    [plain] = maildroprc.parse('xfilter "/usr/bin/spamc -t 100"\n', "rc").spamc_filters
    assert (plain.program, plain.deadline) == ("spamc", None)


def test_the_budget_bounds_every_mode_by_the_deadline_where_spamc_cannot() -> None:
    """The field report's -t 100: the drip is unbounded and a dropped SYN costs 302 s,
    past maildrop's 300 s; with spamdrill-spamc --deadline=120 every mode ends by 121 s,
    and what spamd answers in time is still a scan."""
    from spamdrill.budget import model
    from spamdrill.budget import spamc as sm

    spamc_only = {r.mode: r for r in model.evaluate(model.Setup(spamc=sm.parse_args(
        "-d spamd -t 100")))}
    assert spamc_only["spamd-slow-drip"].spamc_s is None
    assert spamc_only["spamd-accept-queue-full"].spamc_s == 302
    bounded = model.Setup(spamc=sm.parse_args("-d spamd -t 100"), spamc_deadline=120)
    results = {r.mode: r for r in model.evaluate(bounded)}
    assert all(r.worst_s is not None and r.worst_s <= 121 for r in results.values())
    assert not any(r.violations for r in results.values())
    drip = results["spamd-slow-drip"]
    assert (drip.fires_first, drip.outcome) == ("spamdrill-spamc --deadline",
                                                "delivered unscanned")
    assert results["spamd-refused"].spamc_s == spamc_only["spamd-refused"].spamc_s
    assert any("spamdrill-spamc --deadline" in row["layer"] for row in model.limits(bounded))
    x = model.Setup(spamc=sm.parse_args("-d spamd -t 100 -x"), spamc_deadline=120)
    assert {r.mode: r.outcome for r in model.evaluate(x)}["spamd-slow-drip"] == "deferred"


# --- stdin under the deadline ---------------------------------------------------------------

@pytest.mark.parametrize("sent", [b"", MESSAGE[:20]], ids=["nothing", "part"])
def test_reading_stdin_ends_at_the_deadline(sent: bytes) -> None:
    """A writer that stalls (part of the message, then neither more nor an end of file)
    cannot hold the read past the deadline; one that finishes is read whole."""
    r, w = os.pipe()
    try:
        os.write(w, sent)
        t0 = time.monotonic()
        assert spamc_main.read_message(1000, t0 + 0.2, r) == (sent, False)
        assert 0.2 <= time.monotonic() - t0 < 5
        os.write(w, MESSAGE[len(sent):])
        os.close(w)
        w = -1
        assert spamc_main.read_message(1000, time.monotonic() + 5, r) == (
            MESSAGE[len(sent):], True)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_passing_an_oversized_message_through_ends_at_the_deadline() -> None:
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        os.write(w, b"the rest, and then a stall")
        assert not spamc_main.copy_rest(r, out_w, time.monotonic() + 0.2)
        assert os.read(out_r, 100) == b"the rest, and then a stall"
    finally:
        for fd in (r, w, out_r, out_w):
            os.close(fd)


def test_a_writer_that_stalls_ends_the_check_at_the_deadline_exit_75() -> None:
    """The program under a stalled writer: nothing on stdout (a prefix would be a truncated
    message), exit 75 (maildrop keeps the mail, Postfix retries), one line saying so."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proc = subprocess.Popen([sys.executable, "-m", "spamdrill.spamc", "-d", "127.0.0.1",
                                 "-p", str(closed.getsockname()[1]), "--deadline", "0.5",
                                 "-l"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(MESSAGE[:20])
            proc.stdin.flush()  # and then nothing, and no end of file
            code = proc.wait(timeout=20)
        finally:
            proc.kill()
            proc.wait()
            proc.stdin.close()
        stdout, stderr = proc.stdout.read(), proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    assert (code, stdout) == (75, b""), stderr
    assert "deadline: reading the message from stdin (20 bytes" in stderr, stderr
    assert stderr.count("\n") == 1


# --- the launcher ---------------------------------------------------------------------------

def test_the_launcher_checks_and_a_broken_one_still_fails_open(tmp_path: Path) -> None:
    from spamdrill.spamc import launcher

    path = tmp_path / "spamdrill-spamc"
    assert launcher.make(str(path), "") == 0
    done = subprocess.run([str(path), "-d", "127.0.0.1", "-p", "1", "--connect-retries", "1",
                           "-l"], input=MESSAGE, capture_output=True, timeout=30)
    assert (done.stdout, done.returncode) == (MESSAGE, 0), done.stderr
    foreign = tmp_path / "other"
    foreign.write_text("#!/bin/sh\n")
    assert launcher.make(str(foreign), "") == 1 and foreign.read_text() == "#!/bin/sh\n"
    broken = tmp_path / "broken"
    broken.write_text(launcher.text(sys.executable, str(tmp_path / "moved")))
    broken.chmod(0o755)
    done = subprocess.run([str(broken), "-d", "x"], input=MESSAGE, capture_output=True,
                          timeout=30)
    assert (done.stdout, done.returncode) == (MESSAGE, 0)
    done = subprocess.run([str(broken), "-x"], input=MESSAGE, capture_output=True, timeout=30)
    assert (done.stdout, done.returncode) == (b"", 75)
