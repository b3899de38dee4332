"""The nemesis: faults injected during a drill, each a spec (validated with its scenario)
and a ``Fault`` that injects, lifts, and shows evidence that it took effect (Jepsen's word
for it). One module per family: ``spamd`` (down, stalling clients, replaced by a
misbehaving stand-in), ``database`` (limits, locks, killed connections, frozen or killed
server), ``network`` (packets, DNS answers, the TCP fault proxy), ``mailbox`` (a Maildir
over quota, an unknown recipient), ``rspamd`` (stopped, a slow rule, dead DNS) and
``redis`` (its Redis stopped, frozen, cut off or slow), both through ``rspamd_control``.
A new fault is a spec and a fault class in its family's module, and its spec in
``AnyFaultSpec``.

Faults never decide when they act: ``spamdrill.drills.nemesis.timeline`` runs them on the load's
clock, in a thread of their own, so a slow injection (spamd's SIGTERM shutdown) never
delays the release of messages; and it always lifts and tears them down, so a drill never
leaves a fault behind.
"""

import typing

from spamdrill.drills.nemesis.base import Fault, FaultSpec, Schedule
from spamdrill.drills.nemesis.database import (
    CutMidQuerySpec,
    DownSpec,
    FrozenSpec,
    LockSpec,
    MaxConnectionsSpec,
    WriteLockSpec,
)
from spamdrill.drills.nemesis.mailbox import OverQuotaSpec, UnknownUserSpec
from spamdrill.drills.nemesis.network import DnsSpec, PacketsSpec, ProxySpec
from spamdrill.drills.nemesis.redis import (
    RedisDownSpec,
    RedisDroppedSpec,
    RedisFrozenSpec,
    RedisSlowSpec,
)
from spamdrill.drills.nemesis.rspamd import (
    RspamdDnsDeadSpec,
    RspamdDownSpec,
    RspamdSlowRuleSpec,
    RspamdStoppingSpec,
)
from spamdrill.drills.nemesis.spamd import (
    SpamdAnswersEmptySpec,
    SpamdDownSpec,
    SpamdQueueFullSpec,
    StallingClientsSpec,
)

AnyFaultSpec = (SpamdDownSpec | StallingClientsSpec | MaxConnectionsSpec | LockSpec
                | WriteLockSpec | CutMidQuerySpec | FrozenSpec | DownSpec | DnsSpec
                | PacketsSpec | ProxySpec | OverQuotaSpec | SpamdQueueFullSpec
                | SpamdAnswersEmptySpec | UnknownUserSpec | RspamdDownSpec | RedisDownSpec
                | RedisFrozenSpec | RspamdSlowRuleSpec | RspamdDnsDeadSpec
                | RedisDroppedSpec | RedisSlowSpec | RspamdStoppingSpec)
# the registry is the union: a new fault is its spec in AnyFaultSpec, nothing more here
FAULT_SPECS: tuple[type[FaultSpec], ...] = typing.get_args(AnyFaultSpec)
FAULT_KINDS: tuple[str, ...] = tuple(str(s.__struct_config__.tag) for s in FAULT_SPECS)

__all__ = ["FAULT_KINDS", "FAULT_SPECS", "AnyFaultSpec", "Fault",
           "FaultSpec", "Schedule"]
