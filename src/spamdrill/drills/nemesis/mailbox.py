"""Faults of the recipient's mailbox: a Maildir over its quota, a recipient maildrop does
not know. Not transient faults: the ones a bounce (5.2.2, 5.1.1) is right for, where a
wrapper's job is to say so clearly."""

from __future__ import annotations

import re

from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec
from spamdrill.drills.timing import Scale
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

    def build(self, scale: Scale) -> Fault:
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


class UnknownUserSpec(FaultSpec, tag="unknown-user", frozen=True):
    """Mail for ``user``, whom maildrop -d cannot find (no passwd entry): maildrop says
    "Invalid user specified." and exits 67 (EX_NOUSER). Nothing is changed: the fault is
    that the name is unknown, checked at injection (the target's ``to`` names the
    recipient, and its ``maildrop = "lookup"`` has maildrop look it up)."""

    user: str = "mallory"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.fullmatch(r"[a-z][a-z0-9]{0,31}", self.user):
            raise ValueError(f"user {self.user!r}: a lowercase name of letters and digits")

    def failure_mode(self) -> Mode:
        return Mode.UNKNOWN_USER

    def build(self, scale: Scale) -> Fault:
        return UnknownUser(self.user)


class UnknownUser(Fault):
    name = "unknown-user"

    def __init__(self, user: str) -> None:
        self.user = user
        self.known: bool | None = None

    def inject(self, ctl: LabControl) -> str:
        self.known = ctl.user_known(self.user)
        return f"mail for {self.user}, " + ("who exists on this machine"
                                            if self.known else "unknown to this machine")

    def lift(self, ctl: LabControl) -> str:
        return "nothing to undo"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if self.known is None:
            return self.report(False, f"{self.user} was never looked up")
        return self.report(not self.known, f"{self.user} has " + (
            "a passwd entry: maildrop -d delivers to them" if self.known
            else "no passwd entry: maildrop -d cannot find them"))
