"""A private Postfix end to end (root): up and down without leftovers, also after the
starter is SIGKILLed; mail through pipe(8) -> wrapper -> real maildrop -> spamc -> spamd;
what each of the field report's wrappers makes of a transient failure, read back from the
real system (Maildirs, queue, the sender's DSNs, Postfix's log)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import new_run_dir

from spamdrill import corpus
from spamdrill.errors import SpamdrillError
from spamdrill.fates import MessageFate
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import outcomes, wrappers
from spamdrill.lab import postfix as pf
from spamdrill.lab.config import LabConfig
from spamdrill.lab.journal import Journal, StopRecord
from spamdrill.lab.layout import Layout
from spamdrill.lab.procs import marked_pids, session_members
from spamdrill.load.smtp import Job, inject
from spamdrill.proto import postfix_log
from spamdrill.vocab import Fate

ROOT = os.geteuid() == 0
pytestmark = [pytest.mark.root, pytest.mark.lab]


def root_or_refused(test: Callable[..., None]) -> Callable[..., None]:
    """As an ordinary user a private Postfix is refused in one line: each test checks
    that instead of its own assertions (none of them is skipped)."""
    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        if ROOT:
            test(*args, **kwargs)
            return
        with pytest.raises(SpamdrillError, match="needs root"):
            pf.up(Path(tempfile.mkdtemp()), pf.Settings(transports=(pf.Transport(
                "t", ("/bin/true",)),)), marker="x")
    return run
WRAPPERS = Path(__file__).parent.parent / "src" / "spamdrill" / "drills" / "wrappers"
TEST_WRAPPERS = Path(__file__).parent / "data" / "wrappers"
DRAIN = 60.0


@pytest.fixture(scope="module")
def lab() -> Iterator[lab_ops.LabState]:
    """One real lab (spamd, MariaDB, DNS, Maildirs) whose mail pipe(8)'s user may write."""
    path = new_run_dir()
    state = lab_ops.up(path, LabConfig())
    try:
        pf.grant_mail(state.layout)
        yield state
    finally:
        pf.down(path)
        lab_ops.down(path)
        shutil.rmtree(path.parent, ignore_errors=True)


def start(lab: lab_ops.LabState, *wrapper: str, name: str = "maildrop") -> pf.State:
    """The lab's Postfix with one maildrop transport behind ``wrapper`` (none: maildrop)."""
    run = Path(lab.run_dir)
    transport = pf.maildrop_transport(pf.Paths.of(run).filter_file, wrapper=wrapper,
                                      name=name)
    return pf.up(run, pf.Settings(transports=(transport,)), marker=lab.marker)


def installed(lab: lab_ops.LabState, name: str) -> str:
    source = TEST_WRAPPERS / name if (TEST_WRAPPERS / name).exists() else WRAPPERS / name
    return str(wrappers.install_wrapper(Path(lab.run_dir), source))


def send(state: pf.State, kinds: list[str], user: str, seed: int) -> list[MessageFate]:
    """Inject one message per kind to ``user``, wait for the queue to drain, judge."""
    msgs = [corpus.make(k, seed * 100 + i, to=f"{user}@{pf.RECIPIENT_DOMAIN}")
            for i, k in enumerate(kinds)]
    sent, _ = inject(state.address, state.port,
                     [Job(m, f"{user}@{pf.RECIPIENT_DOMAIN}") for m in msgs])
    assert all(s.queue_id for s in sent), [s.reply for s in sent]
    pf.wait_drained(state.paths, DRAIN)
    return outcomes.read(Path(state.run_dir), Layout(Path(state.run_dir)).mail_dir, sent)


@contextlib.contextmanager
def unwritable(lab: lab_ops.LabState, user: str) -> Iterator[None]:
    """A transient fault: the user's Maildir belongs to root for a while, so maildrop
    cannot take its lock there and exits 75 (EX_TEMPFAIL); a retry after it heals would
    deliver."""
    maildir = lab.layout.maildir(user)
    nobody = pwd.getpwnam(pf.PIPE_USER)
    os.chown(maildir, 0, 0)
    try:
        yield
    finally:
        os.chown(maildir, nobody.pw_uid, nobody.pw_gid)


def gone(run_dir: Path, state: pf.State) -> list[str]:
    """What is left of a stopped Postfix: processes, queue files, its port."""
    left = []
    if pf.alive(state):
        left.append(f"master {state.pid}")
    if state.ticks is not None and session_members(state.pid, state.ticks):
        left.append(f"session {session_members(state.pid, state.ticks)}")
    marked = list(marked_pids(state.marker, pf.ENV_VAR))
    if marked:
        left.append(f"marked {marked}")
    paths = pf.Paths.of(run_dir)
    files = [str(p) for p in paths.queue.rglob("*") if p.is_file()] \
        if paths.queue.exists() else []
    if files:
        left.append(f"queue files {files}")
    if not pf.port_free(state.address, state.port):
        left.append(f"port {state.port}")
    return left


