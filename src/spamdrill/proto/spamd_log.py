"""Parsing spamd's log file, sans-IO.

spamd's prefork master logs ``prefork: child states: BIIK`` each time a child changes state
(``Mail::SpamAssassin::SpamdForkScaling``, ``info("prefork: child states: ...")``): one letter
per child, B busy, I idle, K killed, S starting.
"""

from __future__ import annotations

import re

_STATES = re.compile(r"prefork: child states: ([A-Z]*)")

STATE_NAMES = {"B": "busy", "I": "idle", "K": "killed", "S": "starting"}


def last_child_states(log_text: str) -> str | None:
    """The latest child-state string in the log, or None if spamd has not logged one."""
    found = _STATES.findall(log_text)
    return found[-1] if found else None


def describe_states(states: str) -> str:
    """``BII`` -> ``1 busy, 2 idle``, in a stable order."""
    counts: dict[str, int] = {}
    for letter in states:
        name = STATE_NAMES.get(letter, letter)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no children"
