"""Invariants over a drill's evidence, sans-IO, Jepsen's checker shape: every check is a typed
spec (its arguments validated when the scenario is parsed) with one method, ``judge``, that
takes the same ``Evidence`` and returns a result naming the messages that broke it.
``judge_safely`` turns a check that raises into ``error``, never a crash and never a pass
(Jepsen's ``check-safe``). A new check is one class here, added to ``CHECK_TYPES``.

Time arguments are production seconds, listed in each class's ``TIME_FIELDS`` and scaled
for the drill in one place (``scaled``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from spamdrill.evidence import NOT_OCCURRED, Evidence, FaultReport
from spamdrill.history import History, MessageRecord
from spamdrill.vocab import Fate, Mode, Verdict

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    offenders: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "ok": self.ok,
                "detail": self.detail, "offenders": self.offenders[:50]}


def _not_occurred(name: str, detail: str, offenders: list[str] | None = None,
                  ) -> CheckResult:
    """What a check says when the situation its hypothesis is about never arose (an
    overload that queued nothing, scans that ran side by side): ``error``, neither pass
    nor fail, because the drill did not test what it claims on this machine."""
    return CheckResult(name, "error", NOT_OCCURRED + detail, offenders or [])


def _result(name: str, ok: bool, detail: str, offenders: list[str] | None = None,
            ) -> CheckResult:
    return CheckResult(name, "pass" if ok else "fail", detail, offenders or [])


def _regex(pattern: str) -> None:
    """A check's pattern must compile: said when the scenario is read, not mid-drill."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None


def _ids(ms: list[MessageRecord]) -> list[str]:
    return [m.id for m in ms]


Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class CheckSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
            tag_field="kind"):
    """Base of every check: ``judge`` the evidence. ``case``: judge only the messages of
    that case (a wrapper end to end, a listener and its flags), as if they were all."""

    TIME_FIELDS: ClassVar[tuple[str, ...]] = ()
    case: str = ""

    @property
    def kind(self) -> str:
        return str(type(self).__struct_config__.tag)

    def judge(self, ev: Evidence) -> CheckResult:
        raise NotImplementedError

    def scaled(self, to_drill: Callable[[float], float]) -> CheckSpec:
        """This check with its production-second arguments turned into drill seconds
        (``to_drill``: the drill's ``timing.Scale.seconds``)."""
        changes = {f: to_drill(getattr(self, f)) for f in self.TIME_FIELDS
                   if getattr(self, f) is not None}
        return msgspec.structs.replace(self, **changes)


def judge_safely(check: CheckSpec, ev: Evidence) -> CheckResult:
    """A check that raises is ``error``: the drill cannot say, which is not a pass."""
    try:
        if not check.case:
            return check.judge(ev)
        h = ev.history
        mine = History([m for m in h.messages if m.case == check.case], h.faults)
        if not mine.messages:
            return CheckResult(f"{check.kind} ({check.case})", "error",
                               f"no message of case {check.case!r}")
        result = check.judge(dataclasses.replace(ev, history=mine))
        return dataclasses.replace(result, name=f"{result.name} ({check.case})")
    except Exception as exc:  # any crash of a checker is an error result
        return CheckResult(check.kind, "error", f"the check crashed: {exc!r}")


def judge_condition(check: CheckSpec, ev: Evidence) -> CheckResult:
    """A drill's condition (``[[conditions]]``: the overload, the refusals, the serialised
    scans) judged like a check, except that a condition that does not hold is ``error``
    ("the condition did not occur"), never ``fail``: without it the hypothesis was not
    tested, so the verdict can be neither confirmed nor refuted."""
    r = judge_safely(check, ev)
    name = f"condition: {r.name}"
    if r.status == "fail":
        return _not_occurred(name, r.detail, r.offenders)
    return dataclasses.replace(r, name=name)


def verdict(results: list[CheckResult], faults: tuple[FaultReport, ...] = (),
            error: str = "") -> Verdict:
    """A drill's verdict: ``error`` when the lab failed, a fault left no evidence, a check
    could not judge or a condition did not occur; else confirmed only if every check
    passed. One definition, for the runner and for the tests that feed made-up
    histories."""
    if error or any(not f.took_effect for f in faults) or \
            any(c.status == "error" for c in results):
        return Verdict.ERROR
    return Verdict.CONFIRMED if all(c.ok for c in results) else Verdict.REFUTED


class NothingLost(CheckSpec, tag="nothing_lost", frozen=True):
    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome in ("lost", "error")]
        return _result("nothing lost", not bad, f"{len(ms) - len(bad)}/{len(ms)} came back"
                       + (f"; {len(bad)} lost or errored" if bad else ""), _ids(bad))


