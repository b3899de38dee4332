"""rspamd's faults against a real lab with rspamd and Redis, in the conformance suite's shape
(tests/test_faults.py): injected, the fault takes effect and shows evidence with real
rspamc traffic; lifted, the lab is healthy; lifted again, nothing happens; injected by a
process that is then SIGKILLed, the journal heals it. Then each drill end to end, and its
negative twin: the same drill with a fault that does nothing is an ``error``."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
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
from spamdrill.drills.nemesis.base import Stopped, until
from spamdrill.drills.nemesis.redis import RedisFrozen
from spamdrill.drills.nemesis.rspamd_control import RealRspamd
from spamdrill.drills.scenario import load_all
from spamdrill.drills.timing import Scale
from spamdrill.lab import faults, redis
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.config import LabConfig, RspamdSettings
from spamdrill.lab.layout import Layout
from spamdrill.lab.state import LabState
from spamdrill.vocab import Mode

pytestmark = pytest.mark.lab

# every rspamd fault kind, with its spec's extra fields
CONFORMANCE: dict[str, dict[str, Any]] = {"rspamd-down": {}, "redis-down": {},
                                          "redis-frozen": {}, "rspamd-stopping": {},
                                          "redis-dropped": {},
                                          "redis-slow": {"latency": 0.15}}
# the Redis link faults need rspamd reaching Redis through the lab's proxy
LINK_KINDS = ("redis-dropped", "redis-slow")
# rspamc waits out a scan held to rspamd's task_timeout (8 s) and Redis's timeouts
HELD_KINDS = ("redis-frozen", "redis-dropped")
SCENARIOS = load_all()


def healthy(state: LabState) -> bool:
    """rspamd answers stat and scans GTUBE as reject, Redis answers PING, and the journal
    holds no open fault."""
    ref = state.rspamd
    assert ref is not None
    return (redis.ping(ref.redis.host, ref.redis.port) and lab_ops.rspamd_ready(ref)
            and not state.journal.open_faults())


def scan(state: LabState, timeout: int, message: bytes | None = None) -> bytes:
    """One real message through rspamc: traffic for the fault to act on; its output."""
    ref = state.rspamd
    assert ref is not None
    done = subprocess.run([rspamd_lab.rspamc(), "-h", f"{ref.normal.host}:{ref.normal.port}",
                           "-t", str(timeout), "--mime", "-d", "alice"],
                          input=message or corpus.ham(int(time.time() * 1000) % 10**8),
                          capture_output=True, timeout=60, check=False)
    return done.stdout


def rspamd_log(state: LabState) -> str:
    return rspamd_lab.Paths(Path(state.run_dir)).log.read_text(errors="replace")


def _lab(settings: RspamdSettings) -> Iterator[LabState]:
    from conftest import new_run_dir

    path = new_run_dir()
    state = lab_ops.up(path, LabConfig(rspamd=settings))
    try:
        yield state
    finally:
        lab_ops.down(path)
        import shutil

        shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def rspamd_state() -> Iterator[LabState]:
    yield from _lab(RspamdSettings(enabled=True))


@pytest.fixture(scope="module")
def proxied_state() -> Iterator[LabState]:
    """rspamd reaching its Redis through the lab's fault proxy."""
    yield from _lab(RspamdSettings(enabled=True, redis_proxy=True))


@pytest.mark.parametrize("kind", sorted(CONFORMANCE))
def test_conformance(kind: str, request: pytest.FixtureRequest) -> None:
    lab = request.getfixturevalue("proxied_state" if kind in LINK_KINDS else "rspamd_state")
    # as lab.json has it now: an earlier case's heal started Redis or rspamd again
    state = LabState.load(Layout(Path(lab.run_dir)))
    assert state is not None
    ctl = RealLab(state)
    fault = msgspec.convert({"kind": kind, **CONFORMANCE[kind]},
                            AnyFaultSpec).build(Scale(1.0))
    fault.setup(ctl)
    if kind == "rspamd-stopping":  # stopped with a scan in flight (2 s, the sleep rule)
        mark = len(rspamd_log(state))
        held = threading.Thread(target=scan, args=(state, 10, corpus.slow(1, 2.0)))
        held.start()
        assert until(lambda: "rspamd_message_parse: loaded message" in
                     rspamd_log(state)[mark:], 30), "rspamd never took the held scan"
        fault.inject(ctl)
        held.join()
    else:
        fault.inject(ctl)
        # a frozen Redis, or a dropped link, holds a scan to rspamd's task_timeout (8 s)
        scan(state, 20 if kind in HELD_KINDS else 5)
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
    injected_then_killed(state.run_dir, kind, CONFORMANCE[kind],
                         holds=lambda: not healthy(state))
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
                                       ("redis-frozen-soft-reject", "pause_redis"),
                                       ("rspamd-stopping", "stop"),
                                       ("redis-dropped", "shape_redis_link"),
                                       ("redis-slow", "shape_redis_link"),
                                       ("redis-slow-past-timeout", "shape_redis_link")])