@pytest.fixture
def bare_run() -> Iterator[Path]:
    """A run directory with no lab in it: Postfix alone."""
    path = new_run_dir()
    path.mkdir(parents=True)
    yield path
    pf.down(path)
    lab_ops.down(path)
    shutil.rmtree(path.parent, ignore_errors=True)


def hold_transport(run: Path) -> pf.Settings:
    """Every delivery runs a command that sleeps: a queue file and a pipe command exist
    while it runs."""
    return pf.Settings(transports=(pf.Transport("maildrop", ("/bin/sleep", "300")),))


def queue_one(state: pf.State) -> None:
    sent, _ = inject(state.address, state.port,
                     [Job(corpus.make("ham", 7), "alice@lab.test")])
    assert sent[0].queue_id, sent[0].reply
    pf.wait_queue(state.paths, lambda q: any(e.queue_name == "active" for e in q), 30,
                  "message in the active queue")


@root_or_refused
def test_up_greets_and_down_leaves_nothing(bare_run: Path) -> None:
    state = pf.up(bare_run, hold_transport(bare_run), marker=uuid.uuid4().hex)
    assert pf.greeting(state.address, state.port)
    assert pf.status(bare_run)[1]
    queue_one(state)
    assert gone(bare_run, state)  # it is running, queue file and all
    stopped = pf.down(bare_run)
    assert "postfix" in stopped and "queue files" in stopped, stopped
    assert gone(bare_run, state) == []
    last = [r for r in Journal(Layout(bare_run).journal).records()
            if getattr(r, "pid", None) == state.pid]
    assert isinstance(last[-1], StopRecord)
    assert pf.status(bare_run) == (None, False)


STARTER = textwrap.dedent("""\
    import json, sys, uuid
    from pathlib import Path
    from spamdrill import corpus
    from spamdrill.lab import postfix as pf
    from spamdrill.load.smtp import Job, inject
    run = Path(sys.argv[1])
    settings = pf.Settings(transports=(pf.Transport("maildrop", ("/bin/sleep", "300")),))
    state = pf.up(run, settings, marker=uuid.uuid4().hex)
    sent, _ = inject(state.address, state.port,
                     [Job(corpus.make("ham", 8), "alice@lab.test")])
    pf.wait_queue(state.paths, lambda q: any(e.queue_name == "active" for e in q), 30, "x")
    print(json.dumps({"pid": state.pid}), flush=True)
    sys.stdin.read()
""")


@root_or_refused
def test_down_after_the_starter_is_sigkilled(bare_run: Path) -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(bare_run)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        line = starter.stdout.readline()
        assert line, "the starter died before Postfix was up"
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
    state = pf.State.load(bare_run)
    assert state is not None and state.pid == json.loads(line)["pid"]
    assert pf.alive(state) and pf.greeting(state.address, state.port)  # orphaned, running
    assert list(marked_pids(state.marker, pf.ENV_VAR))  # the pipe command, too
    # as `lab down` does: every journaled process, stopped from the journal alone
    lab_ops.down(bare_run)
    assert not pf.alive(state)
    pf.down(bare_run)
    assert gone(bare_run, state) == []


def by_id(results: list[MessageFate]) -> dict[str, MessageFate]:
    return {o.id.split("-")[0]: o for o in results}


@root_or_refused
def test_delivered_and_scanned_through_maildrop_spamc_spamd(lab: lab_ops.LabState) -> None:
    state = start(lab)
    results = by_id(send(state, ["ham", "spam"], "alice", seed=1))
    ham, spam = results["ham"], results["spam"]
    assert ham.fate is Fate.DELIVERED and ham.folders == [""], ham
    assert spam.fate is Fate.DELIVERED and spam.folders == [".Spam"], spam
    for o in (ham, spam):
        assert o.scanned and o.intact and o.copies == 1
        assert [(d.status, d.dsn, d.relay) for d in o.log] == [("sent", "2.0.0", "maildrop")]
        delays = o.log[0].delays
        assert delays is not None and delays.transmission > 0  # maildrop + spamc + spamd