class AllUnscanned(CheckSpec, tag="all_unscanned", frozen=True):
    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome != "unscanned"]
        return _result("all came back unscanned (fail-open)", bool(ms) and not bad,
                       f"{len(ms) - len(bad)}/{len(ms)} unscanned", _ids(bad))


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
        return _result(f"scanned fraction{which} in [{self.min:g}, {self.max:g}]", ok,
                       f"{len(scanned)}/{len(ms)} scanned ({frac:.0%})",
                       [] if ok else _ids([m for m in ms if not m.scanned]))


def _worst(ms: list[MessageRecord]) -> float:
    return max((m.seconds if m.seconds is not None else math.inf for m in ms), default=0.0)


class LatencyBound(CheckSpec, tag="latency_bound", frozen=True):
    TIME_FIELDS = ("max_s",)
    max_s: Seconds

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.seconds is None or m.seconds > self.max_s]
        return _result(f"every message back within {self.max_s:g} s", not bad,
                       f"worst {_worst(ms):.2f} s", _ids(bad))


class DeliveryBudget(CheckSpec, tag="delivery_budget", frozen=True):
    """A hypothesis that spamc returns within maildrop's global timeout (default: the
    drill's budget). Whether crossing it bounces is a finding, not this check's business."""

    TIME_FIELDS = ("budget_s",)
    budget_s: Seconds | None = None

    def judge(self, ev: Evidence) -> CheckResult:
        budget = self.budget_s if self.budget_s is not None else ev.budget_s
        ms = ev.history.messages
        bad = [m for m in ms if m.seconds is None or m.seconds >= budget]
        return _result(f"within maildrop's budget ({budget:g} s)", not bad,
                       f"worst {_worst(ms):.2f} s"
                       + (f"; {len(bad)} past it" if bad else ""), _ids(bad))


def _scanned_by_end(ev: Evidence) -> list[MessageRecord]:
    return sorted((m for m in ev.history.messages if m.scanned and m.end_ns is not None),
                  key=lambda m: m.end_ns or 0)


class Staircase(CheckSpec, tag="staircase", frozen=True):
    """Scanned messages finish one after another, served by one child at a time: every
    step between consecutive finishes is at least ``fraction`` of this machine's measured
    scan time (and at least ``min_step_s``). A step far below one scan means two scans ran
    side by side, so the one-child condition the hypothesis is about did not hold: judged
    as a condition, that is ``error``, not a staircase confirmed by parallel scans."""

    TIME_FIELDS = ("min_step_s",)
    min_step_s: Seconds = 0.0
    fraction: Fraction = 0.2

    def judge(self, ev: Evidence) -> CheckResult:
        name = "staircase: each finishes at least a fraction of a scan after the previous"
        cal = ev.calibration
        if self.fraction and cal is None:
            return CheckResult(name, "error", "no scan time measured: the scenario needs "
                               "[timing] calibrate = true")
        floor = max(self.min_step_s, self.fraction * cal.scan_s if cal else 0.0)
        scanned = _scanned_by_end(ev)
        steps = [((b.end_ns or 0) - (a.end_ns or 0)) / 1e9 for a, b in pairwise(scanned)]
        bad = [scanned[i + 1] for i, s in enumerate(steps) if s <= floor]
        detail = (f"{len(scanned)} scanned, steps {min(steps):.2f} to {max(steps):.2f} s "
                  f"(each must be over {floor:.2f} s"
                  + (f": {self.fraction:g} of a {cal.scan_s:.3f} s scan)" if cal else ")")
                  if steps else f"{len(scanned)} scanned: no staircase to see")
        return _result(name, len(scanned) >= 2 and not bad, detail, _ids(bad))


class WaitedPastTimeout(CheckSpec, tag="waited_past_timeout", frozen=True):
    """At least ``min`` messages waited spamc's whole -t for spamd (came back unscanned
    after at least ``share`` of -t): the overload, a queue longer than -t, really happened
    on this machine. A fast machine that scans the whole burst in time has not tested a
    hypothesis about overload, however the other checks come out."""

    min: Annotated[int, msgspec.Meta(ge=1)] = 1
    share: Fraction = 0.9

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        t = _spamc_timeout(ms) if ms else 0.0
        waited = [m for m in ms if m.outcome == "unscanned" and m.seconds is not None
                  and m.seconds >= self.share * t]
        return _result(f"at least {self.min} waited past -t ({t:g} s) and came back "
                       "unscanned", len(waited) >= self.min,
                       f"{len(waited)} of {len(ms)} did")


