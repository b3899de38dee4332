"""Run drills: lab up -> calibrate -> nemesis set-up -> load on the nemesis' clock -> heal
-> evidence -> checks -> verdict and findings.

Each drill gets its own fresh lab, so none inherits another's state, and everything it
started is taken down in a ``finally``. A drill that cannot run (its lab fails to start)
is an ``error`` result, and the run goes on with the next.
"""

from __future__ import annotations

import re
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spamdrill.budget.inputs import kernel_syn_linear_timeouts
from spamdrill.checks import CheckResult, judge_safely
from spamdrill.drills import calibrate
from spamdrill.drills.control import RealLab
from spamdrill.drills.findings import Budgets, FindingRow, findings
from spamdrill.drills.scenario import Drill, Scenario
from spamdrill.drills.schedule import Nemesis
from spamdrill.drills.targets import AnyTarget, LoadPlan, plan_offsets
from spamdrill.drills.timing import MAILDROP_BUDGET_S, UNCOMPRESSED, expand_args, scaled_spamd
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import Calibration, Evidence, FaultReport
from spamdrill.history import History, MessageRecord
from spamdrill.lab import config as lab_config
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import netns
from spamdrill.lab.config import LabConfig
from spamdrill.lab.procs import shielded
from spamdrill.lab.state import LabState
from spamdrill.load import spamc
from spamdrill.proto import netstat
from spamdrill.proto.spamd_log import describe_states, last_child_states
from spamdrill.vocab import Finding, Verdict

Progress = Callable[[str, int, int], None]


@dataclass
class ScenarioResult:
    name: str
    scenario: Scenario
    scale: float
    budget_s: float
    history: History
    checks: list[CheckResult]
    findings: list[FindingRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    faults: tuple[FaultReport, ...] = ()
    calibration: Calibration | None = None
    error: str = ""

    @property
    def verdict(self) -> Verdict:
        if self.error or any(not f.took_effect for f in self.faults) or \
                any(c.status == "error" for c in self.checks):
            return Verdict.ERROR
        return Verdict.CONFIRMED if all(c.ok for c in self.checks) else Verdict.REFUTED

    @property
    def finding(self) -> Finding:
        return Finding.worst([f.finding for f in self.findings])

    @property
    def worst_s(self) -> float | None:
        times = [m.seconds for m in self.history.messages if m.seconds is not None]
        return max(times) if times else None

    def public(self) -> dict[str, Any]:
        sc = self.scenario
        return {
            "name": self.name, "hypothesis": sc.hypothesis, "stands_for": sc.stands_for,
            "verdict": self.verdict, "finding": self.finding, "error": self.error,
            "scale": round(self.scale, 4), "budget_s": round(self.budget_s, 3),
            "timing": {"compressed": sc.timing.compress, "why": sc.timing.why,
                       "does_not_compress": list(UNCOMPRESSED),
                       "calibration": self.calibration.public() if self.calibration
                       else None},
            "checks": [c.public() for c in self.checks],
            "fault_evidence": [{"fault": f.name, "took_effect": f.took_effect,
                                "detail": f.detail} for f in self.faults],
            "findings": [f.public() for f in self.findings], "notes": self.notes,
            "messages": [_message_doc(m) for m in self.history.messages],
            "faults": [{"name": f.name, "start_ns": f.start_ns, "end_ns": f.end_ns,
                        "detail": f.detail} for f in self.history.faults],
        }


def _message_doc(m: MessageRecord) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "size": m.size, "case": m.case, "peer": m.peer,
            "worker": m.worker, "start_ns": m.start_ns, "end_ns": m.end_ns, "outcome": m.outcome,
            "exit_code": m.exit_code, "reason": m.reason, "score": m.score,
            "spamc_args": m.spamc_args}


