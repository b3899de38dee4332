"""Faults of the recipient's mailbox: a Maildir over its quota. Not a transient fault:
the one a bounce (5.2.2) is right for, where a wrapper's job is to say so clearly."""

from __future__ import annotations

import re

from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec
from spamdrill.evidence import FaultReport
from spamdrill.vocab import Mode


class OverQuotaSpec(FaultSpec, tag="over-quota", frozen=True):
    """``user``'s Maildir filled to its quota; emptied again on lift."""

    user: str = "carol"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.fullmatch(r"[A-Za-z0-9]+", self.user):
            raise ValueError(f"user {self.user!r}: letters and digits (a lab user)")

    def failure_mode(self) -> Mode:
        return Mode.OVER_QUOTA

    def build(self, scale: float) -> Fault:
        return OverQuota(self.user)


class OverQuota(Fault):
    name = "over-quota"

    def __init__(self, user: str) -> None:
        self.user = user
        self._undo: Undo | None = None
        self.seen: tuple[int, int | None] | None = None

    def inject(self, ctl: LabControl) -> str:
        self._undo = ctl.fill_quota(self.user)
        self.seen = ctl.quota_usage(self.user)
        return f"{self.user}'s Maildir filled to its quota"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not filled"
        self._undo.heal()
        self._undo = None
        return f"{self.user}'s Maildir emptied of the filler"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if self.seen is None:
            return self.report(False, "the Maildir's quota was never read")
        held, limit = self.seen
        over = limit is not None and held >= limit
        return self.report(over, f"{self.user}'s maildirsize said {held} of {limit} bytes "
                           "held" + ("" if over else ": not over quota"))
