"""What every check is (sans-IO): a typed spec with ``judge(Evidence)``, its result, and
the one definition of a drill's verdict. ``judge_safely`` turns a check that raises into
``error``, never a crash and never a pass (Jepsen's ``check-safe``); a condition that does
not hold is ``error`` too.

Time arguments are production seconds, listed in each class's ``TIME_FIELDS`` and scaled
for the drill in one place (``scaled``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Annotated, ClassVar, Literal

import msgspec

from spamdrill.evidence import NOT_OCCURRED, Evidence, FaultReport
from spamdrill.history import History, MessageRecord
from spamdrill.vocab import Verdict

Status = Literal["pass", "fail", "error"]


MAX_OFFENDERS = 50  # message ids a result keeps: enough to look at, a document stays small


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """A check's result, as the drill judges it and the run document keeps it (one
    declaration for both): ``ok`` is whether it passed, stored for the document's readers
    and refused when it disagrees with the status; at most ``MAX_OFFENDERS`` offenders.
    Made through ``result``, ``judged`` or ``not_occurred``."""

    name: str
    status: Status
    ok: bool
    detail: str
    offenders: list[str]

    def __post_init__(self) -> None:
        if self.ok != (self.status == "pass"):
            raise ValueError(f"check {self.name!r}: ok is {self.ok} with status "
                             f"{self.status!r}")


def result(name: str, status: Status, detail: str, offenders: list[str] | None = None,
           ) -> CheckResult:
    return CheckResult(name=name, status=status, ok=status == "pass", detail=detail,
                       offenders=(offenders or [])[:MAX_OFFENDERS])


def not_occurred(name: str, detail: str, offenders: list[str] | None = None,
                  ) -> CheckResult:
    """What a check says when the situation its hypothesis is about never arose (an
    overload that queued nothing, scans that ran side by side): ``error``, neither pass
    nor fail, because the drill did not test what it claims on this machine."""
    return result(name, "error", NOT_OCCURRED + detail, offenders)


def judged(name: str, ok: bool, detail: str, offenders: list[str] | None = None,
            ) -> CheckResult:
    return result(name, "pass" if ok else "fail", detail, offenders)


def must_compile(pattern: str) -> None:
    """A check's pattern must compile: said when the scenario is read, not mid-drill."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None


def ids_of(ms: list[MessageRecord]) -> list[str]:
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
            return result(f"{check.kind} ({check.case})", "error",
                          f"no message of case {check.case!r}")
        judged_ = check.judge(dataclasses.replace(ev, history=mine))
        return msgspec.structs.replace(judged_, name=f"{judged_.name} ({check.case})")
    except Exception as exc:  # any crash of a checker is an error result
        return result(check.kind, "error", f"the check crashed: {exc!r}")


def judge_condition(check: CheckSpec, ev: Evidence) -> CheckResult:
    """A drill's condition (``[[conditions]]``: the overload, the refusals, the serialised
    scans) judged like a check, except that a condition that does not hold is ``error``
    ("the condition did not occur"), never ``fail``: without it the hypothesis was not
    tested, so the verdict can be neither confirmed nor refuted."""
    r = judge_safely(check, ev)
    name = f"condition: {r.name}"
    if r.status == "fail":
        return not_occurred(name, r.detail, r.offenders)
    return msgspec.structs.replace(r, name=name)


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