class FaultMetLoad(CheckSpec, tag="fault_met_load", frozen=True):
    """Some message was in flight while the fault held: the fault met the load, not only
    the lab (a fault set and lifted around no message tested nothing)."""

    def judge(self, ev: Evidence) -> CheckResult:
        name = "the fault held while messages were in flight"
        windows = ev.history.faults
        if not windows:
            return CheckResult(name, "error", "no fault window recorded")
        ms = ev.history.messages
        met = [m for m in ms if any(
            m.start_ns <= (w.end_ns if w.end_ns is not None else math.inf)
            and (m.end_ns is None or m.end_ns >= w.start_ns) for w in windows)]
        return _result(name, bool(met), f"{len(met)} of {len(ms)} message(s) in flight "
                       "during the fault")


class UnscannedNearTimeout(CheckSpec, tag="unscanned_near_timeout", frozen=True):
    """Messages that came back unscanned did so at about spamc's -t, not before or long
    after."""

    TIME_FIELDS = ("timeout_s", "tolerance_s")
    timeout_s: Seconds
    tolerance_s: Seconds

    def judge(self, ev: Evidence) -> CheckResult:
        un = [m for m in ev.history.messages if m.outcome == "unscanned"]
        bad = [m for m in un if m.seconds is None
               or abs(m.seconds - self.timeout_s) > self.tolerance_s]
        return _result(
            f"unscanned ones returned at -t ({self.timeout_s:g} ± {self.tolerance_s:g} s)",
            bool(un) and not bad, f"{len(un)} unscanned"
            + (f", {len(bad)} outside" if bad else ""), _ids(bad))


class SpamdLog(CheckSpec, tag="spamd_log", frozen=True):
    pattern: str
    min: Count = 1

    def __post_init__(self) -> None:
        _regex(self.pattern)

    def judge(self, ev: Evidence) -> CheckResult:
        found = len(re.findall(self.pattern, ev.spamd_log))
        return _result(f"spamd logged /{self.pattern}/ at least {self.min} time(s)",
                       found >= self.min, f"{found} times")


