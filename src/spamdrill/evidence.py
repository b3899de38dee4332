"""What a drill leaves for its checks to judge, sans-IO: the history, what each fault showed
of itself, the lab's own observations, and this machine's measured scan time. Every check
takes this one value (``spamdrill.checks``), so a new kind of evidence is one field here and
no check's signature changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from spamdrill.history import History

# how a check or a fault's evidence says the drill's situation never arose (the verdict is
# then ``error``); reports and the stability benchmark look for these words
NOT_OCCURRED = "the condition did not occur: "


@dataclass(frozen=True)
class FaultReport:
    """Whether a fault took effect, and what showed it (a processlist line, an nft counter,
    the DNS log's drops). A drill whose fault left no such trace has no verdict but
    ``error``: a fault that silently did not happen proves nothing."""

    name: str
    took_effect: bool
    detail: str


@dataclass(frozen=True)
class Calibration:
    """This machine's time for one scan by the lab's spamd, measured before the load: what
    bounds that depend on the machine's speed derive from. Scan time does not compress, so
    these are the same seconds in a drill and in production."""

    scan_s: float
    samples: tuple[float, ...]
    cores: float  # CPUs this process may use: its affinity, less a cgroup's CPU quota

    def public(self) -> dict[str, object]:
        return {"scan_s": round(self.scan_s, 3),
                "samples": [round(s, 3) for s in self.samples], "cores": round(self.cores, 2)}


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
