"""rspamd's faults against a real lab with rspamd and Redis, in the conformance suite's shape
(tests/test_faults.py): injected, the fault takes effect and shows evidence with real
rspamc traffic; lifted, the lab is healthy; lifted again, nothing happens; injected by a
process that is then SIGKILLed, the journal heals it. Then each drill end to end, and its
negative twin: the same drill with a fault that does nothing is an ``error``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from spamdrill import corpus
from spamdrill.drills import runner
from spamdrill.drills.control import RealLab
from spamdrill.drills.nemesis import AnyFaultSpec
from spamdrill.drills.nemesis import rspamd as rspamd_faults
from spamdrill.drills.nemesis.base import until
from spamdrill.drills.scenario import load_all
from spamdrill.lab import faults, redis
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.config import LabConfig, RspamdSettings
from spamdrill.lab.layout import Layout
from spamdrill.lab.state import LabState

pytestmark = pytest.mark.lab

# every rspamd fault kind, with its spec's extra fields
CONFORMANCE: dict[str, dict[str, Any]] = {"rspamd-down": {}, "redis-down": {},
                                          "redis-frozen": {}}
SCENARIOS = load_all()


def healthy(state: LabState) -> bool:
    """rspamd answers stat and scans GTUBE as reject, Redis answers PING, and the journal
    holds no open fault."""
    ref = state.rspamd
    assert ref is not None
    return (redis.ping(ref.redis.host, ref.redis.port) and lab_ops.rspamd_ready(ref)
            and not state.journal.open_faults())


def scan(state: LabState, timeout: int) -> None:
    """One real message through rspamc: traffic for the fault to act on."""
    ref = state.rspamd
    assert ref is not None
    subprocess.run([rspamd_lab.rspamc(), "-h", f"{ref.normal.host}:{ref.normal.port}",
                    "-t", str(timeout), "--mime", "-d", "alice"],
                   input=corpus.ham(int(time.time() * 1000) % 10**8), capture_output=True,
                   timeout=60, check=False)


@pytest.fixture(scope="module")
def rspamd_state() -> Iterator[LabState]:
    from conftest import new_run_dir

    path = new_run_dir()
    state = lab_ops.up(path, LabConfig(rspamd=RspamdSettings(enabled=True)))
    try:
        yield state
    finally:
        lab_ops.down(path)
        import shutil

        shutil.rmtree(path.parent, ignore_errors=True)


INJECT = """
import sys, time
from pathlib import Path
import msgspec
from spamdrill.drills.control import RealLab
from spamdrill.drills.nemesis import AnyFaultSpec
from spamdrill.lab.layout import Layout
from spamdrill.lab.state import LabState
state = LabState.load(Layout(Path(sys.argv[1])))
ctl = RealLab(state)
fault = msgspec.convert({"kind": sys.argv[2]}, AnyFaultSpec).build(1.0)
fault.setup(ctl)
fault.inject(ctl)
print("injected", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", sorted(CONFORMANCE))
def test_conformance(kind: str, rspamd_state: LabState) -> None:
    # as lab.json has it now: an earlier case's heal started Redis or rspamd again
    state = LabState.load(Layout(Path(rspamd_state.run_dir)))
    assert state is not None
    ctl = RealLab(state)
    fault = msgspec.convert({"kind": kind, **CONFORMANCE[kind]}, AnyFaultSpec).build(1.0)
    fault.setup(ctl)
    fault.inject(ctl)
    # a frozen Redis holds a scan for rspamd's task_timeout (8 s): rspamc waits longer
    scan(state, 20 if kind == "redis-frozen" else 5)
    fault.observe(ctl)
    fault.lift(ctl)
    report = fault.evidence(ctl)
    assert report.took_effect, report
    assert until(lambda: healthy(state), 60), "the lab did not recover after the lift"
    fault.lift(ctl)  # again: nothing happens, nothing breaks
    fault.teardown(ctl)
    assert healthy(state)
    assert faults.heal_journaled(state.journal) == []
    # injected by a process that is then SIGKILLed: the journal heals it
    proc = subprocess.Popen([sys.executable, "-c", INJECT, state.run_dir, kind],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "injected", proc.stderr and proc.stderr.read()
    assert not healthy(state)  # the fault holds with its injector gone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lab_ops.heal(Path(state.run_dir))
    assert until(lambda: healthy(state), 60), f"{kind} was not healed after SIGKILL"


def run(name: str, tmp_path: Path) -> runner.ScenarioResult:
    [r] = runner.run_scenario(SCENARIOS[name], scale=100 / 3, base=LabConfig(),
                              workdir=tmp_path)
    return r


def test_rspamd_down_fails_every_rspamc_at_once(tmp_path: Path) -> None:
    r = run("rspamd-down", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert all(m.outcome == "unscanned" and m.reason == "refused" and m.exit_code == 1
               for m in r.history.messages)


def test_redis_down_rspamd_scans_on(tmp_path: Path) -> None:
    r = run("redis-down", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert "rspamd logged" in r.faults[0].detail


def test_redis_frozen_holds_each_scan_to_the_task_timeout(tmp_path: Path) -> None:
    r = run("redis-frozen", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    # rspamd's task_timeout is 8 s in Debian's options.inc: the forced verdict comes after
    assert all((m.seconds or 0) >= 8 for m in r.history.messages), r.history.messages


def test_a_soft_reject_through_rspamc_defers_nothing(tmp_path: Path) -> None:
    """soft_reject_on_timeout = true: rspamc exits 0 with the soft reject and X-Spam: yes
    (the ham's score 0.00), so maildrop's xfilter takes it as a verdict and delivers it."""
    r = run("redis-frozen-soft-reject", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert all(m.exit_code == 0 and m.reason == "soft reject" and m.outcome == "spam"
               and (m.seconds or 0) >= 8 for m in r.history.messages), r.history.messages


@pytest.mark.parametrize("name,verb", [("rspamd-down", "stop"), ("redis-down", "stop"),
                                       ("redis-frozen", "pause_redis"),
                                       ("redis-frozen-soft-reject", "pause_redis")])
def test_a_fault_that_did_nothing_is_an_error(name: str, verb: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative twin: journaled, but nothing stopped or frozen; the drill proves
    nothing and says so."""
    real = getattr(rspamd_faults.RealRspamd, verb)

    def idle(self: rspamd_faults.RealRspamd, *args: Any) -> Any:
        from spamdrill.lab import faults as lab_faults

        if verb == "pause_redis":  # journaled, never signalled
            return lab_faults.stopped(self.state.journal, "redis")
        return lab_faults.stopped(self.state.journal, args[0])

    assert real is not None
    monkeypatch.setattr(rspamd_faults.RealRspamd, verb, idle)
    monkeypatch.setattr(rspamd_faults.RedisFrozen, "STOPPED_WITHIN", 0.5)
    r = run(name, tmp_path)
    assert r.verdict == "error", (r.checks, r.faults)
    assert not r.faults[0].took_effect and "did not occur" in r.faults[0].detail


def test_rspamd_overloaded_fails_the_whole_burst(tmp_path: Path) -> None:
    """One worker interleaves the burst: nearly every message finishes past -t (served in
    turn, the first 4 of 8 would be scanned within -t 5)."""
    r = run("rspamd-overloaded", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.error)
    failed = [m for m in r.history.messages if m.outcome == "unscanned"]
    assert len(failed) >= 6 and all(m.reason == "read-timeout" for m in failed)


def test_a_burst_that_fits_is_no_overload(tmp_path: Path) -> None:
    """The negative twin: the same burst of quick messages never waits past -t, so the
    drill proves nothing and says so."""
    sc = SCENARIOS["rspamd-overloaded"]
    quick = msgspec.structs.replace(sc, load=msgspec.structs.replace(sc.load, kinds=("ham",)))
    [r] = runner.run_scenario(quick, scale=1.0, base=LabConfig(), workdir=tmp_path)
    assert r.verdict == "error", (r.checks, r.error)
    assert any("did not occur" in c.detail for c in r.checks), r.checks
