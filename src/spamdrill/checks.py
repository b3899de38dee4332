"""Invariants over a history, sans-IO. Each check returns ok/detail and names the messages
that broke it, so a failing drill points at evidence, not at a summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from spamdrill.history import History, MessageRecord


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    offenders: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "offenders": self.offenders[:50]}


def _ids(ms: list[MessageRecord]) -> list[str]:
    return [m.id for m in ms]


def nothing_lost(h: History) -> CheckResult:
    bad = [m for m in h.messages if m.outcome in ("lost", "error")]
    return CheckResult("nothing lost", not bad,
                       f"{len(h.messages) - len(bad)}/{len(h.messages)} came back"
                       + (f"; {len(bad)} lost or errored" if bad else ""), _ids(bad))


def all_unscanned(h: History) -> CheckResult:
    bad = [m for m in h.messages if m.outcome != "unscanned"]
    return CheckResult("all came back unscanned (fail-open)", not bad,
                       f"{len(h.messages) - len(bad)}/{len(h.messages)} unscanned", _ids(bad))


def scanned_fraction(h: History, min: float = 0.0, max: float = 1.0,
                     of: str = "") -> CheckResult:
    """The scanned share of all messages, or of those whose corpus kind starts with ``of``
    (``"large:180000"``): one drill can expect small messages scanned and big ones not."""
    ms = [m for m in h.messages if m.kind.startswith(of)]
    scanned = [m for m in ms if m.outcome in ("spam", "ham")]
    frac = len(scanned) / len(ms) if ms else 0.0
    ok = bool(ms) and min <= frac <= max
    which = f" of {of}" if of else ""
    return CheckResult(f"scanned fraction{which} in [{min:g}, {max:g}]", ok,
                       f"{len(scanned)}/{len(ms)} scanned ({frac:.0%})",
                       [] if ok else _ids([m for m in ms if m not in scanned]))


def latency_bound(h: History, max_s: float) -> CheckResult:
    bad = [m for m in h.messages if m.seconds is None or m.seconds > max_s]
    worst = max((m.seconds or float("inf") for m in h.messages), default=0.0)
    return CheckResult(f"every message back within {max_s:g} s", not bad,
                       f"worst {worst:.2f} s", _ids(bad))


def delivery_budget(h: History, budget_s: float) -> CheckResult:
    """The check that matters most: maildrop kills a delivery after its global timeout."""
    bad = [m for m in h.messages if m.seconds is None or m.seconds >= budget_s]
    worst = max((m.seconds or float("inf") for m in h.messages), default=0.0)
    return CheckResult(
        f"within maildrop's budget ({budget_s:g} s)", not bad,
        f"worst {worst:.2f} s" + (f"; {len(bad)} would bounce as 'Timeout quota exceeded.'"
                                  if bad else ""), _ids(bad))


def staircase(h: History, min_step_s: float = 0.0) -> CheckResult:
    """Scanned messages finish one after another: every step between consecutive finishes
    is positive (served by one child at a time)."""
    scanned = sorted((m for m in h.messages if m.outcome in ("spam", "ham")
                      and m.end_ns is not None), key=lambda m: m.end_ns or 0)
    steps = [((b.end_ns or 0) - (a.end_ns or 0)) / 1e9 for a, b in pairwise(scanned)]
    bad = [scanned[i + 1] for i, s in enumerate(steps) if s <= min_step_s]
    ok = len(scanned) >= 2 and not bad
    detail = (f"{len(scanned)} scanned, steps {min(steps):.2f} to {max(steps):.2f} s"
              if steps else f"{len(scanned)} scanned: no staircase to see")
    return CheckResult("staircase: each finishes a positive step after the previous", ok,
                       detail, _ids(bad))


def unscanned_near_timeout(h: History, timeout_s: float, tolerance_s: float) -> CheckResult:
    """Messages that came back unscanned did so at about spamc's -t, not before or long
    after."""
    un = [m for m in h.messages if m.outcome == "unscanned"]
    bad = [m for m in un if m.seconds is None or abs(m.seconds - timeout_s) > tolerance_s]
    ok = bool(un) and not bad
    return CheckResult(f"unscanned ones returned at -t ({timeout_s:g} ± {tolerance_s:g} s)",
                       ok, f"{len(un)} unscanned" + (f", {len(bad)} outside" if bad else ""),
                       _ids(bad))


def spamd_log(_h: History, log_text: str, pattern: str, min: int = 1) -> CheckResult:
    found = len(re.findall(pattern, log_text))
    return CheckResult(f"spamd logged /{pattern}/ at least {min} time(s)", found >= min,
                       f"{found} times")


def kernel_counter(_h: History, counters: dict[str, int], counter: str, min: int = 0,
                   max: int | None = None) -> CheckResult:
    """How much a TCP counter of spamd's host grew during the load (multi-host topology:
    ``spamdrill.proto.netstat``), e.g. ``TcpExtListenOverflows`` for a full accept queue."""
    if counter not in counters:
        return CheckResult(f"kernel counter {counter}", False,
                           "not measured (needs the hosts topology)" if not counters
                           else "the kernel has no such counter")
    got = counters[counter]
    bound = f">= {min}" + (f" and <= {max}" if max is not None else "")
    return CheckResult(f"spamd's host counted {counter} {bound}",
                       got >= min and (max is None or got <= max), f"{got}")


def model_agrees(h: History, mode: str | None = None, syn_linear: int = 0) -> CheckResult:
    """Each case's measured worst time against the budget model's prediction
    (``spamdrill.budget``), for the flags its messages were sent with. ``mode``: the budget
    mode the whole scenario stands for (else each case's listener says); ``syn_linear``:
    the kernel's ``tcp_syn_linear_timeouts``, which the runner reads."""
    from spamdrill.budget import spamc as spamc_model
    from spamdrill.budget.verify import UNBOUNDED, agrees, predict

    lines, good, bad, seen = [], [], [], 0
    for case, ms in sorted(h.by_case().items()):
        listener = case.split(" ", 1)[0]
        predicted = predict(listener, ms[0].spamc_args, mode, count=len(ms),
                            syn_linear=syn_linear)
        measured = max((m.seconds for m in ms if m.seconds is not None), default=None)
        if predicted is None or measured is None:
            continue
        seen += 1
        bound = spamc_model.silent(spamc_model.parse_args(ms[0].spamc_args)) or 0.0
        ok = agrees(predicted, measured, bound)
        shown = "unbounded" if predicted == UNBOUNDED else f"{predicted:g} s"
        line = f"{case or mode}: predicted {shown}, measured {measured:.2f} s"
        if not ok:
            bad += [m.id for m in ms]
            lines.append(line)
        else:
            good.append(line)
    detail = (f"{seen} case(s) agree: " + "; ".join(good[:3]) + ("; ..." if len(good) > 3
                                                                 else "")
              if not lines else "; ".join(lines))
    return CheckResult("budget model agrees with the measurements", seen > 0 and not lines,
                       detail, bad)


Check = Callable[..., CheckResult]
CHECKS: dict[str, Check] = {
    "nothing_lost": nothing_lost,
    "all_unscanned": all_unscanned,
    "scanned_fraction": scanned_fraction,
    "latency_bound": latency_bound,
    "delivery_budget": delivery_budget,
    "staircase": staircase,
    "unscanned_near_timeout": unscanned_near_timeout,
    "spamd_log": spamd_log,
    "model_agrees": model_agrees,
    "kernel_counter": kernel_counter,
}