def summarize(ms: list[MessageRecord]) -> dict[str, Any]:
    times = sorted(m.seconds for m in ms if m.seconds is not None)

    def pct(p: float) -> float | None:
        return round(times[min(len(times) - 1, int(p * len(times)))], 3) if times else None

    count = {o: sum(1 for m in ms if m.outcome == o)
             for o in ("spam", "ham", "unscanned", "error", "lost")}
    return {"messages": len(ms), "scanned": count["spam"] + count["ham"], **count,
            "p50_s": round(statistics.median(times), 3) if times else None,
            "p99_s": pct(0.99), "max_s": round(times[-1], 3) if times else None,
            "reasons": sorted({m.reason for m in ms if m.reason})}


def run_scenario(sc: Scenario, *, scale: float, base: LabConfig, workdir: Path,
                 progress: Progress = lambda name, done, total: None,
                 count: int | None = None, loader: Loader | None = None,
                 ) -> list[ScenarioResult]:
    """Run one scenario (once per variant); ``count`` overrides the message count;
    ``loader`` runs the load (default: this machine's, ``local_load``)."""
    return [run_drill(d, scale=scale, base=base, workdir=workdir / d.name.replace("/", "_"),
                      progress=progress, count=count, loader=loader) for d in sc.drills()]


def _lab_config(base: LabConfig, drill: Drill, scale: float) -> LabConfig:
    sections = dict(drill.lab)
    sections["spamd"] = scaled_spamd(sections["spamd"], scale)
    return lab_config.with_overrides(base, sections)


def _budgets(config: LabConfig, scale: float) -> Budgets:
    d = config.delivery
    return Budgets(MAILDROP_BUDGET_S / scale, d.postfix_time_limit / scale, d.wrapper,
                   d.deadline / scale)


@dataclass
class _Run:
    """What one drill gathers while it runs, for its evidence."""

    history: History = field(default_factory=History)
    calibration: Calibration | None = None
    kernel: dict[str, int] | None = None
    spamd_log: str = ""
    faults: tuple[FaultReport, ...] = ()
    marks: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str = ""


def run_drill(drill: Drill, *, scale: float, base: LabConfig, workdir: Path,
              progress: Progress = lambda name, done, total: None,
              count: int | None = None, loader: Loader | None = None) -> ScenarioResult:
    sc = drill.scenario
    scale = scale if sc.timing.compress else 1.0
    config = _lab_config(base, drill, scale)
    run = _Run()
    try:
        _execute(drill, scale, config, workdir, count, run, progress, loader or local_load)
    except (SpamdrillError, OSError) as exc:
        run.error = str(exc)
    ev = Evidence(run.history, scale, MAILDROP_BUDGET_S / scale, run.spamd_log, run.kernel,
                  run.faults, run.calibration, config.spamd.max_children,
                  kernel_syn_linear_timeouts(), run.marks)
    checks = [judge_safely(c.scaled(scale), ev) for c in drill.checks]
    rows = findings(run.history.by_case(), sc.failure_mode(), _budgets(config, scale))
    return ScenarioResult(drill.name, sc, scale, MAILDROP_BUDGET_S / scale, run.history,
                          checks, rows, _notes(run), run.faults, run.calibration, run.error)


@contextmanager
def _lab(drill: Drill, config: LabConfig, run: _Run) -> Iterator[LabState | None]:
    """A fresh lab for this drill (none if it needs none), always taken down."""
    if not drill.scenario.needs_lab:
        yield None
        return
    lab_dir = lab_ops.drill_labs_dir() / f"{uuid.uuid4().hex[:8]}-{drill.name.replace('/', '_')}"
    try:
        yield lab_ops.up(lab_dir, config)
    finally:
        with shielded():  # a second Ctrl-C must not leave a lab behind
            try:
                run.spamd_log = Path(lab_dir, "spamd", "spamd.log").read_text(errors="replace")
            except OSError:
                run.spamd_log = ""
            lab_ops.down(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)


