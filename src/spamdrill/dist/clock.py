"""Clocks across machines, sans-IO: each worker's offset from the master, the common
release time, and the skew of what followed.

The master pings each worker over Locust's messages and the worker answers with its wall
clock (``CLOCK_REALTIME``, the one clock two machines share). With the master's send and
receive times, the worker's clock minus the master's is ``peer - (sent + received) / 2``,
true to within half the round trip if the two legs took the same time; of several pings the
one with the shortest round trip bounds it best (NTP's clock filter keeps the sample with
the least delay for the same reason, RFC 5905 section 10).

The release is a time, not a message: the master picks a wall-clock instant far enough
ahead for the release message to reach every worker, and each worker releases when its own
clock, corrected by its offset, reads that instant. How late a worker released is then
measured, not assumed: its first release on the master's clock minus the chosen instant.

Within one machine every process reads the same ``CLOCK_MONOTONIC``; a ``Pair`` (one
instant read on both clocks) carries a worker's monotonic stamps onto the master's wall
clock and from there onto the master machine's monotonic clock, where the history lives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MS = 1_000_000


@dataclass(frozen=True)
class Sample:
    """One ping: master's wall clock when sent and when the answer came, and the worker's
    wall clock when it answered (all ns)."""

    sent_ns: int
    peer_ns: int
    received_ns: int

    @property
    def rtt_ns(self) -> int:
        return self.received_ns - self.sent_ns


@dataclass(frozen=True)
class Offset:
    """A worker's wall clock minus the master's, within +/- ``rtt_ns / 2``."""

    offset_ns: int
    rtt_ns: int

    def to_worker(self, master_ns: int) -> int:
        return master_ns + self.offset_ns

    def to_master(self, worker_ns: int) -> int:
        return worker_ns - self.offset_ns


def estimate(samples: Iterable[Sample]) -> Offset:
    """The offset from the ping with the shortest round trip."""
    good = [s for s in samples if s.rtt_ns >= 0]
    if not good:
        raise ValueError("no usable clock sample")
    best = min(good, key=lambda s: s.rtt_ns)
    return Offset(best.peer_ns - (best.sent_ns + best.received_ns) // 2, best.rtt_ns)


def release_at(now_ns: int, offsets: Iterable[Offset], *, lead_min_ns: int = 100 * MS,
               lead_max_ns: int = 2000 * MS) -> int:
    """The master's wall-clock instant to release at: at least ``lead_min_ns`` ahead, and
    20 worst round trips ahead on a slow network (the release message, the worker's relay
    to its shot, and the shot's wake-up all fit in that)."""
    worst = max((o.rtt_ns for o in offsets), default=0)
    return now_ns + min(lead_max_ns, max(lead_min_ns, 20 * worst))


@dataclass(frozen=True)
class Pair:
    """One instant read on one machine's monotonic and wall clocks."""

    mono_ns: int
    real_ns: int

    def to_real(self, mono_ns: int) -> int:
        return mono_ns + (self.real_ns - self.mono_ns)

    def to_mono(self, real_ns: int) -> int:
        return real_ns - (self.real_ns - self.mono_ns)


@dataclass(frozen=True)
class Shift:
    """A worker's monotonic stamps onto the master machine's monotonic clock."""

    worker: Pair
    offset: Offset
    master: Pair

    def __call__(self, worker_mono_ns: int) -> int:
        return self.master.to_mono(self.offset.to_master(self.worker.to_real(worker_mono_ns)))


def spread(values_ns: Iterable[int]) -> int:
    """Last minus first (0 for none)."""
    xs = list(values_ns)
    return max(xs) - min(xs) if xs else 0


@dataclass(frozen=True)
class WorkerRelease:
    """One worker's release, on the master's monotonic clock."""

    name: str
    first_ns: int
    last_ns: int
    offset: Offset

    def late_ns(self, release_mono_ns: int) -> int:
        """From the master's chosen release instant to this worker's first release."""
        return self.first_ns - release_mono_ns

    @property
    def own_ns(self) -> int:
        """This worker's own spread: first to last stdin closed."""
        return self.last_ns - self.first_ns


def clock_skew_ns(offsets: Iterable[Offset]) -> int:
    """How far apart the workers' clocks are (largest minus smallest offset)."""
    return spread(o.offset_ns for o in offsets)


def describe(releases: list[WorkerRelease], release_mono_ns: int) -> list[str]:
    """The report's lines on clocks and releases."""
    if not releases:
        return []
    lines = [f"worker {r.name}: clock {r.offset.offset_ns / MS:+.3f} ms from the master's "
             f"(+/- {r.offset.rtt_ns / 2 / MS:.3f} ms), released "
             f"{r.late_ns(release_mono_ns) / MS:+.3f} ms after the master's release time, "
             f"its own release spread {r.own_ns / MS:.3f} ms" for r in releases]
    first = min(r.first_ns for r in releases)
    last = max(r.last_ns for r in releases)
    lines.append(f"workers' clocks {clock_skew_ns(r.offset for r in releases) / MS:.3f} ms "
                 f"apart; every stdin closed within {(last - first) / MS:.3f} ms of the "
                 "first, on the master's clock")
    return lines
