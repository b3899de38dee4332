"""Drills III, end to end through the lab's private Postfix (root): what each sender gets
from each wrapper, read back from the real system; and nothing of Postfix left behind,
also after the runner is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import spamdrill
from test_drills import confirmed, run

from spamdrill.lab import lab as lab_ops
from spamdrill.lab import postfix
from spamdrill.lab.layout import Layout
from spamdrill.lab.procs import marked_pids
from spamdrill.lab.state import LabState

pytestmark = [pytest.mark.lab, pytest.mark.root]
ROOT = os.geteuid() == 0


def by_case(r: object, case: str) -> list[object]:
    return [m for m in r.history.messages if m.case == case]  # type: ignore[attr-defined]


def needs_root(name: str) -> bool:
    """As an ordinary user an end-to-end drill is refused in one line; say so and stop."""
    if ROOT:
        return False
    done = spamdrill("run", name)
    assert done.returncode == 2 and "need(s) root" in done.stderr, done.stderr
    return True


def test_delivered_and_scanned_through_every_wrapper(tmp_path: Path) -> None:
    if needs_root("e2e-delivered"):
        return
    [r] = run("e2e-delivered", tmp_path)
    assert confirmed(r), r.checks
    assert {m.case for m in r.history.messages} == {
        "spamdrill-deliver", "maildrop_wrapper.bash", "maildrop_wrapper_final.pl"}
    assert all(m.fate == "delivered" and m.intact for m in r.history.messages)
    # each message's story joined: Postfix's queue id and delays, spamd's own verdict
    assert all(m.queue_id and m.delays.count("/") == 3 for m in r.history.messages)
    assert all(("identified spam" if m.kind == "spam" else "clean message") in m.spamd
               for m in r.history.messages)
    spam = [m for m in r.history.messages if m.kind == "spam"]
    assert spam and all(m.outcome == "spam" for m in spam)  # found in .Spam
    assert r.finding == "within"


def test_outage_defers_with_spamdrill_deliver_and_shows_each_field_report_wrapper(
        tmp_path: Path) -> None:
    if needs_root("e2e-spamd-outage"):
        return
    [r] = run("e2e-spamd-outage", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    deliver = by_case(r, "spamdrill-deliver")
    # deferred during the outage, delivered once spamd was back, exactly once, scanned
    assert deliver and all(m.deferrals >= 1 and m.fate == "delivered" for m in deliver)
    # the report's 75 -> 100 wrapper bounced what a retry would have delivered
    assert all(m.fate == "bounced" and m.dsn.startswith("5.") and "status 100" in m.reason
               for m in by_case(r, "maildrop_wrapper.bash"))
    # the one that exits 0 whatever maildrop did lost it: Postfix believed it delivered
    assert all(m.fate == "lost" for m in by_case(r, "maildrop_wrapper.sh"))
    findings = {f.case: f.finding for f in r.findings}
    assert findings["spamdrill-deliver"] == "defers"
    assert findings["maildrop_wrapper.bash"] == "bounces"
    assert findings["maildrop_wrapper.sh"] == "loses mail"


def test_over_quota_bounces_with_5_2_2_and_a_reason(tmp_path: Path) -> None:
    if needs_root("e2e-over-quota"):
        return
    [r] = run("e2e-over-quota", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    [bounced] = [m for m in by_case(r, "spamdrill-deliver") if m.fate == "bounced"]
    assert bounced.dsn == "5.2.2" and "quota" in bounced.reason.lower()
    assert r.finding == "within"  # a permanent failure: bouncing it is right


def test_unknown_user_bounces_5_1_1_and_the_bash_wrapper_loses_it(tmp_path: Path) -> None:
    if needs_root("e2e-unknown-user"):
        return
    [r] = run("e2e-unknown-user", tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    [bounced] = by_case(r, "spamdrill-deliver")
    assert bounced.fate == "bounced" and bounced.dsn == "5.1.1"
    assert "Invalid user specified" in bounced.reason
    # maildrop's 67 fell out of the bash wrapper's `if` as 0: Postfix logged it sent
    [lost] = by_case(r, "maildrop_wrapper.bash")
    assert lost.fate == "lost" and "status=sent" in lost.reason
    findings = {f.case: f.finding for f in r.findings}
    assert findings["spamdrill-deliver"] == "within"  # permanent: the bounce is right
    assert findings["maildrop_wrapper.bash"] == "loses mail"


def test_an_xfilter_that_returns_nothing_loses_mail_unless_the_maildroprc_checks(
        tmp_path: Path) -> None:
    if needs_root("e2e-xfilter-empty"):
        return
    [bare] = run("e2e-xfilter-empty", tmp_path / "bare")
    assert confirmed(bare), (bare.checks, bare.faults)
    # maildrop exits 0 for an empty message: every wrapper, spamdrill-deliver too
    assert bare.history.messages and all(m.fate == "lost" for m in bare.history.messages)
    assert {f.finding for f in bare.findings} == {"loses mail"}
    [guarded] = run("e2e-xfilter-empty-guarded", tmp_path / "guarded")
    assert confirmed(guarded), (guarded.checks, guarded.faults)
    deliver = by_case(guarded, "spamdrill-deliver")
    assert deliver and all(m.deferrals >= 1 and m.fate == "delivered" and m.scanned
                           for m in deliver)
    assert all(m.fate == "bounced" for m in by_case(guarded, "maildrop_wrapper.bash"))


# the Drills I and II faults seen end to end: spamdrill-deliver neither bounces nor loses,
# and the finding is what spamc's fallback makes of the fault
TRANSIENT = {
    "e2e-spamd-down": "delivers unscanned",
    "e2e-spamd-stopping": "delivers unscanned",
    "e2e-spamd-overloaded": "delivers unscanned",
    "e2e-db-refused": "delivers unscanned",
    "e2e-db-locked": "delivers unscanned",
    "e2e-db-dropped": "delivers unscanned",
    "e2e-dns-dead": "delivers unscanned",
}


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_a_transient_fault_end_to_end_neither_bounces_nor_loses(name: str,
                                                                tmp_path: Path) -> None:
    if needs_root(name):
        return
    [r] = run(name, tmp_path)
    assert confirmed(r), (r.checks, r.faults)
    deliver = by_case(r, "spamdrill-deliver")
    assert deliver and all(m.fate in ("delivered", "delivered unscanned") and m.intact
                           for m in deliver), [(m.fate, m.reason) for m in deliver]
    assert r.finding == TRANSIENT[name], r.findings


def leftovers(run_dir: Path, marker: str, port: int) -> list[str]:
    left = []
    if list(marked_pids(marker)):
        left.append("processes")
    queue = run_dir / "postfix" / "queue"
    if queue.is_dir() and any(p.is_file() for sub in ("incoming", "active", "deferred")
                              for p in (queue / sub).rglob("*")):
        left.append("queue files")
    if not postfix.port_free("127.0.0.1", port):
        left.append("port")
    return left


def test_nothing_of_postfix_is_left_after_the_runner_is_killed(tmp_path: Path) -> None:
    if needs_root("e2e-spamd-outage"):
        return
    before = set(lab_ops.drill_labs_dir().iterdir()) if lab_ops.drill_labs_dir().is_dir() \
        else set()
    proc = subprocess.Popen([sys.executable, "-m", "spamdrill", "run", "e2e-spamd-outage",
                             "--results-dir", str(tmp_path / "res")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    found: tuple[Path, postfix.State] | None = None
    while found is None and time.monotonic() < deadline:
        for d in set(lab_ops.drill_labs_dir().iterdir()) - before:
            state = postfix.State.load(d)
            if state is not None and postfix.greeting(state.address, state.port):
                found = d, state
        time.sleep(0.1)
    assert found is not None, "the drill never brought its Postfix up"
    lab_dir, pstate = found
    lab = LabState.load(Layout(lab_dir))
    assert lab is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert leftovers(lab_dir, lab.marker, pstate.port)  # it was running: something to clean
    down = spamdrill("lab", "down", "--all")
    assert down.returncode == 0, down.stderr
    assert leftovers(lab_dir, lab.marker, pstate.port) == []
    assert not lab_dir.exists()
    assert json.loads(spamdrill("lab", "status", "--json", "--run-dir", str(lab_dir)).stdout
                      )["components"] == []
