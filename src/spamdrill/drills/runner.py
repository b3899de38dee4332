"""Run scenarios: set up -> load + nemesis -> heal -> drain -> check -> report.

Each scenario (and each variant of it) gets its own fresh lab, so no drill inherits
another's state, and everything it started is taken down in a ``finally``.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spamdrill import corpus
from spamdrill.budget.inputs import kernel_syn_linear_timeouts
from spamdrill.checks import CHECKS, CheckResult
from spamdrill.drills import fakes, nemesis
from spamdrill.drills.scenario import (
    MAILDROP_BUDGET_S,
    Scenario,
    Variant,
    expand_args,
    scaled_check_args,
    scaled_spamd,
)
from spamdrill.errors import SpamdrillError
from spamdrill.history import FaultEvent, History, MessageRecord
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import netns
from spamdrill.lab.config import LabConfig, SpamdSettings
from spamdrill.lab.procs import shielded
from spamdrill.lab.proxy import MODES as PROXY_MODES
from spamdrill.lab.proxy import Shape
from spamdrill.load import schedule, spamc
from spamdrill.proto import netstat
from spamdrill.proto.spamd_log import describe_states, last_child_states

UNCOMPRESSED = ("spamc's --retry-sleep (whole seconds, 1 s by default)", "scan time",
                "process start-up",
                "the kernel's TCP timers (a dropped SYN is sent again after 1 s, then 3 s)")
Progress = Callable[[str, int, int], None]


@dataclass
class ScenarioResult:
    name: str
    scenario: Scenario
    scale: float
    budget_s: float
    history: History
    checks: list[CheckResult]
    findings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "pass" if all(c.ok for c in self.checks) else "fail"

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name, "hypothesis": self.scenario.hypothesis,
            "stands_for": self.scenario.stands_for, "verdict": self.verdict,
            "scale": round(self.scale, 4), "budget_s": round(self.budget_s, 3),
            "does_not_compress": list(UNCOMPRESSED),
            "checks": [c.public() for c in self.checks],
            "findings": self.findings, "notes": self.notes,
            "messages": [_message_doc(m) for m in self.history.messages],
            "faults": [{"name": f.name, "start_ns": f.start_ns, "end_ns": f.end_ns,
                        "detail": f.detail} for f in self.history.faults],
        }


def _message_doc(m: MessageRecord) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "size": m.size, "case": m.case,
            "start_ns": m.start_ns, "end_ns": m.end_ns, "outcome": m.outcome,
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
                 count: int | None = None) -> list[ScenarioResult]:
    """Run one scenario (once per variant); ``count`` overrides the message count."""
    variants: list[Variant | None] = list(sc.variants) or [None]
    scale = sc.effective_scale(scale)
    results = []
    for v in variants:
        name = f"{sc.name}/{v.name}" if v is not None else sc.name
        one = replace(sc, spamd={**sc.spamd, **v.spamd},
                      topology={**sc.topology, **v.topology},
                      checks=[*sc.checks, *v.checks],
                      count=v.count or sc.count) if v is not None else sc
        results.append(_run_one(one, name, scale=scale, base=base,
                                workdir=workdir / name.replace("/", "_"),
                                progress=progress, count=count))
    return results


def _lab_config(base: LabConfig, sc: Scenario, scale: float) -> LabConfig:
    settings = scaled_spamd(sc.spamd, scale)
    sections = {"database": sc.database, "dns": sc.dns, "topology": sc.topology}
    try:
        return replace(base, spamd=replace(base.spamd, **settings),
                       **{k: replace(getattr(base, k), **v) for k, v in sections.items()})
    except TypeError as exc:
        known = ", ".join(f for f in SpamdSettings.__dataclass_fields__)
        raise SpamdrillError(f"bad lab setting in scenario: {exc}",
                             f"spamd settings: {known}; see docs/CONFIG.md") from None


def _run_one(sc: Scenario, name: str, *, scale: float, base: LabConfig, workdir: Path,
             progress: Progress, count: int | None) -> ScenarioResult:
    budget = MAILDROP_BUDGET_S / scale
    config = _lab_config(base, sc, scale)
    n = count if count is not None else sc.count
    history = History()
    state: lab_ops.LabState | None = None
    lab_dir = lab_ops.drill_labs_dir() / f"{uuid.uuid4().hex[:8]}-{name.replace('/', '_')}"
    fault: nemesis.Fault = nemesis.Fault()
    listeners: list[fakes.Fake] = []
    notes: list[str] = []
    spamd_log = ""
    kernel: dict[str, int] = {}
    try:
        if sc.lab:
            state = lab_ops.up(lab_dir, config)
        fault = _fault(sc, scale, state, config)
        via = fault.start() if isinstance(fault, nemesis.ProxyFault) else None
        jobs, listeners = _jobs(sc, n, scale, state, via)
        fault.before_load()
        spamd_host = state.network.host("spamd") if state and state.network else None
        before = netns.tcp_counters(spamd_host) if spamd_host else {}
        total = len(jobs)
        result = spamc.run(
            jobs, workdir / "spamc", max_wait=sc.max_wait_s / scale,
            actions=fault.actions(),
            progress=lambda done, _t: progress(name, done, total))
        history.messages = result.records
        if spamd_host is not None:
            kernel = netstat.delta(before, netns.tcp_counters(spamd_host))
        for action, ns, detail in result.actions:
            history.faults.append(FaultEvent(f"action:{action}", ns, ns, detail))
    finally:
        with shielded():  # a second Ctrl-C must not leave a fault or a lab behind
            fault.heal()
            for f in listeners:
                f.close()
            if state is not None:
                try:
                    spamd_log = state.layout.spamd_log.read_text(errors="replace")
                except OSError:
                    spamd_log = ""
                lab_ops.down(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)
    history.faults.extend(fault.events)
    if isinstance(fault, nemesis.DbFault):
        notes += [f"database showed: {snap}" for snap in fault.snapshots]
    notes += _spamd_said(spamd_log)
    states = last_child_states(spamd_log)
    if states:
        notes.append(f"spamd's children when last logged: {states} "
                     f"({describe_states(states)})")
    if kernel:
        counted = [f"{name.removeprefix('TcpExt')} {n}" for name, n in kernel.items() if n]
        notes.append("spamd's host counted: " + (", ".join(counted) if counted else
                                                  "no overflow, SYN cookie, reset or ICMP"))
    if isinstance(fault, nemesis.StallingClients):
        notes.append("stalled clients closed by spamd after "
                     + ", ".join(f"{s:.1f} s" for s in fault.closed_after)
                     if fault.closed_after else "spamd never closed the stalled clients")
    checks = [_check(c, history, scale, spamd_log, kernel) for c in sc.checks]
    findings = [{"case": case or "all", **summarize(ms)}
                for case, ms in sorted(history.by_case().items())]
    return ScenarioResult(name, sc, scale, budget, history, checks, findings, notes)


_SPAMD_TROUBLE = re.compile(
    r"(SQL error[^\n]*|service unavailable[^\n]*|Too many connections|Lost connection[^\n]*|"
    r"Can't connect[^\n]*|Unknown MySQL server host[^\n]*|lock wait[^\n]*|"
    r"second timeout[^\n]*|server has gone away)")


def _spamd_said(log: str, most: int = 5) -> list[str]:
    """The distinct trouble spamd logged, as the field report quotes it."""
    seen: dict[str, int] = {}
    for m in _SPAMD_TROUBLE.finditer(log):
        line = re.sub(r"\d+", "N", m.group(1)).strip()[:120]
        seen[line] = seen.get(line, 0) + 1
    return [f"spamd logged {n}x: {line}" for line, n in
            sorted(seen.items(), key=lambda kv: -kv[1])[:most]]


def _check(spec: dict[str, Any], history: History, scale: float,
           spamd_log: str, kernel: dict[str, int]) -> CheckResult:
    kind = spec["kind"]
    args = scaled_check_args(spec, scale)
    if kind == "delivery_budget":
        args.setdefault("budget_s", MAILDROP_BUDGET_S / scale)
    if kind == "spamd_log":
        return CHECKS[kind](history, spamd_log, **args)
    if kind == "kernel_counter":
        return CHECKS[kind](history, kernel, **args)
    if kind == "model_agrees":
        args.setdefault("syn_linear", kernel_syn_linear_timeouts())
    return CHECKS[kind](history, **args)


def _jobs(sc: Scenario, n: int, scale: float, state: lab_ops.LabState | None,
          via: tuple[str, int] | None = None,
          ) -> tuple[list[tuple[corpus.Message, list[str], float, str]], list[fakes.Fake]]:
    """One job per message, run where the lab's clients live; ``via`` (a fault proxy's
    address) replaces spamd's."""
    spamc_bin = shutil.which("spamc") or "/usr/bin/spamc"
    seed = int.from_bytes(os.urandom(3), "big")  # unique across runs: Bayes never saw them
    if sc.fault.get("kind") == "fakes":
        return _fake_jobs(sc, scale, spamc_bin, seed)
    offs = schedule.offsets(sc.schedule, n, rate=sc.rate * scale, step=sc.step,
                            interval=sc.interval_s / scale)
    msgs = corpus.mix(sc.kinds, n, seed=seed)
    args = expand_args(sc.spamc_args, scale)
    if sc.fault.get("kind") == "target":  # spamdrill flood --target: only what was named
        base = [spamc_bin, "-l", "-d", str(sc.fault["host"]), "-p", str(sc.fault["port"])]
        return [(m, [*base, *args], offs[i], "") for i, m in enumerate(msgs)], []
    assert state is not None
    users = list(state.users)
    host, port = via or (state.spamd_host, state.spamd_port)
    base = [spamc_bin, "-l", "-d", host, "-p", str(port)]
    return [(m, state.client_argv([*base, *args, "-u", users[i % len(users)]]), offs[i], "")
            for i, m in enumerate(msgs)], []


