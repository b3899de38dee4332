"""When each message is released, sans-IO: offsets in seconds from the start of the load.

- ``burst``: all at once (the barrier makes "at once" mean within milliseconds);
- ``rate``: a fixed rate, ``rate`` per second;
- ``staircase``: waves of ``step`` messages every ``interval`` seconds.
"""

from __future__ import annotations


def offsets(schedule: str, count: int, *, rate: float = 10.0, step: int = 1,
            interval: float = 1.0) -> list[float]:
    if count < 0:
        raise ValueError("count must not be negative")
    if schedule == "burst":
        return [0.0] * count
    if schedule == "rate":
        if rate <= 0:
            raise ValueError("rate must be positive")
        return [i / rate for i in range(count)]
    if schedule == "staircase":
        if step < 1 or interval < 0:
            raise ValueError("staircase needs step >= 1 and interval >= 0")
        return [(i // step) * interval for i in range(count)]
    raise ValueError(f"unknown schedule {schedule!r} (burst, rate, staircase)")
