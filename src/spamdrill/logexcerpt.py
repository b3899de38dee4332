"""Log excerpts for a report, sans-IO: a drill's spamd log alone can run to thousands of
lines, and what a postmaster needs from it is the trouble (errors, timeouts, refusals,
locks, shutdowns), each kind once with how often it came, and how the log ended.
"""

from __future__ import annotations

import re

import msgspec

TROUBLE = re.compile(
    r"error|warn|fail|time(?:d)? ?out|refused|denied|lost connection|can't|cannot|unable|"
    r"defer|bounce|killed|abort|too many|lock|gone away|unavailable|sigterm|shutting|"
    r"exit(?:ed|ing)?\b|status=(?!sent)|quota|reject", re.I)
MOST = 40  # distinct trouble lines kept
LAST = 8  # lines kept from the end of the log
WIDTH = 300  # characters per line


class Excerpt(msgspec.Struct, frozen=True, kw_only=True):
    """``lines``: the trouble, first occurrence of each kind with ``counts`` (same index);
    ``last``: the log's final lines; ``path``: the whole log as kept in the run."""

    name: str
    path: str
    total_lines: int
    lines: list[str]
    counts: list[int]
    last: list[str]


def _shape(line: str) -> str:
    """A line with its numbers, hex ids and timestamps blanked: repeats of one event."""
    return re.sub(r"[0-9a-f]{6,}|\d+", "N", line)


def excerpt(name: str, path: str, text: str, most: int = MOST, last: int = LAST) -> Excerpt:
    lines = text.splitlines()
    first: dict[str, int] = {}
    picked: list[str] = []
    counts: list[int] = []
    for line in lines:
        if not TROUBLE.search(line):
            continue
        key = _shape(line)
        if key in first:
            counts[first[key]] += 1
        elif len(picked) < most:
            first[key] = len(picked)
            picked.append(line[:WIDTH])
            counts.append(1)
    return Excerpt(name=name, path=path, total_lines=len(lines), lines=picked,
                   counts=counts, last=[x[:WIDTH] for x in lines[-last:]])
