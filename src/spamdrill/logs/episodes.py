"""Episodes of trouble and the scans that started each, sans-IO.

The field report: "when spamd gets stuck then we get timeouts for all kinds of residual
emails and figuring out which one originally caused it is the important problem." An
episode is a run of filter trouble -- deliveries unscanned, scanned late, slow, timed out;
scans slow or past their time limit -- with no quiet gap longer than ``gap`` seconds. Its
suspects are the scans that were running when its first failure happened, or had run
long just before: ranked by how long they had been running at that moment (a scan stuck
since before the cascade comes first), then by their length. Each names its Message-ID,
size, sender, recipient, spamd child, scan time, and what followed.

Memory stays bounded: an episode keeps counts, the suspects of its first ``probe`` events
only (its ``top`` suspects once it closes), and at most ``keep`` episodes are kept (the
largest, by deliveries affected) with the count of all.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from spamdrill.logs.diagnose import LATE, UNSCANNED, Diagnosis
from spamdrill.logs.join import Attempt, Scan
from spamdrill.vocab import Layer, Mode

FILTER_LAYERS = (Layer.SPAMD, Layer.SPAMC, Layer.DATABASE, Layer.DNS, Layer.KERNEL)


def filter_trouble(diag: Diagnosis) -> bool:
    """Trouble an episode is made of: the filter's, not a full mailbox or a bad address."""
    if diag.slow or diag.scanned in (LATE, UNSCANNED):
        return True
    return any(m.info.layer in FILTER_LAYERS or m in (Mode.MAILDROP_TIMEOUT,
                                                      Mode.POSTFIX_TIME_LIMIT)
               for m in diag.modes)


def scan_trouble(scan: Scan, slow_scan: float) -> bool:
    return ran_long(scan, slow_scan) or any(
        e.kind in ("timeout", "sql-error") for e in scan.errors)


def ran_long(scan: Scan, slow_scan: float) -> bool:
    return scan.time_limit or scan.duration >= slow_scan


@dataclass
class Suspect:
    scan: Scan
    running: float  # seconds it had been running when the episode's first failure came
    followed: int = 0  # deliveries of the episode that failed after it started

    def public(self) -> dict[str, object]:
        s = self.scan
        attempt = s.attempt
        msg = attempt.message if attempt is not None else None
        return {
            "message_id": s.mid or None, "queue_id": msg.key[1] if msg else None,
            "size": s.size if s.size is not None else (msg.size if msg else None),
            "sender": msg.sender if msg else None,
            "recipient": attempt.recipient if attempt is not None else None,
            "spamd_user": s.user or None, "spamd_host": s.host, "spamd_child": s.pid,
            "scan_started": s.start, "scan_s": round(s.duration, 2),
            "finished": s.finished, "time_limit": s.time_limit,
            "running_at_first_failure_s": round(self.running, 2),
            "followed": self.followed,
        }


@dataclass
class Episode:
    start: float
    end: float
    first_failure: float
    deliveries: int = 0
    slow_scans: int = 0
    fates: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    suspects: dict[int, Suspect] = field(default_factory=dict)  # id(scan) -> suspect
    sample: list[str] = field(default_factory=list)  # first queue ids affected
    early: list[float] = field(default_factory=list)  # when its first deliveries failed

    def ranked(self, top: int) -> list[Suspect]:
        return sorted(self.suspects.values(),
                      key=lambda s: (-s.running, -s.scan.duration, s.scan.start))[:top]

    def public(self, top: int) -> dict[str, object]:
        return {
            "start": self.start, "end": self.end, "first_failure": self.first_failure,
            "deliveries": self.deliveries, "slow_scans": self.slow_scans,
            "fates": dict(self.fates), "modes": dict(self.modes.most_common()),
            "queue_ids": self.sample,
            "started_by": [s.public() for s in self.ranked(top)],
        }


Lookup = Callable[[float, float], list[Scan]]


