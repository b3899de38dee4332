"""Checks on what the lab itself showed: spamd's log, the kernel's TCP counters, and the
budget model's prediction against the measured times (sans-IO)."""

from __future__ import annotations

import re

from spamdrill.checks.base import (
    CheckResult,
    CheckSpec,
    Count,
    ids_of,
    judged,
    must_compile,
    result,
)
from spamdrill.evidence import Evidence
from spamdrill.vocab import Mode


class SpamdLog(CheckSpec, tag="spamd_log", frozen=True):
    pattern: str
    min: Count = 1

    def __post_init__(self) -> None:
        must_compile(self.pattern)

    def judge(self, ev: Evidence) -> CheckResult:
        found = len(re.findall(self.pattern, ev.spamd_log))
        return judged(f"spamd logged /{self.pattern}/ at least {self.min} time(s)",
                       found >= self.min, f"{found} times")


class KernelCounter(CheckSpec, tag="kernel_counter", frozen=True):
    """How much a TCP counter of spamd's host grew during the load (hosts topology:
    ``spamdrill.proto.netstat``), e.g. ``TcpExtListenOverflows`` for a full accept queue."""

    counter: str
    min: Count = 0
    max: Count | None = None

    def judge(self, ev: Evidence) -> CheckResult:
        if ev.kernel is None:
            return result(f"kernel counter {self.counter}", "error",
                               "not measured: needs the hosts topology")
        if self.counter not in ev.kernel:
            return result(f"kernel counter {self.counter}", "error",
                               "the kernel has no such counter")
        got = ev.kernel[self.counter]
        bound = f">= {self.min}" + (f" and <= {self.max}" if self.max is not None else "")
        return judged(f"spamd's host counted {self.counter} {bound}",
                       got >= self.min and (self.max is None or got <= self.max), f"{got}")


class ModelAgrees(CheckSpec, tag="model_agrees", frozen=True):
    """Each case's measured worst time against the budget model's prediction
    (``spamdrill.budget``), for the flags its messages were sent with. ``mode``: the budget
    mode the whole scenario stands for (else each case's peer, a fake, says)."""

    mode: Mode | None = None

    def judge(self, ev: Evidence) -> CheckResult:
        from spamdrill.budget import spamc as spamc_model
        from spamdrill.budget.verify import UNBOUNDED, agrees, predict

        lines, good, bad, seen = [], [], [], 0
        for case, ms in sorted(ev.history.by_case().items()):
            predicted = predict(ms[0].peer, ms[0].spamc_args, self.mode, count=len(ms),
                                syn_linear=ev.syn_linear)
            measured = max((m.seconds for m in ms if m.seconds is not None), default=None)
            if predicted is None or measured is None:
                continue
            seen += 1
            bound = spamc_model.silent(spamc_model.parse_args(ms[0].spamc_args)) or 0.0
            shown = "unbounded" if predicted == UNBOUNDED else f"{predicted:g} s"
            line = f"{case or self.mode}: predicted {shown}, measured {measured:.2f} s"
            if agrees(predicted, measured, bound):
                good.append(line)
            else:
                bad += ids_of(ms)
                lines.append(line)
        detail = (f"{seen} case(s) agree: " + "; ".join(good[:3])
                  + ("; ..." if len(good) > 3 else "") if not lines else "; ".join(lines))
        return judged("budget model agrees with the measurements", seen > 0 and not lines,
                       detail, bad)