def _execute(drill: Drill, scale: float, config: LabConfig, workdir: Path,
             count: int | None, run: _Run, progress: Progress, loader: Loader) -> None:
    sc = drill.scenario
    with _lab(drill, config, run) as state:
        ctl = RealLab(state) if state is not None else None
        if state is not None and sc.timing.calibrate:
            run.calibration = calibrate.measure(state)
        nemesis = Nemesis(sc.fault.build(scale), sc.fault.schedule(scale), ctl) \
            if sc.fault is not None and ctl is not None else None
        try:
            if nemesis is not None:
                nemesis.before_load()
            plan = _plan(drill, scale, count, run.calibration)
            host = state.network.host("spamd") if state and state.network else None
            before = netns.tcp_counters(host) if host else {}
            result = loader(LoadRequest(
                plan, sc.target, ctl, scale, workdir, plan_wait(sc, scale),
                nemesis.start if nemesis else lambda t0: None,
                lambda done, total: progress(drill.name, done, total)))
            run.history.messages = result.records
            run.notes += result.notes
            if host is not None:
                run.kernel = netstat.delta(before, netns.tcp_counters(host))
        finally:
            with shielded():  # heal before the lab goes: nothing is left injected
                if nemesis is not None:
                    nemesis.heal()
                    run.faults = (nemesis.evidence(),)
                    run.history.faults = nemesis.windows
                    run.notes += nemesis.fault.notes()
                    run.marks = nemesis.fault.marks()
                    nemesis.teardown()


@dataclass(frozen=True)
class LoadRequest:
    """What a load needs: the plan, what spamc talks to, and the runner's hooks."""

    plan: LoadPlan
    target: AnyTarget
    lab: RealLab | None
    scale: float
    workdir: Path
    max_wait: float
    started: Callable[[float], None]
    progress: Callable[[int, int], None]


Loader = Callable[[LoadRequest], spamc.LoadResult]


def local_load(req: LoadRequest) -> spamc.LoadResult:
    """spamc processes of this machine, released by this process (``load.spamc``)."""
    prepared = req.target.prepare(req.plan, req.scale, req.lab)
    try:
        return spamc.run(prepared.jobs, req.workdir / "spamc", max_wait=req.max_wait,
                         started=req.started, progress=req.progress)
    finally:
        prepared.close()


def plan_wait(sc: Scenario, scale: float) -> float:
    return sc.load.max_wait / scale


def _plan(drill: Drill, scale: float, count: int | None,
          cal: Calibration | None) -> LoadPlan:
    load = drill.scenario.load
    args = expand_args(list(load.spamc_args), scale)
    n = count or drill.count or (calibrate.fill_count(load.fill, args, cal)
                                 if load.fill is not None and cal is not None else load.count)
    offsets = plan_offsets(load.schedule, n, load.rate * scale, load.step,
                           load.interval / scale)
    return LoadPlan(n, load.kinds, offsets, args)


_SPAMD_TROUBLE = re.compile(
    r"(SQL error[^\n]*|service unavailable[^\n]*|Too many connections|Lost connection[^\n]*|"
    r"Can't connect[^\n]*|Unknown MySQL server host[^\n]*|lock wait[^\n]*|"
    r"second timeout[^\n]*|server has gone away|max_user_connections[^\n]*)")


def _spamd_said(log: str, most: int = 5) -> list[str]:
    """The distinct trouble spamd logged, as the field report quotes it."""
    seen: dict[str, int] = {}
    for m in _SPAMD_TROUBLE.finditer(log):
        line = re.sub(r"\d+", "N", m.group(1)).strip()[:120]
        seen[line] = seen.get(line, 0) + 1
    return [f"spamd logged {n}x: {line}" for line, n in
            sorted(seen.items(), key=lambda kv: -kv[1])[:most]]


def _notes(run: _Run) -> list[str]:
    notes = list(run.notes) + _spamd_said(run.spamd_log)
    states = last_child_states(run.spamd_log)
    if states:
        notes.append(f"spamd's children when last logged: {states} "
                     f"({describe_states(states)})")
    if run.kernel is not None:
        counted = [f"{name.removeprefix('TcpExt')} {n}" for name, n in run.kernel.items() if n]
        notes.append("spamd's host counted: " + (", ".join(counted) if counted else
                                                  "no overflow, SYN cookie, reset or ICMP"))
    if run.calibration is not None:
        notes.append(f"this machine scans one message in {run.calibration.scan_s:.3f} s "
                     f"(median of {len(run.calibration.samples)}, {run.calibration.cores} "
                     "cores)")
    return notes


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]