def _fake_jobs(sc: Scenario, scale: float, spamc_bin: str, seed: int,
               ) -> tuple[list[tuple[corpus.Message, list[str], float, str]], list[fakes.Fake]]:
    drip = float(sc.fault.get("drip_interval", 15)) / scale
    jobs: list[tuple[corpus.Message, list[str], float, str]] = []
    listeners: list[fakes.Fake] = []
    i = 0
    try:
        for block in sc.cases:
            for kind in block["listeners"]:
                for flags in block["flag_sets"]:
                    fake = fakes.Fake(kind, drip_interval=drip)
                    listeners.append(fake)
                    args = expand_args(list(flags), scale)
                    # a peer that does not read only shows with a message bigger than
                    # the socket buffers; -s lets spamc send it
                    extra, msg_kind = (["-s", "1000000"], "large:400000") \
                        if kind == "nonreader" else ([], sc.kinds[0])
                    for _ in range(int(block.get("count", 1))):
                        msg = corpus.make(msg_kind, seed * 1000 + i)
                        i += 1
                        argv = [spamc_bin, "-l", "-d", "127.0.0.1", "-p", str(fake.port),
                                *args, *extra]
                        jobs.append((msg, argv, 0.0, f"{kind} {' '.join(args)}"))
    except BaseException:
        for f in listeners:
            f.close()
        raise
    return jobs, listeners