@root_or_refused
def test_tempfail_defers_then_is_delivered_once_after_postfix_retries(
        lab: lab_ops.LabState) -> None:
    flag = Path(lab.run_dir) / "postfix" / "tempfail.flag"
    flag.touch()
    state = start(lab, installed(lab, "tempfail_while_flag.sh"), str(flag))
    msg = corpus.make("ham", 301, to="carol@lab.test")
    sent, _ = inject(state.address, state.port, [Job(msg, "carol@lab.test")])
    qid = sent[0].queue_id
    # deferred, with its reason, and queued for another try (between tries "deferred",
    # during one "active"): waited for, not sampled once -- with a core busy, one CI run's
    # first snapshot with the reason showed the message in neither queue (which one was
    # not recorded)
    pf.wait_queue(state.paths, lambda q: any(
        e.queue_id == qid and e.reason and e.queue_name in ("deferred", "active")
        for e in q), DRAIN, "deferral")
    deferred, = outcomes.read(Path(state.run_dir), lab.layout.mail_dir, sent)
    assert deferred.fate is Fate.DEFERRED
    assert "tempfail_while_flag" in deferred.reason, deferred.reason
    flag.unlink()  # the fault heals; Postfix retries on its own timers
    pf.wait_drained(state.paths, DRAIN)
    done, = outcomes.read(Path(state.run_dir), lab.layout.mail_dir, sent)
    assert done.fate is Fate.DELIVERED and done.copies == 1, done
    statuses = [(d.status, d.dsn) for d in done.log]
    assert statuses[0] == ("deferred", "4.3.0") and statuses[-1] == ("sent", "2.0.0")
    assert statuses.count(("sent", "2.0.0")) == 1


@root_or_refused
@pytest.mark.parametrize("wrapper", ["maildrop_wrapper.bash", "maildrop_wrapper_final.pl",
                                     "maildrop_wrapper_final_stderr.pl"])
def test_the_reports_75_to_100_wrappers_bounce_a_transient_failure(
        lab: lab_ops.LabState, wrapper: str) -> None:
    path = installed(lab, wrapper)
    state = start(lab, path)
    with unwritable(lab, "bob"):
        result, = send(state, ["ham"], "bob", seed=400 + len(wrapper))
    assert result.fate is Fate.BOUNCED, result
    assert result.dsn_status == "5.3.0"
    assert f'Command died with status 100: "{path}"' in result.reason, result.reason
    if wrapper != "maildrop_wrapper_final.pl":  # the final one swallows maildrop's words
        assert "maildrop:" in result.reason, result.reason
    assert [d.status for d in result.log] == ["bounced"]


@root_or_refused
def test_spamdrill_deliver_defers_the_same_failure(lab: lab_ops.LabState) -> None:
    """The contrast: the same fault, the project's wrapper: deferred, not bounced."""
    run = Path(lab.run_dir)
    deliver = wrappers.install_deliver(run)
    transport = pf.deliver_transport(pf.Paths.of(run).filter_file,
                                     str(deliver.console_script))
    settings = pf.Settings(transports=(transport,), maximal_backoff=60, minimal_backoff=60)
    state = pf.up(run, settings, marker=lab.marker)
    msg = corpus.make("ham", 501, to="bob@lab.test")
    with unwritable(lab, "bob"):
        sent, _ = inject(state.address, state.port, [Job(msg, "bob@lab.test")])
        pf.wait_queue(state.paths, lambda q: any(e.reason for e in q), DRAIN, "deferral")
        result, = outcomes.read(run, lab.layout.mail_dir, sent)
    assert result.fate is Fate.DEFERRED, result
    assert [d.dsn[0] for d in result.log] == ["4"]
    pf.flush(state.paths)  # healed: retry now rather than in 60 s
    pf.wait_drained(state.paths, DRAIN)
    result, = outcomes.read(run, lab.layout.mail_dir, sent)
    assert result.fate is Fate.DELIVERED and result.copies == 1


@root_or_refused
@pytest.mark.parametrize("wrapper", ["maildrop_wrapper.sh", "maildrop_wrapper_pietro.pl",
                                     "maildrop_wrapper_pietro_75.pl",
                                     "maildrop_wrapper_shellquote.pl"])
def test_wrappers_that_exit_0_on_failure_lose_mail(lab: lab_ops.LabState,
                                                    wrapper: str) -> None:
    state = start(lab, installed(lab, wrapper))
    with unwritable(lab, "bob"):
        result, = send(state, ["ham"], "bob", seed=600 + len(wrapper))
    assert result.fate is Fate.LOST, result
    assert [(d.status, d.dsn) for d in result.log] == [("sent", "2.0.0")]
    assert "status=sent" in result.reason