class KernelCounter(CheckSpec, tag="kernel_counter", frozen=True):
    """How much a TCP counter of spamd's host grew during the load (hosts topology:
    ``spamdrill.proto.netstat``), e.g. ``TcpExtListenOverflows`` for a full accept queue."""

    counter: str
    min: Count = 0
    max: Count | None = None

    def judge(self, ev: Evidence) -> CheckResult:
        if ev.kernel is None:
            return CheckResult(f"kernel counter {self.counter}", "error",
                               "not measured: needs the hosts topology")
        if self.counter not in ev.kernel:
            return CheckResult(f"kernel counter {self.counter}", "error",
                               "the kernel has no such counter")
        got = ev.kernel[self.counter]
        bound = f">= {self.min}" + (f" and <= {self.max}" if self.max is not None else "")
        return _result(f"spamd's host counted {self.counter} {bound}",
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
                bad += _ids(ms)
                lines.append(line)
        detail = (f"{seen} case(s) agree: " + "; ".join(good[:3])
                  + ("; ..." if len(good) > 3 else "") if not lines else "; ".join(lines))
        return _result("budget model agrees with the measurements", seen > 0 and not lines,
                       detail, bad)


def _spamc_timeout(ms: list[MessageRecord]) -> float:
    from spamdrill.budget import spamc as spamc_model

    return spamc_model.parse_args(ms[0].spamc_args).timeout


class FitsCapacity(CheckSpec, tag="fits_capacity", frozen=True):
    """Calibrated from this machine's measured scan time ``s`` and the CPUs this process
    may use (``cores``, less a cgroup's quota): of N messages at once, at least
    ``floor(t / (s x margin))`` are scanned within spamc's -t ``t`` (one child at a
    time) -- unless more children than CPUs share them: then each wave of ``children``
    scans finishes together after ``children x s / CPUs``, and only the waves that fit
    in ``t / margin`` count (50 children on half a core finish none within -t 15); and
    when N is more than the most the lab's children could scan (``max(1, min(children,
    cores)) x t / s x margin``), some come back unscanned. Bounds that move with the
    machine, margins stated, instead of constants that held on one machine only."""

    margin: Annotated[float, msgspec.Meta(ge=1)] = 2.0

    def judge(self, ev: Evidence) -> CheckResult:
        name = f"scans fit this machine's capacity (margin {self.margin:g}x)"
        cal, ms = ev.calibration, ev.history.messages
        if cal is None:
            return CheckResult(name, "error", "no scan time measured: the scenario needs "
                               "[timing] calibrate = true")
        t = _spamc_timeout(ms) if ms else 0.0
        # scans in parallel, at most: one scan alone already uses what one CPU gives it
        parallel = max(1.0, min(ev.children, cal.cores))
        # more children than that share the CPUs: each wave of them finishes together,
        # later than one child alone would finish its first (processor sharing)
        wave = min(ev.children, len(ms)) if ev.children > parallel else 1
        wave_s = wave * cal.scan_s / (parallel if wave > 1 else 1.0)
        low = min(len(ms), math.floor(t / (cal.scan_s * self.margin)),
                  math.floor(t / (wave_s * self.margin)) * wave)
        high = parallel * t / cal.scan_s * self.margin
        scanned = [m for m in ms if m.scanned]
        unscanned = [m for m in ms if not m.scanned]
        need_unscanned = len(ms) > high
        ok = len(scanned) >= low and (not need_unscanned or bool(unscanned))
        detail = (f"{len(scanned)}/{len(ms)} scanned; expected at least {low} (-t {t:g} s, "
                  f"scan {cal.scan_s:.3f} s)" + (f" and some unscanned (at most "
                                                 f"{high:.0f} fit)" if need_unscanned else ""))
        return _result(name, ok, detail, [] if ok else _ids(unscanned or scanned))


class SplitByFault(CheckSpec, tag="split_by_fault", frozen=True):
    """The fault divides the messages: some released before it took effect are scanned,
    and every one released after it (plus ``grace_s``, production seconds) comes back
    unscanned. Judged against the fault's own recorded window, so it holds on any machine
    however fast it scans."""

    TIME_FIELDS = ("grace_s",)
    grace_s: Seconds = 0.0

    def judge(self, ev: Evidence) -> CheckResult:
        name = "messages sent after the fault come back unscanned, earlier ones scanned"
        if not ev.history.faults:
            return CheckResult(name, "error", "no fault window recorded")
        start = min(f.start_ns for f in ev.history.faults)
        cut = start + int(self.grace_s * 1e9)
        before = [m for m in ev.history.messages if m.start_ns < start]
        after = [m for m in ev.history.messages if m.start_ns >= cut]
        bad = [m for m in after if m.outcome != "unscanned"]
        scanned_before = sum(1 for m in before if m.scanned)
        if not before or not after:
            return _not_occurred(name, f"{len(before)} message(s) sent before the fault and "
                                 f"{len(after)} after it: the stream did not straddle it")
        return _result(name, scanned_before > 0 and not bad,
                       f"{scanned_before}/{len(before)} before scanned; "
                       f"{len(after) - len(bad)}/{len(after)} after unscanned", _ids(bad))


class ScannedAfterMark(CheckSpec, tag="scanned_after_mark", frozen=True):
    """Every message released after an instant a fault recorded (``spamd-answered``: spamd
    answered PING again) is scanned, and some were released before it (the drill met the
    fault at all): the line falls where the lab really changed, however long that took on
    this machine. Those before may go either way (refused, or waiting for it)."""

    mark: str
    TIME_FIELDS = ("grace_s",)
    grace_s: Seconds = 0.0

    def judge(self, ev: Evidence) -> CheckResult:
        name = f"scanned once {self.mark}"
        if self.mark not in ev.marks:  # e.g. spamd never answered while the drill ran
            return _not_occurred(name, f"no fault recorded {self.mark!r} while the drill "
                                 "ran")
        cut = ev.marks[self.mark] + int(self.grace_s * 1e9)
        after = [m for m in ev.history.messages if m.start_ns >= cut]
        before = [m for m in ev.history.messages if m.start_ns < ev.marks[self.mark]]
        bad = [m for m in after if not m.scanned]
        missed = sum(1 for m in before if not m.scanned)
        if not before or not after:
            return _not_occurred(name, f"{len(before)} message(s) sent before {self.mark} "
                                 f"and {len(after)} after: the stream did not meet it")
        return _result(name, not bad,
                       f"{len(after) - len(bad)}/{len(after)} after scanned; {missed}/"
                       f"{len(before)} before not", _ids(bad))


class NothingDuplicated(CheckSpec, tag="nothing_duplicated", frozen=True):
    """End to end: no message delivered twice (a wrapper that retries what was
    delivered, a Postfix retry after a delivery it was not told of)."""

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome == "duplicated"]
        return _result("nothing duplicated", bool(ms) and not bad,
                       f"{len(bad)} of {len(ms)} delivered more than once", _ids(bad))