def _fault(sc: Scenario, scale: float, state: lab_ops.LabState | None,
           config: LabConfig) -> nemesis.Fault:
    kind = sc.fault.get("kind", "none")
    at = float(sc.fault.get("at", 0)) / scale
    if kind == "spamd-down":
        return nemesis.SpamdDown(name=kind, state=state, config=config)
    if kind == "spamd-stop":
        return nemesis.SpamdStop(name=kind, state=state, config=config, at=at)
    if kind == "spamd-start":
        return nemesis.SpamdStart(name=kind, state=state, config=config, at=at)
    if kind == "db":
        db_kind = str(sc.fault.get("db", "read-lock"))
        if db_kind not in nemesis.DbFault.KINDS:
            raise SpamdrillError(f"scenario {sc.name}: unknown database fault {db_kind!r}",
                                 "known: " + ", ".join(nemesis.DbFault.KINDS))
        return nemesis.DbFault(name=f"db-{db_kind}", state=state, config=config,
                               kind=db_kind, at=at,
                               duration=float(sc.fault.get("duration", 0)) / scale,
                               max_connections=int(sc.fault.get("max_connections", 5)))
    if kind == "dns":
        rules = [(str(r["name"]), str(r["mode"]), float(r.get("delay", 0)) / scale)
                 for r in sc.fault.get("rules", [])]
        return nemesis.DnsFault(name="dns", state=state, rules=rules, at=at)
    if kind == "proxy":
        f = sc.fault
        shape = Shape(mode=str(f.get("mode", "pass")),
                      latency=float(f.get("latency", 0)) / scale,
                      jitter=float(f.get("jitter", 0)) / scale,
                      rate=float(f.get("rate", 0)) * scale,
                      slice=int(f.get("slice", 1)),
                      interval=float(f.get("interval", 0)) / scale,
                      after=int(f.get("after", 0)))
        if shape.mode not in PROXY_MODES:
            raise SpamdrillError(f"scenario {sc.name}: unknown proxy mode {shape.mode!r}",
                                 "known: " + ", ".join(PROXY_MODES))
        link = str(f.get("link", "spamc-spamd"))
        if link not in nemesis.PROXY_LINKS:
            raise SpamdrillError(f"scenario {sc.name}: unknown proxy link {link!r}",
                                 "known: " + ", ".join(nemesis.PROXY_LINKS))
        return nemesis.ProxyFault(name=f"proxy-{link}-{shape.mode}", state=state,
                                  shape=shape, link=link, at=at)
    if kind == "packets":
        f = sc.fault
        host, action = str(f.get("host", "db")), str(f.get("action", "drop"))
        if host not in nemesis.PACKET_HOSTS or action not in netns.PACKET_ACTIONS:
            raise SpamdrillError(
                f"scenario {sc.name}: bad packet fault host={host!r} action={action!r}",
                f"host: {', '.join(nemesis.PACKET_HOSTS)}; action: "
                f"{', '.join(netns.PACKET_ACTIONS)}")
        return nemesis.PacketFault(name=f"packets-{host}-{action}", state=state, host=host,
                                   action=action, established=bool(f.get("established")),
                                   at=at, duration=float(f.get("duration", 0)) / scale)
    if kind == "stalling-clients":
        assert state is not None
        return nemesis.StallingClients(name=kind, host=state.spamd_host, port=state.spamd_port,
                                       count=int(sc.fault.get("count", 1)), at=at)
    return nemesis.Fault()


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


