"""Checks on the load's shape against the lab's limits and the fault's timing: the
staircase of a serialised spamd, waits past spamc's -t, a fault that met the load,
capacity, the split before and after a fault or a mark (sans-IO)."""

from __future__ import annotations

import math
import re
import statistics
from itertools import pairwise
from typing import Annotated

import msgspec

from spamdrill.checks.base import (
    CheckResult,
    CheckSpec,
    Fraction,
    Seconds,
    ids_of,
    judged,
    not_occurred,
    result,
)
from spamdrill.evidence import Evidence
from spamdrill.history import MessageRecord


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
            return result(name, "error", "no scan time measured: the scenario needs "
                               "[timing] calibrate = true")
        floor = max(self.min_step_s, self.fraction * cal.scan_s if cal else 0.0)
        scanned = _scanned_by_end(ev)
        steps = [((b.end_ns or 0) - (a.end_ns or 0)) / 1e9 for a, b in pairwise(scanned)]
        bad = [scanned[i + 1] for i, s in enumerate(steps) if s <= floor]
        detail = (f"{len(scanned)} scanned, steps {min(steps):.2f} to {max(steps):.2f} s "
                  f"(each must be over {floor:.2f} s"
                  + (f": {self.fraction:g} of a {cal.scan_s:.3f} s scan)" if cal else ")")
                  if steps else f"{len(scanned)} scanned: no staircase to see")
        return judged(name, len(scanned) >= 2 and not bad, detail, ids_of(bad))


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
        return judged(f"at least {self.min} waited past -t ({t:g} s) and came back "
                       "unscanned", len(waited) >= self.min,
                       f"{len(waited)} of {len(ms)} did")


class FaultMetLoad(CheckSpec, tag="fault_met_load", frozen=True):
    """Some message was in flight while the fault held: the fault met the load, not only
    the lab (a fault set and lifted around no message tested nothing)."""

    def judge(self, ev: Evidence) -> CheckResult:
        name = "the fault held while messages were in flight"
        windows = ev.history.faults
        if not windows:
            return result(name, "error", "no fault window recorded")
        ms = ev.history.messages
        met = [m for m in ms if any(
            m.start_ns <= (w.end_ns if w.end_ns is not None else math.inf)
            and (m.end_ns is None or m.end_ns >= w.start_ns) for w in windows)]
        return judged(name, bool(met), f"{len(met)} of {len(ms)} message(s) in flight "
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
        return judged(
            f"unscanned ones returned at -t ({self.timeout_s:g} ± {self.tolerance_s:g} s)",
            bool(un) and not bad, f"{len(un)} unscanned"
            + (f", {len(bad)} outside" if bad else ""), ids_of(bad))


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
    machine, margins stated, instead of constants that held on one machine only.

    The calibration is measured before the load; other work can slow the machine during
    it. Where spamd's log shows its scans took longer then (the median of its own
    ``scantime=`` for one child's scans, which excludes the queueing), the slower time
    is the machine's speed during the load: with one core busy and other labs running,
    scans measured at 0.16 s took several times that, and "too few scanned" would have
    been the other work's answer, not spamd's."""

    margin: Annotated[float, msgspec.Meta(ge=1)] = 2.0

    def judge(self, ev: Evidence) -> CheckResult:
        name = f"scans fit this machine's capacity (margin {self.margin:g}x)"
        cal, ms = ev.calibration, ev.history.messages
        if cal is None:
            return result(name, "error", "no scan time measured: the scenario needs "
                               "[timing] calibrate = true")
        t = _spamc_timeout(ms) if ms else 0.0
        during = _scan_time_during(ev.spamd_log) if ev.children <= cal.cores else None
        scan_s = max(cal.scan_s, during or 0.0)
        # scans in parallel, at most: one scan alone already uses what one CPU gives it
        parallel = max(1.0, min(ev.children, cal.cores))
        # more children than that share the CPUs: each wave of them finishes together,
        # later than one child alone would finish its first (processor sharing)
        wave = min(ev.children, len(ms)) if ev.children > parallel else 1
        wave_s = wave * scan_s / (parallel if wave > 1 else 1.0)
        low = min(len(ms), math.floor(t / (scan_s * self.margin)),
                  math.floor(t / (wave_s * self.margin)) * wave)
        high = parallel * t / scan_s * self.margin
        scanned = [m for m in ms if m.scanned]
        unscanned = [m for m in ms if not m.scanned]
        need_unscanned = len(ms) > high
        ok = len(scanned) >= low and (not need_unscanned or bool(unscanned))
        slower = f", {during:.3f} s in spamd's log during the load" \
            if during is not None and during > cal.scan_s else ""
        detail = (f"{len(scanned)}/{len(ms)} scanned; expected at least {low} (-t {t:g} s, "
                  f"scan {cal.scan_s:.3f} s{slower})"
                  + (f" and some unscanned (at most {high:.0f} fit)"
                     if need_unscanned else ""))
        return judged(name, ok, detail, [] if ok else ids_of(unscanned or scanned))


_SCANTIME = re.compile(r"\bscantime=(\d{1,6}(?:\.\d{1,6})?),")


def _scan_time_during(spamd_log: str) -> float | None:
    """The median of spamd's own ``scantime=`` in its log (its result lines), when it
    logged at least three: how long a scan took while the load ran."""
    times = [float(x) for x in _SCANTIME.findall(spamd_log)]
    return statistics.median(times) if len(times) >= 3 else None


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
            return result(name, "error", "no fault window recorded")
        start = min(f.start_ns for f in ev.history.faults)
        cut = start + int(self.grace_s * 1e9)
        before = [m for m in ev.history.messages if m.start_ns < start]
        after = [m for m in ev.history.messages if m.start_ns >= cut]
        bad = [m for m in after if m.outcome != "unscanned"]
        scanned_before = sum(1 for m in before if m.scanned)
        if not before or not after:
            return not_occurred(name, f"{len(before)} message(s) sent before the fault and "
                                 f"{len(after)} after it: the stream did not straddle it")
        return judged(name, scanned_before > 0 and not bad,
                       f"{scanned_before}/{len(before)} before scanned; "
                       f"{len(after) - len(bad)}/{len(after)} after unscanned", ids_of(bad))


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
            return not_occurred(name, f"no fault recorded {self.mark!r} while the drill "
                                 "ran")
        cut = ev.marks[self.mark] + int(self.grace_s * 1e9)
        after = [m for m in ev.history.messages if m.start_ns >= cut]
        before = [m for m in ev.history.messages if m.start_ns < ev.marks[self.mark]]
        bad = [m for m in after if not m.scanned]
        missed = sum(1 for m in before if not m.scanned)
        if not before or not after:
            return not_occurred(name, f"{len(before)} message(s) sent before {self.mark} "
                                 f"and {len(after)} after: the stream did not meet it")
        return judged(name, not bad,
                       f"{len(after) - len(bad)}/{len(after)} after scanned; {missed}/"
                       f"{len(before)} before not", ids_of(bad))