class NoBounce(CheckSpec, tag="no_bounce", frozen=True):
    """End to end: nothing bounced because of a transient fault. ``allowed``: DSN status
    prefixes that are right to bounce here (``"5.2.2"``: a mailbox over quota)."""

    allowed: tuple[str, ...] = ()

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome == "bounced"
               and not any(m.dsn.startswith(a) for a in self.allowed)]
        shown = "; ".join(sorted({f"{m.dsn}: {m.reason[:80]}" for m in bad})[:2])
        return _result("nothing bounced for a transient failure" + (
            f" (allowed: {', '.join(self.allowed)})" if self.allowed else ""),
            bool(ms) and not bad, f"{len(bad)} of {len(ms)} bounced" + (
                f": {shown}" if shown else ""), _ids(bad))


class BouncesSayWhy(CheckSpec, tag="bounces_say_why", frozen=True):
    """End to end: every bounce happened (``min``) and its DSN carries the status and a
    text that names its cause (``pattern``, a regular expression), so the sender knows
    why."""

    pattern: str
    status: str = ""  # a DSN status prefix each bounce must carry, e.g. "5.2.2"
    min: Count = 1

    def __post_init__(self) -> None:
        _regex(self.pattern)

    def judge(self, ev: Evidence) -> CheckResult:
        bounced = [m for m in ev.history.messages if m.outcome == "bounced"]
        bad = [m for m in bounced if not m.dsn.startswith(self.status)
               or not re.search(self.pattern, m.reason)]
        return _result(f"bounces carry {self.status or 'a status'} and say /{self.pattern}/",
                       len(bounced) >= self.min and not bad,
                       f"{len(bounced)} bounced, {len(bad)} without the cause" + (
                           f" (e.g. {bad[0].dsn}: {bad[0].reason[:100]})" if bad else ""),
                       _ids(bad))


class DeferredThenDelivered(CheckSpec, tag="deferred_then_delivered", frozen=True):
    """End to end: every message Postfix deferred during the fault was delivered, exactly
    once, after the fault healed; and some were deferred (``min``)."""

    min: Count = 1

    def judge(self, ev: Evidence) -> CheckResult:
        deferred = [m for m in ev.history.messages if m.deferrals > 0]
        bad = [m for m in deferred if m.fate not in ("delivered", "delivered unscanned")]
        return _result("every deferred message was delivered once the fault healed",
                       len(deferred) >= self.min and not bad,
                       f"{len(deferred)} deferred, {len(deferred) - len(bad)} then delivered"
                       + (f"; {bad[0].id}: {bad[0].fate} ({bad[0].reason[:80]})" if bad
                          else ""), _ids(bad))


class FateIs(CheckSpec, tag="fate_is", frozen=True):
    """End to end: every message ended in one of ``fates`` (``vocab.Fate`` words: a
    wrapper's failure shown for what it is, e.g. ``["lost"]`` for one that exits 0)."""

    fates: tuple[Fate, ...]

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        allowed = {f.value for f in self.fates}
        bad = [m for m in ms if m.fate not in allowed]
        seen = ", ".join(f"{n} {f or 'no fate'}" for f, n in sorted(
            {m.fate: sum(1 for x in ms if x.fate == m.fate) for m in ms}.items()))
        return _result(f"every message {' or '.join(sorted(allowed))}", bool(ms) and not bad,
                       seen, _ids(bad))


class DeliveredIntact(CheckSpec, tag="delivered_intact", frozen=True):
    """End to end: every delivered copy holds the message as it was sent (body intact,
    headers added by spamd aside)."""

    def judge(self, ev: Evidence) -> CheckResult:
        delivered = [m for m in ev.history.messages if m.intact is not None]
        bad = [m for m in delivered if not m.intact]
        return _result("every delivered message intact", bool(delivered) and not bad,
                       f"{len(delivered) - len(bad)}/{len(delivered)} intact", _ids(bad))


AnyCheck = (NothingLost | AllUnscanned | ScannedFraction | LatencyBound | DeliveryBudget
            | Staircase | UnscannedNearTimeout | SpamdLog | KernelCounter | ModelAgrees
            | FitsCapacity | SplitByFault | ScannedAfterMark | NothingDuplicated | NoBounce
            | BouncesSayWhy | DeferredThenDelivered | DeliveredIntact | FateIs
            | WaitedPastTimeout | FaultMetLoad)
# the registry is the union: a new check is its class and its place in AnyCheck
CHECK_TYPES: tuple[type[CheckSpec], ...] = typing.get_args(AnyCheck)
CHECKS: dict[str, type[CheckSpec]] = {str(c.__struct_config__.tag): c for c in CHECK_TYPES}
