"""What a drill leaves for its checks to judge, sans-IO: the history, what each fault showed
of itself, the lab's own observations, and this machine's measured scan time. Every check
takes this one value (``spamdrill.checks``), so a new kind of evidence is one field here and
no check's signature changes. A fault's report and the calibration are msgspec Structs: the
run document (``spamdrill.runmodel``) carries these same values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from spamdrill.history import History

# how a check or a fault's evidence says the drill's situation never arose (the verdict is
# then ``error``); reports and the stability benchmark look for these words
NOT_OCCURRED = "the condition did not occur: "


class FaultReport(msgspec.Struct, frozen=True):
    """Whether a fault took effect, and what showed it (a processlist line, an nft counter,
    the DNS log's drops). A drill whose fault left no such trace has no verdict but
    ``error``: a fault that silently did not happen proves nothing. (The run document
    calls its name ``fault``.)"""

    name: str = msgspec.field(name="fault")
    took_effect: bool
    detail: str


class Calibration(msgspec.Struct, frozen=True):
    """This machine's time for one scan by the lab's spamd, measured before the load: what
    bounds that depend on the machine's speed derive from. Scan time does not compress, so
    these are the same seconds in a drill and in production."""

    scan_s: float
    samples: tuple[float, ...]
    cores: float  # CPUs this process may use: its affinity, less a cgroup's CPU quota

    def rounded(self) -> Calibration:
        """As the run document keeps it: to the millisecond (cores to 0.01)."""
        return Calibration(round(self.scan_s, 3), tuple(round(s, 3) for s in self.samples),
                           round(self.cores, 2))


@dataclass(frozen=True)
class Evidence:
    history: History
    scale: float  # production seconds per drill second
    budget_s: float  # maildrop's global timeout, in drill seconds
    spamd_log: str = ""
    kernel: Mapping[str, int] | None = None  # spamd host's TCP counters, hosts topology
    faults: tuple[FaultReport, ...] = ()
    calibration: Calibration | None = None
    children: int = 5  # spamd --max-children of this lab
    syn_linear: int = 0  # the kernel's net.ipv4.tcp_syn_linear_timeouts
    marks: Mapping[str, int] = field(default_factory=dict)  # instants faults saw (ns)
