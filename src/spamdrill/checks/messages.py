"""Checks on what became of the messages: none lost or duplicated, how many were scanned,
how long each took against a bound or maildrop's budget (sans-IO)."""

from __future__ import annotations

import math
import re
from typing import Annotated

import msgspec

from spamdrill.checks.base import (
    CheckResult,
    CheckSpec,
    Fraction,
    Seconds,
    ids_of,
    judged,
    must_compile,
)
from spamdrill.evidence import Evidence
from spamdrill.history import MessageRecord


class NothingLost(CheckSpec, tag="nothing_lost", frozen=True):
    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome in ("lost", "error")]
        return judged("nothing lost", not bad, f"{len(ms) - len(bad)}/{len(ms)} came back"
                       + (f"; {len(bad)} lost or errored" if bad else ""), ids_of(bad))


class AllUnscanned(CheckSpec, tag="all_unscanned", frozen=True):
    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome != "unscanned"]
        return judged("all came back unscanned (fail-open)", bool(ms) and not bad,
                       f"{len(ms) - len(bad)}/{len(ms)} unscanned", ids_of(bad))


class ScannedFraction(CheckSpec, tag="scanned_fraction", frozen=True):
    """The scanned share of all messages, or of those whose corpus kind starts with ``of``
    (``"large:180000"``): one drill can expect small messages scanned and big ones not."""

    min: Fraction = 0.0
    max: Fraction = 1.0
    of: str = ""

    def judge(self, ev: Evidence) -> CheckResult:
        ms = [m for m in ev.history.messages if m.kind.startswith(self.of)]
        scanned = [m for m in ms if m.scanned]
        frac = len(scanned) / len(ms) if ms else 0.0
        ok = bool(ms) and self.min <= frac <= self.max
        which = f" of {self.of}" if self.of else ""
        return judged(f"scanned fraction{which} in [{self.min:g}, {self.max:g}]", ok,
                       f"{len(scanned)}/{len(ms)} scanned ({frac:.0%})",
                       [] if ok else ids_of([m for m in ms if not m.scanned]))


def _worst(ms: list[MessageRecord]) -> float:
    return max((m.seconds if m.seconds is not None else math.inf for m in ms), default=0.0)


class LatencyBound(CheckSpec, tag="latency_bound", frozen=True):
    TIME_FIELDS = ("max_s",)
    max_s: Seconds

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.seconds is None or m.seconds > self.max_s]
        return judged(f"every message back within {self.max_s:g} s", not bad,
                       f"worst {_worst(ms):.2f} s", ids_of(bad))


class WaitedAtLeast(CheckSpec, tag="waited_at_least", frozen=True):
    """At least ``min`` messages took ``min_s`` or longer (a condition: the slow scan or
    the timeout a drill is about really made the mail wait, on this machine)."""

    TIME_FIELDS = ("min_s",)
    min_s: Seconds
    min: Annotated[int, msgspec.Meta(ge=1)] = 1

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        waited = [m for m in ms if m.seconds is not None and m.seconds >= self.min_s]
        return judged(f"at least {self.min} waited {self.min_s:g} s or longer",
                       len(waited) >= self.min, f"{len(waited)} of {len(ms)} did "
                       f"(worst {_worst(ms):.2f} s)")


class ReasonSeen(CheckSpec, tag="reason_seen", frozen=True):
    """At least ``min`` messages came back with a reason matching ``pattern`` (a condition:
    the answer a drill is about, e.g. rspamd's ``soft reject``, really came back)."""

    pattern: str
    min: Annotated[int, msgspec.Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        must_compile(self.pattern)

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        seen = [m for m in ms if re.search(self.pattern, m.reason)]
        return judged(f"at least {self.min} came back with a reason matching /{self.pattern}/",
                      len(seen) >= self.min, f"{len(seen)} of {len(ms)} did")


class DeliveryBudget(CheckSpec, tag="delivery_budget", frozen=True):
    """A hypothesis that spamc returns within maildrop's global timeout (default: the
    drill's budget). Whether crossing it bounces is a finding, not this check's business."""

    TIME_FIELDS = ("budget_s",)
    budget_s: Seconds | None = None

    def judge(self, ev: Evidence) -> CheckResult:
        budget = self.budget_s if self.budget_s is not None else ev.budget_s
        ms = ev.history.messages
        bad = [m for m in ms if m.seconds is None or m.seconds >= budget]
        return judged(f"within maildrop's budget ({budget:g} s)", not bad,
                       f"worst {_worst(ms):.2f} s"
                       + (f"; {len(bad)} past it" if bad else ""), ids_of(bad))


class NothingDuplicated(CheckSpec, tag="nothing_duplicated", frozen=True):
    """End to end: no message delivered twice (a wrapper that retries what was
    delivered, a Postfix retry after a delivery it was not told of)."""

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome == "duplicated"]
        return judged("nothing duplicated", bool(ms) and not bad,
                       f"{len(bad)} of {len(ms)} delivered more than once", ids_of(bad))
