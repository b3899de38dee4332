"""rspamd held to its task_timeout by a slow rule, and rspamd's nameserver dead, against a
real lab (rspamd with the lab's slow rule, Redis, the lab DNS): each fault in the
conformance suite's shape (tests/test_faults.py: injected, it takes effect with real rspamc
traffic; lifted, the lab is healthy and a ham is scanned at once again; lifted again,
nothing happens; injected by a process that is then SIGKILLed, the journal heals it), then
each drill end to end against the budget's prediction, and the negative twin: the same
drill with a fault that did nothing is an ``error``."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from faultproc import injected_then_killed

from spamdrill import corpus
from spamdrill.budget.rspamd import EDGE_MARGIN_S, RspamdSetup, predict
from spamdrill.drills import runner
from spamdrill.drills.control import RealLab
from spamdrill.drills.nemesis import AnyFaultSpec
from spamdrill.drills.nemesis.base import until
from spamdrill.drills.scenario import load_all
from spamdrill.drills.timing import Scale
from spamdrill.lab import faults, redis
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.config import LabConfig, RspamdSettings
from spamdrill.lab.state import LabState
from spamdrill.vocab import Fate, Mode

pytestmark = pytest.mark.lab

KINDS = ("rspamd-slow-rule", "rspamd-dns-dead")
SCENARIOS = load_all()


def scan(state: LabState, timeout: int) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """One real ham through rspamc --mime: its time and what rspamc did."""
    ref = state.rspamd
    assert ref is not None
    t0 = time.monotonic()
    done = subprocess.run([rspamd_lab.rspamc(), "-h", f"{ref.normal.host}:{ref.normal.port}",
                           "-t", str(timeout), "--mime", "-d", "alice"],
                          input=corpus.ham(int(time.time() * 1000) % 10**8),
                          capture_output=True, timeout=60, check=False)
    return time.monotonic() - t0, done


def healthy(state: LabState) -> bool:
    """rspamd answers stat and scans GTUBE as reject, Redis answers PING, no fault is open
    in the journal, and a ham (which asks the slow rule and rspamd's resolver; GTUBE asks
    neither) is scanned well within task_timeout."""
    ref = state.rspamd
    assert ref is not None
    if not (redis.ping(ref.redis.host, ref.redis.port) and lab_ops.rspamd_ready(ref)
            and not state.journal.open_faults()):
        return False
    took, done = scan(state, 5)
    return done.returncode == 0 and took < 3 and b"X-Spam-Action: no action" in done.stdout


@pytest.fixture(scope="module")
def slow_lab() -> Iterator[LabState]:
    from conftest import new_run_dir

    path = new_run_dir()
    state = lab_ops.up(path, LabConfig(rspamd=RspamdSettings(enabled=True, slow_rule=True)))
    try:
        yield state
    finally:
        lab_ops.down(path)
        import shutil

        shutil.rmtree(path.parent, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
def test_conformance(kind: str, slow_lab: LabState) -> None:
    state = slow_lab
    assert healthy(state)
    ctl = RealLab(state)
    fault = msgspec.convert({"kind": kind}, AnyFaultSpec).build(Scale(1.0))
    fault.setup(ctl)
    fault.inject(ctl)
    took, done = scan(state, 20)  # held to task_timeout (8 s), answered
    fault.observe(ctl)
    fault.lift(ctl)
    report = fault.evidence(ctl)
    assert report.took_effect, report
    # the task timeout decided (8 s), not the rule's 60 s: a generous margin for a loaded
    # machine's rspamc start-up and answer
    assert done.returncode == 0 and 8 <= took < 8 + 6, (took, done.stdout[-300:])
    assert until(lambda: healthy(state), 30), "the lab did not recover after the lift"
    fault.lift(ctl)  # again: nothing happens, nothing breaks
    fault.teardown(ctl)
    assert healthy(state)
    assert faults.heal_journaled(state.journal) == []
    # injected by a process that is then SIGKILLed: the journal heals it
    injected_then_killed(state.run_dir, kind, {}, holds=lambda: not healthy(state))
    assert until(lambda: healthy(state), 30), f"{kind} was not healed after SIGKILL"


def run(name: str, tmp_path: Path) -> runner.ScenarioResult:
    [r] = runner.run_scenario(SCENARIOS[name], scale=1.0, base=LabConfig(), workdir=tmp_path)
    return r


def predicted(mode: Mode, soft_reject: bool = False) -> float:
    """The budget's worst case for ``mode`` through rspamc -t 10, on Debian's rspamd
    settings (the lab's): the drill must agree with it."""
    [p] = [p for p in predict(RspamdSetup(rspamc_t=10.0, soft_reject=soft_reject))
           if p.mode == mode and p.via == "rspamc"]
    assert p.fate == Fate.DELIVERED and not p.edge, p
    return p.worst_s


def agree(mode: Mode, r: runner.ScenarioResult, soft_reject: bool = False) -> None:
    """Every message answered no sooner than the predicted worst case (task_timeout) and
    within the margin the budget allows its answer."""
    worst = predicted(mode, soft_reject)
    times = [m.seconds for m in r.history.messages]
    assert all(t is not None and worst <= t < worst + EDGE_MARGIN_S for t in times), \
        (worst, times)


def test_a_slow_rule_gets_a_partial_verdict_at_task_timeout(tmp_path: Path) -> None:
    r = run("rspamd-slow-rule", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert all(m.exit_code == 0 and m.outcome == "ham" and m.reason == ""
               for m in r.history.messages), r.history.messages
    agree(Mode.RSPAMD_SLOW_RULE, r)


def test_a_slow_rule_with_soft_reject_defers_nothing_through_rspamc(tmp_path: Path) -> None:
    """soft_reject_on_timeout: rspamc exits 0 with the soft reject and X-Spam: yes (the
    ham's score kept), so maildrop's xfilter takes it as a verdict and delivers it."""
    r = run("rspamd-slow-rule-soft-reject", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert all(m.exit_code == 0 and m.reason == "soft reject" and m.outcome == "spam"
               for m in r.history.messages), r.history.messages
    agree(Mode.RSPAMD_SLOW_RULE, r, soft_reject=True)


def test_dns_dead_holds_each_ham_to_task_timeout(tmp_path: Path) -> None:
    r = run("rspamd-dns-dead", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert all(m.exit_code == 0 and m.outcome == "ham" for m in r.history.messages), \
        r.history.messages
    agree(Mode.RSPAMD_DNS_DEAD, r)


class _Nothing:
    def heal(self) -> None:
        pass


@pytest.mark.parametrize("name", ["rspamd-slow-rule", "rspamd-slow-rule-soft-reject",
                                  "rspamd-dns-dead"])
def test_a_fault_that_did_nothing_is_an_error(name: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative twin: the lab DNS never gets the rule, so every ham is answered at
    once; the drill proves nothing and says so."""

    def idle(self: RealLab, rules: list[tuple[str, str, float]]) -> Any:
        return _Nothing()

    monkeypatch.setattr(RealLab, "dns_rules", idle)
    r = run(name, tmp_path)
    assert r.verdict == "error", (r.checks, r.faults)
    assert not r.faults[0].took_effect and "did not occur" in r.faults[0].detail
    assert all((m.seconds or 0) < 3 for m in r.history.messages), r.history.messages
