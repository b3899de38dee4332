"""rspamd behind the lab's private Postfix as a milter (root): smtpd hands each message to
rspamd's proxy worker before it queues it, and ``milter_default_action`` decides what the
sender gets when rspamd is down. Each drill end to end, and its negative twin: the same
drill with a stop that stopped nothing is an ``error``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_e2e import needs_root

from spamdrill.drills import runner
from spamdrill.drills.nemesis.base import Stopped
from spamdrill.drills.nemesis.rspamd_control import RealRspamd
from spamdrill.drills.scenario import load_all
from spamdrill.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.root]
SCENARIOS = load_all()


def run(name: str, tmp_path: Path) -> runner.ScenarioResult:
    [r] = runner.run_scenario(SCENARIOS[name], scale=1.0, base=LabConfig(), workdir=tmp_path)
    return r


def test_the_milter_scans_every_message_before_the_queue(tmp_path: Path) -> None:
    if needs_root("e2e-rspamd-milter"):
        return
    r = run("e2e-rspamd-milter", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.error)
    # maildrop scans nothing here: "delivered" means rspamd's X-Spamd-Result is in it
    assert all(m.fate == "delivered" and m.intact for m in r.history.messages)


def test_accept_delivers_unscanned_when_rspamd_is_down(tmp_path: Path) -> None:
    if needs_root("e2e-rspamd-milter-accept"):
        return
    r = run("e2e-rspamd-milter-accept", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert all(f.took_effect for f in r.faults)
    assert all(m.fate == "delivered unscanned" and m.deferrals == 0
               for m in r.history.messages)


def test_tempfail_refuses_with_451_and_the_retry_is_scanned(tmp_path: Path) -> None:
    if needs_root("e2e-rspamd-milter-tempfail"):
        return
    r = run("e2e-rspamd-milter-tempfail", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    # what the sender got, measured: smtpd greets, then refuses EHLO on with 451 4.7.1
    assert all(m.reason.startswith("the sender got 451 4.7.1 ") and m.deferrals == 1
               and m.fate == "delivered" for m in r.history.messages), r.history.messages


def test_a_stopping_rspamd_behind_maildrop_delivers_late_mail_unscanned(
        tmp_path: Path) -> None:
    """maildrop's xfilter "rspamc --mime" inside exception { }: mail whose scan began
    before the stop is delivered scanned (the scans in flight finish); mail after it is
    delivered unscanned at once, under spamdrill-deliver and the field report's wrapper
    alike; nothing deferred, bounced or lost."""
    if needs_root("e2e-rspamd-stopping"):
        return
    r = run("e2e-rspamd-stopping", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    stop = min(w.start_ns for w in r.history.faults)
    before = [m for m in r.history.messages if m.start_ns < stop]
    after = [m for m in r.history.messages if m.start_ns >= stop]
    assert before and all(m.fate == "delivered" for m in before), before
    assert after and all(m.fate == "delivered unscanned" for m in after), after
    assert all(m.deferrals == 0 and m.intact for m in r.history.messages)
    assert {m.case for m in r.history.messages} == {"spamdrill-deliver",
                                                   "maildrop_wrapper.bash"}


def test_a_stopping_rspamd_behind_the_milter_defers_what_it_meets(tmp_path: Path) -> None:
    """Behind Postfix's milter (tempfail): the proxy worker exits at once, so the message
    in flight at the stop is refused at the end of its data (451 4.7.1), even when a normal
    worker finished its scan, and mail arriving until rspamd is back is refused from
    CONNECT on; each retry is delivered scanned. Earlier mail is delivered at once. The
    budget's milter prediction for a stop: deferred, within its bound."""
    if needs_root("e2e-rspamd-milter-stopping"):
        return
    from spamdrill.budget.rspamd import RspamdSetup, predict
    from spamdrill.vocab import Mode

    r = run("e2e-rspamd-milter-stopping", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    stop = min(w.start_ns for w in r.history.faults)
    before = [m for m in r.history.messages if m.end_ns < stop]
    met = [m for m in r.history.messages if m.deferrals]
    assert before and all(m.deferrals == 0 for m in before), before
    assert met and all(m.reason.startswith("the sender got 451 4.7.1 ") for m in met), met
    assert all(m.fate == "delivered" and m.intact for m in r.history.messages)
    [p] = [p for p in predict(RspamdSetup(rspamc_t=None, milter_action="tempfail"))
           if p.mode == Mode.RSPAMD_STOPPING and p.via == "milter"]
    assert p.fate.value == "deferred" and p.worst_s >= 1.0


@pytest.mark.parametrize("name", ["e2e-rspamd-milter-accept", "e2e-rspamd-milter-tempfail",
                                  "e2e-rspamd-stopping", "e2e-rspamd-milter-stopping"])
def test_a_stop_that_stopped_nothing_is_an_error(name: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative twin: the stop is journaled but rspamd keeps running, so every message
    is scanned at once; the drill proves nothing and says so."""
    if needs_root(name):
        return

    def idle(self: RealRspamd, *args: Any) -> Any:
        from spamdrill.lab import faults as lab_faults

        return lab_faults.stopped(self.state.journal, args[0])

    monkeypatch.setattr(RealRspamd, "stop", idle)
    monkeypatch.setattr(Stopped, "REFUSED_WITHIN", 0.5)  # it never will: do not wait 10 s
    r = run(name, tmp_path)
    assert r.verdict == "error", (r.checks, r.faults)
    assert not r.faults[0].took_effect and "did not occur" in r.faults[0].detail
    assert all(m.fate == "delivered" and m.deferrals == 0 for m in r.history.messages)


def test_a_scan_past_postfixs_milter_timeout_is_accepted_unscanned(tmp_path: Path) -> None:
    """rspamd still scanning when Postfix's milter_content_timeout (4 s) runs out: with
    accept, Postfix queues the message unscanned at the timeout."""
    if needs_root("e2e-rspamd-milter-timeout"):
        return
    r = run("e2e-rspamd-milter-timeout", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.error)
    assert all(m.fate == "delivered unscanned" and 3.5 <= (m.seconds or 0) < 8
               for m in r.history.messages), r.history.messages


def test_a_scan_within_the_milter_timeout_proves_nothing(tmp_path: Path) -> None:
    """The negative twin: quick scans never meet the timeout, so the condition fails and
    the drill is an error, not a confirmation."""
    if needs_root("e2e-rspamd-milter-timeout"):
        return
    import msgspec

    sc = SCENARIOS["e2e-rspamd-milter-timeout"]
    quick = msgspec.structs.replace(sc, load=msgspec.structs.replace(sc.load, kinds=("ham",)))
    [r] = runner.run_scenario(quick, scale=1.0, base=LabConfig(), workdir=tmp_path)
    assert r.verdict == "error", (r.checks, r.error)
    assert any("did not occur" in c.detail for c in r.checks), r.checks
    assert all(m.fate == "delivered" for m in r.history.messages)


@pytest.mark.long
@pytest.mark.timeout(900)  # rspamd's greylisting holds the retries 300 s
def test_a_soft_reject_through_the_milter_defers_to_the_sender(tmp_path: Path) -> None:
    """soft_reject_on_timeout behind the milter: the scan held to task_timeout by a frozen
    Redis reaches the sender as a 4xx; it keeps the message and, once Redis is back and
    greylisting lets it through, each is delivered once (rspamc delivered the same)."""
    if needs_root("e2e-rspamd-milter-soft-reject"):
        return
    r = run("e2e-rspamd-milter-soft-reject", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    first = "the sender got 451 4.7.1 timeout processing message"
    assert all(m.reason.startswith(first) and m.fate == "delivered"
               for m in r.history.messages), r.history.messages


def test_mail_submitted_by_sendmail_is_scanned_too() -> None:
    """non_smtpd_milters: a message from sendmail(1) (postdrop, pickup, cleanup) goes to
    rspamd's milter as one over SMTP does: rspamd logs its scan with Postfix's queue id."""
    if needs_root("e2e-rspamd-milter"):
        return
    import shutil
    import subprocess
    import time

    from conftest import new_run_dir

    from spamdrill.drills.nemesis.base import until
    from spamdrill.lab import lab as lab_ops
    from spamdrill.lab import postfix
    from spamdrill.lab.config import RspamdSettings
    from spamdrill.lab.rspamd import Paths as RspamdPaths

    run_dir = new_run_dir()
    state = lab_ops.up(run_dir, LabConfig(rspamd=RspamdSettings(enabled=True)))
    try:
        ref = state.rspamd
        assert ref is not None
        postfix.up(run_dir, postfix.Settings(
            transports=(postfix.Transport("t", ("/bin/true",)),),
            milter=f"inet:{ref.proxy.host}:{ref.proxy.port}"), marker=state.marker)
        mid = f"<sendmail-{time.time_ns()}@senders.test>"
        message = (f"From: a@senders.test\nTo: alice@lab.test\nMessage-ID: {mid}\n"
                   "Subject: submitted by sendmail\n\nhello\n").encode()
        conf = str(postfix.Paths.of(run_dir).conf)
        done = subprocess.run(["/usr/sbin/sendmail", "-C", conf, "-i", "-f", "a@senders.test",
                               "alice@lab.test"], input=message, capture_output=True,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        log = RspamdPaths(run_dir).log

        def scanned() -> bool:
            return any(mid in ln and "qid: <" in ln and "rspamd_task_write_log" in ln
                       for ln in log.read_text(errors="replace").splitlines())

        assert until(scanned, 30), "rspamd never saw the message sendmail submitted"
    finally:
        lab_ops.down(run_dir)
        shutil.rmtree(run_dir.parent, ignore_errors=True)
