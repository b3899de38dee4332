"""Invariants over a drill's evidence, sans-IO, Jepsen's checker shape: every check is a typed
spec (its arguments validated when the scenario is parsed) with one method, ``judge``, that
takes the same ``Evidence`` and returns a result naming the messages that broke it
(``base``). One module per concern: the messages' fates and times (``messages``), the
load against the lab's limits and the fault (``load``), what the lab showed (``observed``),
end to end delivery (``delivery``). A new check is one class in its module and its place
in ``AnyCheck``, from which the registry derives.
"""

from __future__ import annotations

from typing import get_args

from spamdrill.checks.base import (
    CheckResult,
    CheckSpec,
    Status,
    judge_condition,
    judge_safely,
    judged,
    result,
    verdict,
)
from spamdrill.checks.delivery import (
    BouncesSayWhy,
    DeferredThenDelivered,
    DeliveredIntact,
    FateIs,
    NoBounce,
    SenderRetried,
)
from spamdrill.checks.load import (
    FaultMetLoad,
    FitsCapacity,
    ScannedAfterMark,
    SplitByFault,
    Staircase,
    UnscannedNearTimeout,
    WaitedPastTimeout,
)
from spamdrill.checks.messages import (
    AllUnscanned,
    DeliveryBudget,
    LatencyBound,
    NothingDuplicated,
    NothingLost,
    ReasonSeen,
    ScannedFraction,
    WaitedAtLeast,
)
from spamdrill.checks.observed import KernelCounter, ModelAgrees, SpamdLog

AnyCheck = (NothingLost | AllUnscanned | ScannedFraction | LatencyBound | DeliveryBudget
            | Staircase | UnscannedNearTimeout | SpamdLog | KernelCounter | ModelAgrees
            | FitsCapacity | SplitByFault | ScannedAfterMark | NothingDuplicated | NoBounce
            | BouncesSayWhy | DeferredThenDelivered | DeliveredIntact | FateIs
            | WaitedPastTimeout | FaultMetLoad | SenderRetried | WaitedAtLeast
            | ReasonSeen)
# the registry is the union: a new check is its class and its place in AnyCheck
CHECK_TYPES: tuple[type[CheckSpec], ...] = get_args(AnyCheck)
CHECKS: dict[str, type[CheckSpec]] = {str(c.__struct_config__.tag): c for c in CHECK_TYPES}

__all__ = [
    "CHECKS",
    "CHECK_TYPES",
    "AllUnscanned",
    "AnyCheck",
    "BouncesSayWhy",
    "CheckResult",
    "CheckSpec",
    "DeferredThenDelivered",
    "DeliveredIntact",
    "DeliveryBudget",
    "FateIs",
    "FaultMetLoad",
    "FitsCapacity",
    "KernelCounter",
    "LatencyBound",
    "ModelAgrees",
    "NoBounce",
    "NothingDuplicated",
    "NothingLost",
    "ReasonSeen",
    "ScannedAfterMark",
    "ScannedFraction",
    "SenderRetried",
    "SpamdLog",
    "SplitByFault",
    "Staircase",
    "Status",
    "UnscannedNearTimeout",
    "WaitedAtLeast",
    "WaitedPastTimeout",
    "judge_condition",
    "judge_safely",
    "judged",
    "result",
    "verdict",
]
