"""Items in time order, a window's items found by bisection, the old ones let go: the
join's windows (scans by start, spamd's gaps, the maildroprc's and spamc's lines), sans-IO.
"""

from __future__ import annotations

import bisect
from typing import Generic, TypeVar

T = TypeVar("T")


class TimeIndex(Generic[T]):
    """Items appended in time order; a window's items by bisection; old ones dropped."""

    def __init__(self) -> None:
        self.ts: list[float] = []
        self.items: list[T] = []
        self.lo = 0

    def add(self, ts: float, item: T) -> None:
        times = self.ts
        if times and ts < times[-1]:  # merged inputs may step back within a second
            i = bisect.bisect_right(times, ts, self.lo)
            times.insert(i, ts)
            self.items.insert(i, item)
            return
        times.append(ts)
        self.items.append(item)

    def window(self, a: float, b: float) -> list[T]:
        i, j = self.bounds(a, b)
        return self.items[i:j]

    def bounds(self, a: float, b: float) -> tuple[int, int]:
        """Where the window from ``a`` to ``b`` lies in ``items``."""
        i = bisect.bisect_left(self.ts, a, self.lo)
        return i, bisect.bisect_right(self.ts, b, i)

    def last_before(self, ts: float) -> tuple[float, T] | None:
        i = bisect.bisect_right(self.ts, ts, self.lo)
        return (self.ts[i - 1], self.items[i - 1]) if i > self.lo else None

    def drop_before(self, ts: float) -> None:
        self.lo = bisect.bisect_left(self.ts, ts, self.lo)
        if self.lo > 4096 and self.lo * 2 > len(self.ts):
            del self.ts[:self.lo]
            del self.items[:self.lo]
            self.lo = 0

    def __len__(self) -> int:
        return len(self.ts) - self.lo