@root_or_refused
def test_the_ipc_wrapper_passes_maildrops_75_through(lab: lab_ops.LabState) -> None:
    """exit($? >> 8): the report's fourth version defers what maildrop defers."""
    run = Path(lab.run_dir)
    path = installed(lab, "maildrop_wrapper_ipc.pl")
    transport = pf.maildrop_transport(pf.Paths.of(run).filter_file, wrapper=(path,))
    state = pf.up(run, pf.Settings(transports=(transport,), minimal_backoff=60,
                                   maximal_backoff=60), marker=lab.marker)
    msg = corpus.make("ham", 701, to="bob@lab.test")
    with unwritable(lab, "bob"):
        sent, _ = inject(state.address, state.port, [Job(msg, "bob@lab.test")])
        pf.wait_queue(state.paths, lambda q: any(e.reason for e in q), DRAIN, "deferral")
    result, = outcomes.read(run, lab.layout.mail_dir, sent)
    assert result.fate is Fate.DEFERRED and "maildrop:" in result.reason, result


@root_or_refused
def test_maillog_names_every_verdict(lab: lab_ops.LabState) -> None:
    """Postfix's own lines join SMTP accept -> queue id -> pipe verdict -> removal."""
    state = start(lab)
    result, = send(state, ["ham"], "carol", seed=801)
    story = outcomes.log_stories(pf.Paths.of(Path(lab.run_dir)))[result.queue_id or ""]
    assert story.message_id == result.message_id and story.client is not None
    assert story.removed and story.sender == pf.SENDER
    assert postfix_log.problems(pf.Paths.of(Path(lab.run_dir)).maillog.read_text()) == []


@root_or_refused
def test_a_hostile_local_part_is_refused_at_rcpt_and_runs_nothing(
        lab: lab_ops.LabState) -> None:
    """pipe(8) hands ${user} to the wrapper and maildrop, and some of the field report's
    wrappers (and an unchecked maildroprc) give it to a shell: the lab's Postfix refuses
    any local part it does not know, at RCPT, and nothing the text says runs."""
    state = start(lab)
    spot = Path(f"/tmp/spamdrill-rcpt-{uuid.uuid4().hex}")  # lower case: pipe(8) folds
    spot.mkdir()
    os.chmod(spot, 0o1777)  # the delivery user could create a file here
    try:
        # (pipe(8)'s u flag folds ${user} to lower case: ${IFS} would become ${ifs})
        hostile = [f'"x;touch {spot}/p;#"@{pf.RECIPIENT_DOMAIN}',
                   f'"x;>{spot}/q;#"@{pf.RECIPIENT_DOMAIN}',
                   f"mallory@{pf.RECIPIENT_DOMAIN}"]
        replies = []
        for rcpt in hostile:
            with smtplib.SMTP(state.address, state.port, timeout=30) as smtp:
                smtp.ehlo()
                smtp.mail(pf.SENDER)
                code, text = smtp.rcpt(rcpt)
                replies.append((rcpt, code, text))
                if code == 250:
                    smtp.data(corpus.make("ham", 901, to=rcpt).data)
        # every message accepted has had its first delivery attempt (none is: the queue
        # is empty; on a lab that accepted them, they wait deferred)
        pf.wait_queue(state.paths, lambda q: all(e.queue_name == "deferred" for e in q),
                      DRAIN, "first delivery attempts")
        assert list(spot.iterdir()) == [], "a recipient's text ran as a command"
        for rcpt, code, text in replies:
            assert code == 550 and b"5.1.1" in text, (rcpt, code, text)
    finally:
        shutil.rmtree(spot, ignore_errors=True)


@root_or_refused
def test_maildrop_as_the_pipe_user_runs_no_recipient_text(lab: lab_ops.LabState) -> None:
    """The reproduction as it was reported: as ``nobody``, the pipe user's maildroprc given
    a hostile ``$1`` directly (no Postfix in the way) refuses it (67) and runs nothing."""
    spot = Path(f"/tmp/spamdrill-md-{uuid.uuid4().hex}")
    spot.mkdir()
    os.chmod(spot, 0o1777)
    try:
        rc = pf.Paths.of(Path(lab.run_dir)).filter_file
        done = subprocess.run(
            ["runuser", "-u", pf.PIPE_USER, "--", "maildrop", str(rc),
             f"x;touch${{IFS}}{spot}/p;#"], input=b"Subject: x\n\nhi\n",
            capture_output=True, timeout=60)
        assert list(spot.iterdir()) == [], "the recipient's text ran as a command"
        assert done.returncode == 67, (done.returncode, done.stderr)
    finally:
        shutil.rmtree(spot, ignore_errors=True)