def test_a_fault_that_did_nothing_is_an_error(name: str, verb: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative twin: journaled, but nothing stopped, frozen or shaped; the drill
    proves nothing and says so."""
    real = getattr(RealRspamd, verb)

    def idle(self: RealRspamd, *args: Any) -> Any:
        from spamdrill.lab import faults as lab_faults
        from spamdrill.lab.toxics import Shape

        if verb == "pause_redis":  # journaled, never signalled
            return lab_faults.stopped(self.state.journal, "redis")
        if verb == "shape_redis_link":  # journaled, the proxy left passing everything
            return lab_faults.proxy_shape(self.state.journal, Shape(), "rspamd-redis")
        return lab_faults.stopped(self.state.journal, args[0])

    assert real is not None
    monkeypatch.setattr(RealRspamd, verb, idle)
    monkeypatch.setattr(RedisFrozen, "STOPPED_WITHIN", 0.5)
    monkeypatch.setattr(Stopped, "REFUSED_WITHIN", 0.5)  # it never will: do not wait 10 s
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


def test_rspamd_stopping_finishes_its_scans_and_fails_new_ones_at_once(
        tmp_path: Path) -> None:
    """Sent before the stop: scanned, the ones in flight too (the fault's evidence is a
    worker finishing one after its SIGTERM); sent during the shutdown: reset as rspamd
    exits; after it: refused. None waits for -t, and none longer than the budget's bound
    for this mode."""
    r = run("rspamd-stopping", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert "in flight at the SIGTERM finished" in r.faults[0].detail
    stop = min(w.start_ns for w in r.history.faults)
    before = [m for m in r.history.messages if m.start_ns < stop]
    after = [m for m in r.history.messages if m.start_ns >= stop]
    assert before and all(m.scanned for m in before), before
    assert after and all(m.outcome == "unscanned" and m.exit_code == 1
                         and m.reason in ("reset", "refused") for m in after), after
    [bound] = [p for p in predict(RspamdSetup(rspamc_t=10.0))
               if p.mode == Mode.RSPAMD_STOPPING]
    assert all((m.seconds or 0) <= bound.worst_s for m in after), (bound, after)


def test_redis_dropped_holds_each_scan_to_the_task_timeout(tmp_path: Path) -> None:
    """As a frozen Redis: every scan held to task_timeout (8 s) and answered at about
    task_timeout + 2 x Redis's timeout, the budget's answer within its stated margin."""
    r = run("redis-dropped", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    answer = RspamdSetup().answer_s
    assert all(8 <= (m.seconds or 0) <= answer + EDGE_MARGIN_S
               for m in r.history.messages), r.history.messages


def test_redis_slow_below_its_timeout_costs_each_scan_the_delay(tmp_path: Path) -> None:
    """Below Redis's timeout every request succeeds, late: rspamd logs no Redis error,
    and every scan is answered within the budget's bound for a slow Redis."""
    r = run("redis-slow", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert "rspamd logged 0 Redis error(s)" in r.faults[0].detail, r.faults
    [bound] = [p for p in predict(RspamdSetup(rspamc_t=10.0)) if p.mode == Mode.REDIS_SLOW]
    assert all(m.scanned and (m.seconds or 0) <= bound.worst_s
               for m in r.history.messages), r.history.messages


def test_redis_slow_past_its_timeout_times_out_each_request(tmp_path: Path) -> None:
    """Past Redis's timeout each request times out (rspamd logs it), yet no scan is held
    to task_timeout: the late replies end each request, unlike a dropped link."""
    r = run("redis-slow-past-timeout", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    assert "rspamd logged 0 " not in r.faults[0].detail, r.faults
    assert all(m.scanned and 2 <= (m.seconds or 0) < 8 for m in r.history.messages), \
        r.history.messages


def test_rspamc_connects_before_reading_and_the_target_holds_it_to_the_release() -> None:
    """rspamc 3.4 opens its connection at start, before its message; the rspamd target's
    holder starts it only once the whole message is read (its release)."""
    from spamdrill.drills.rspamd_target import HOLD

    def connected_while_stdin_open(argv: list[str]) -> bool:
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(4)
            srv.settimeout(3.0)
            port = srv.getsockname()[1]
            proc = subprocess.Popen([*argv, rspamd_lab.rspamc(), "-h", f"127.0.0.1:{port}",
                                     "-t", "2", "--mime"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                try:
                    conn, _ = srv.accept()
                    conn.close()
                    got = True
                except TimeoutError:
                    got = False
            finally:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=10)
            return got

    assert connected_while_stdin_open([])  # rspamc itself: connected with no message yet
    assert not connected_while_stdin_open([sys.executable, "-I", "-S", "-c", HOLD])