class Episodes:
    """Feed troubled attempts and scans (in any order within ``delay`` seconds); read the
    closed episodes."""

    def __init__(self, lookup: Lookup, *, gap: float, slow_scan: float, delay: float,
                 lookback: float = 600.0, probe: int = 5, keep: int = 200,
                 top: int = 5) -> None:
        self.lookup = lookup
        self.gap, self.slow_scan, self.delay = gap, slow_scan, delay
        self.lookback, self.probe, self.keep, self.top = lookback, probe, keep, top
        self.heap: list[tuple[float, int, Attempt | Scan, Diagnosis | None]] = []
        self.counter = itertools.count()
        self.current: Episode | None = None
        self.blamed: set[int] = set()  # the scans the previous episode named
        self.closed: list[Episode] = []
        self.total = 0

    def attempt(self, attempt: Attempt, diag: Diagnosis) -> None:
        heapq.heappush(self.heap, (attempt.end, next(self.counter), attempt, diag))

    def scan(self, scan: Scan) -> None:
        """A troubled scan counts from the moment it became slow (or failed)."""
        ts = scan.start + min(scan.duration, self.slow_scan)
        heapq.heappush(self.heap, (ts, next(self.counter), scan, None))

    def advance(self, now: float) -> None:
        while self.heap and self.heap[0][0] + self.delay < now:
            self._pop()

    def finish(self) -> list[Episode]:
        while self.heap:
            self._pop()
        self._close()
        return sorted(self.closed, key=lambda e: e.start)

    def _pop(self) -> None:
        ts, _, item, diag = heapq.heappop(self.heap)
        self._take(ts, item, diag)

    def _take(self, ts: float, item: Attempt | Scan, diag: Diagnosis | None) -> None:
        ep = self.current
        if ep is None or ts - ep.end > self.gap:
            self._close()
            ep = self.current = Episode(ts, ts, ts)
        ep.end = max(ep.end, ts)
        if isinstance(item, Attempt) and diag is not None:
            ep.deliveries += 1
            ep.fates[diag.fate.value] += 1
            ep.modes.update(m.value for m in diag.modes)
            if len(ep.sample) < 10:
                ep.sample.append(item.message.key[1])
            failed: float | None = item.end
        else:
            ep.slow_scans += 1
            failed = None
        if failed is not None:  # what followed each suspect found so far
            for suspect in ep.suspects.values():
                if failed >= suspect.scan.start:
                    suspect.followed += 1
        if ep.deliveries + ep.slow_scans <= self.probe:
            if failed is not None:
                ep.early.append(failed)
            self._suspects(ep, ts)  # a new suspect counts the early failures itself

    def _suspects(self, ep: Episode, ts: float) -> None:
        """Scans that started before the first failure and were still running at it, or
        ran long just before it (not already named by the episode before)."""
        first = ep.first_failure
        suspects, blamed, slow, gap = ep.suspects, self.blamed, self.slow_scan, self.gap
        # the first probes of an episode look at every scan of the last minutes: ran_long
        # inline (its duration is end - start), no call per scan
        for scan in self.lookup(ts - self.lookback, first):
            key = id(scan)
            if key in suspects or key in blamed:
                continue
            end = scan.end if scan.end is not None else scan.last
            start = scan.start
            running = first - start if end >= first - 1.0 else 0.0
            if running >= 1.0 or ((scan.time_limit or end - start >= slow)
                                  and end >= first - gap):
                suspects[key] = Suspect(scan, running, sum(1 for t in ep.early if t >= start))

    def _close(self) -> None:
        ep, self.current = self.current, None
        if ep is None:
            return
        self.blamed = set(ep.suspects)
        ep.suspects = {id(s.scan): s for s in ep.ranked(self.top)}  # keep what is shown
        self.total += 1
        self.closed.append(ep)
        if len(self.closed) > 2 * self.keep:
            self.closed.sort(key=lambda e: -(e.deliveries + e.slow_scans))
            del self.closed[self.keep:]
