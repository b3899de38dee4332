"""``formats.YearClock``'s shortcut for a whole-second stamp whose minute it converted
before (the seconds only) against the full conversion, on runs of stamps that cross
minutes, hours, the year's end, go back, jump ahead and carry odd seconds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spamdrill.logs.formats import YearClock, zone

pytestmark = pytest.mark.unit

_MONTHS = ["Dec", "Jan", "Feb", "Jun"]
_stamp = st.builds(lambda m, d, h, mi, s: f"{m} {d:>2} {h:02d}:{mi:02d}:{s}",
                   st.sampled_from(_MONTHS), st.sampled_from([1, 5, 30, 31]),
                   st.sampled_from([0, 23]), st.sampled_from([0, 59]),
                   st.sampled_from(["00", "07", "59", "60", "99", "5", "5.5", "\u0661\u0662",
                                    "07 "]))


@settings(max_examples=100, deadline=None)
@given(stamps=st.lists(_stamp, max_size=30), tz=st.sampled_from([None, "UTC",
                                                                 "Europe/Berlin"]))
def test_a_converted_minute_gives_what_the_full_conversion_gives(
        stamps: list[str], tz: str | None) -> None:
    zones = zone(tz) if tz else None
    quick, full = YearClock(2026, zones), YearClock(2026, zones)
    for stamp in stamps:
        full._seen.clear()  # never the shortcut
        assert quick(stamp) == full(stamp), stamp
        assert (quick.year, quick.last, quick.last_month) == (full.year, full.last,
                                                             full.last_month)


def test_the_shortcut_is_taken_and_keeps_the_year() -> None:
    clock = YearClock(2026, zone("UTC"))
    assert clock("Dec 31 23:59:00") is not None
    assert "Dec 31 23:59:" in clock._seen
    first = clock("Dec 31 23:59:30")
    assert first == clock._seen["Dec 31 23:59:"][2] + 30
    assert clock("Jan  1 00:00:05") == first + 35  # the year moved on
    assert clock("Dec 31 23:59:31") is None  # a year back now: refused, not taken
