"""Run drills: lab up -> calibrate -> nemesis set-up -> load on the nemesis' clock -> heal
-> evidence -> checks -> verdict and findings.

Each drill gets its own fresh lab, so none inherits another's state, and everything it
started is taken down in a ``finally``. A drill that cannot run (its lab fails to start)
is an ``error`` result, and the run goes on with the next.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from spamdrill import runmodel
from spamdrill.budget.inputs import kernel_syn_linear_timeouts
from spamdrill.checks import CheckResult, verdict
from spamdrill.drills import calibrate, lablogs
from spamdrill.drills.control import RealLab
from spamdrill.drills.findings import Budgets, findings
from spamdrill.drills.nemesis.timeline import Nemesis
from spamdrill.drills.scenario import AnyTarget, Drill, LoadSpec, Scenario
from spamdrill.drills.targets import Load, LoadPlan, plan_offsets
from spamdrill.drills.timing import (
    MAILDROP_BUDGET_S,
    UNCOMPRESSED,
    Scale,
    as_placeholders,
)
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import Calibration, Evidence, FaultReport
from spamdrill.history import History, MessageRecord
from spamdrill.lab import config as lab_config
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import netns
from spamdrill.lab.config import LabConfig
from spamdrill.lab.layout import Layout, socket_room
from spamdrill.lab.procs import shielded
from spamdrill.lab.state import LabState
from spamdrill.load import spamc
from spamdrill.logexcerpt import Excerpt
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
    findings: list[runmodel.FindingRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    faults: tuple[FaultReport, ...] = ()
    calibration: Calibration | None = None
    error: str = ""
    logs: list[Excerpt] = field(default_factory=list)  # the lab's logs, kept in the run
    lab_argv: dict[str, list[str]] = field(default_factory=dict)  # how each ran (flags)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.checks, self.faults, self.error)

    @property
    def finding(self) -> Finding:
        return Finding.worst([f.finding for f in self.findings])

    @property
    def worst_s(self) -> float | None:
        times = [m.seconds for m in self.history.messages if m.seconds is not None]
        return max(times) if times else None

    def document(self) -> runmodel.Scenario:
        """This drill as the run document keeps it (``spamdrill.runmodel``)."""
        sc = self.scenario
        cal = self.calibration.rounded() if self.calibration else None
        return runmodel.Scenario(
            name=self.name, hypothesis=sc.hypothesis, stands_for=sc.stands_for,
            verdict=self.verdict, finding=self.finding, error=self.error,
            scale=round(self.scale, 4), budget_s=round(self.budget_s, 3),
            timing=runmodel.Timing(compressed=sc.timing.compress, why=sc.timing.why,
                                   does_not_compress=list(UNCOMPRESSED), calibration=cal),
            checks=self.checks,
            fault_evidence=list(self.faults), findings=list(self.findings),
            notes=list(self.notes), messages=list(self.history.messages),
            faults=list(self.history.faults), logs=list(self.logs),
            lab_argv=dict(self.lab_argv))


def run_scenario(sc: Scenario, *, scale: float, base: LabConfig, workdir: Path,
                 progress: Progress = lambda name, done, total: None,
                 count: int | None = None, wrappers: tuple[Path, ...] = (),
                 system_spamc: tuple[str, ...] | None = None,
                 loader: Loader | None = None) -> list[ScenarioResult]:
    """Run one scenario (once per variant); ``count`` overrides the message count;
    ``wrappers``: end to end, wrappers under test besides the scenario's own;
    ``system_spamc``: a system's own spamc flags (``--etc``), for the drills that use the
    default ones; ``loader``: the load run elsewhere (Locust's workers), else the target's
    own."""
    return [run_drill(d, scale=scale, base=base, workdir=workdir / d.name.replace("/", "_"),
                      progress=progress, count=count, wrappers=wrappers,
                      system_spamc=system_spamc, loader=loader) for d in sc.drills()]


def _lab_config(base: LabConfig, drill: Drill, scale: Scale) -> LabConfig:
    sections = dict(drill.lab)
    sections["spamd"] = scale.spamd(sections["spamd"])
    return lab_config.with_overrides(base, sections)


def _budgets(config: LabConfig, scale: Scale) -> Budgets:
    d = config.delivery
    return Budgets(scale.seconds(MAILDROP_BUDGET_S), scale.seconds(d.postfix_time_limit),
                   d.wrapper, scale.seconds(d.deadline), tuple(d.wrapper_fates.items()))


@dataclass
class _Run:
    """What one drill gathers while it runs, for its evidence."""

    history: History = field(default_factory=History)
    calibration: Calibration | None = None
    kernel: dict[str, int] | None = None
    spamd_log: str = ""
    logs: list[Excerpt] = field(default_factory=list)
    lab_argv: dict[str, list[str]] = field(default_factory=dict)
    faults: tuple[FaultReport, ...] = ()
    marks: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str = ""


def run_drill(drill: Drill, *, scale: float, base: LabConfig, workdir: Path,
              progress: Progress = lambda name, done, total: None,
              count: int | None = None, wrappers: tuple[Path, ...] = (),
              system_spamc: tuple[str, ...] | None = None,
              loader: Loader | None = None) -> ScenarioResult:
    sc = drill.scenario
    drill_scale = Scale(scale if sc.timing.compress else 1.0)
    config = _lab_config(base, drill, drill_scale)
    run = _Run()
    flags = list(sc.load.spamc_args)
    if system_spamc is not None and sc.load.spamc_args == LoadSpec().spamc_args:
        flags = as_placeholders(system_spamc)  # the system's, where the drill has no own

    def plan_of(cal: Calibration | None) -> LoadPlan:
        return _plan(drill, drill_scale, count, wrappers, flags, cal)

    try:
        _execute(drill, drill_scale, config, workdir, plan_of, run, progress, loader)
    except (SpamdrillError, OSError) as exc:
        run.error = str(exc)
    budget_s = drill_scale.seconds(MAILDROP_BUDGET_S)
    ev = Evidence(run.history, drill_scale.factor, budget_s, run.spamd_log, run.kernel,
                  run.faults, run.calibration, config.spamd.max_children,
                  kernel_syn_linear_timeouts(), run.marks)
    checks = drill.judge(ev, drill_scale)
    rows = findings(run.history.by_case(), sc.failure_mode(), _budgets(config, drill_scale))
    return ScenarioResult(drill.name, sc, drill_scale.factor, budget_s, run.history,
                          checks, rows, _notes(run), run.faults, run.calibration, run.error,
                          run.logs, run.lab_argv)


def lab_dir_for(base: Path, name: str) -> Path:
    """A new drill lab's directory: unique, named after the drill as far as its Unix
    sockets leave room (a long TMPDIR and a long drill name cut the name)."""
    unique = uuid.uuid4().hex[:8]
    room = socket_room(base / unique) - 1
    return base / (f"{unique}-{name.replace('/', '_')[:room]}" if room > 0 else unique)


@contextmanager
def _lab(drill: Drill, config: LabConfig, run: _Run,
         workdir: Path) -> Iterator[LabState | None]:
    """A fresh lab for this drill (none if it needs none), always taken down."""
    if not drill.scenario.needs_lab:
        yield None
        return
    lab_dir = lab_dir_for(lab_ops.drill_labs_dir(), drill.name)
    try:
        yield lab_ops.up(lab_dir, config)
    finally:
        with shielded():  # a second Ctrl-C must not leave a lab behind
            try:
                run.spamd_log = Path(lab_dir, "spamd", "spamd.log").read_text(errors="replace")
            except OSError:
                run.spamd_log = ""
            run.logs = lablogs.keep(lab_dir, workdir / "logs")
            state = LabState.load(Layout(lab_dir))
            run.lab_argv = dict(state.argv) if state is not None else {}
            lab_ops.down(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)


def _execute(drill: Drill, scale: Scale, config: LabConfig, workdir: Path, plan_of: PlanOf,
             run: _Run, progress: Progress, loader: Loader | None) -> None:
    sc = drill.scenario
    with _lab(drill, config, run, workdir) as state:
        ctl = RealLab(state) if state is not None else None
        if state is not None and sc.timing.calibrate:
            run.calibration = calibrate.measure(state)
        nemesis = Nemesis(sc.fault.build(scale), sc.fault.schedule(scale), ctl) \
            if sc.fault is not None and ctl is not None else None
        load: Load | None = None
        try:
            if nemesis is not None:
                nemesis.before_load()
            plan = plan_of(run.calibration)
            load = sc.target.prepare(plan, scale, ctl) if loader is None else \
                Delegated(loader, plan, sc.target, ctl, scale)
            host = state.network.host("spamd") if state and state.network else None
            before = netns.tcp_counters(host) if host else {}
            load.run(workdir, nemesis.start if nemesis else lambda t0: None,
                     lambda done, total: progress(drill.name, done, total))
            if host is not None:
                run.kernel = netstat.delta(before, netns.tcp_counters(host))
        finally:
            with shielded():  # heal before the lab goes: nothing is left injected
                if nemesis is not None:
                    _heal(nemesis, run)
                if load is not None:
                    run.history.messages = load.records()  # after the heal: end to end,
                    run.notes += load.notes()              # deferred mail goes on
                    load.close()


def _heal(nemesis: Nemesis, run: _Run) -> None:
    nemesis.heal()
    run.faults = (nemesis.evidence(),)
    run.history.faults = nemesis.windows
    run.notes += nemesis.fault.notes()
    run.marks = nemesis.fault.marks()
    nemesis.teardown()


PlanOf = Callable[[Calibration | None], LoadPlan]


@dataclass(frozen=True)
class LoadRequest:
    """What a load run elsewhere needs: the plan, what spamc talks to, the runner's hooks
    (``spamdrill.dist``: Locust's master and workers)."""

    plan: LoadPlan
    target: AnyTarget
    lab: RealLab | None
    scale: Scale
    workdir: Path
    max_wait: float
    started: Callable[[float], None]
    progress: Callable[[int, int], None]


Loader = Callable[[LoadRequest], spamc.LoadResult]


@dataclass
class Delegated:
    """A ``Load`` a ``Loader`` runs (the distributed flood); its records come back when
    it is done."""

    loader: Loader
    plan: LoadPlan
    target: AnyTarget
    lab: RealLab | None
    scale: Scale
    result: spamc.LoadResult | None = None

    def run(self, workdir: Path, started: Callable[[float], None],
            progress: Callable[[int, int], None]) -> None:
        self.result = self.loader(LoadRequest(self.plan, self.target, self.lab, self.scale,
                                              workdir, self.plan.max_wait, started, progress))

    def records(self) -> list[MessageRecord]:
        return self.result.records if self.result is not None else []

    def notes(self) -> list[str]:
        return self.result.notes if self.result is not None else []

    def close(self) -> None:
        """Nothing held here: the loader took its workers down."""


def _plan(drill: Drill, scale: Scale, count: int | None, wrappers: tuple[Path, ...],
          flags: list[str], cal: Calibration | None) -> LoadPlan:
    load = drill.scenario.load
    args = scale.expand(flags)
    n = count or drill.count or (calibrate.fill_count(load.fill, args, cal)
                                 if load.fill is not None and cal is not None else load.count)
    offsets = plan_offsets(load.schedule, n, scale.rate(load.rate), load.step,
                           scale.seconds(load.interval))
    return LoadPlan(n, load.kinds, offsets, args, scale.seconds(load.max_wait), wrappers,
                    load.client)


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
                     f"(median of {len(run.calibration.samples)}, {run.calibration.cores:g} "
                     "cores)")
    return notes


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]

