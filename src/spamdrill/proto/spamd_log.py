"""Parsing spamd's log file, sans-IO.

spamd's prefork master logs ``prefork: child states: BIIK`` each time a child changes state
(``Mail::SpamAssassin::SpamdForkScaling``, ``info("prefork: child states: ...")``): one letter
per child, B busy, I idle, K killed, S starting.
"""

from __future__ import annotations

import re

_STATES = re.compile(r"prefork: child states: ([A-Z]*)")
# spamd.raw: "processing message <MID> for USER:UID" then, from the same child,
# "identified spam (SCORE/REQ) for USER:UID in N seconds, M bytes." or "clean message ...";
# the child's pid is "spamd[PID]:" in syslog and "[PID] info:" in spamd's own log file
_PID = r"(?:spamd\[(\d+)\]:|\[(\d+)\] \w+:) spamd: "
_PROCESSING = re.compile(_PID + r"processing message (<[^>]*>)")
_RESULT = re.compile(_PID + r"((?:identified spam|clean message) "
                     r"\([-\d.]+/[-\d.]+\) for \S+ in [\d.]+ seconds)")

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


def verdicts_by_message_id(log_text: str) -> dict[str, str]:
    """spamd's verdict on each message, by Message-ID: the child that logged "processing
    message <id>" logs its "identified spam (...) in N seconds" or "clean message ..." next
    (one message at a time per child). What it logged last for an id wins."""
    pending: dict[str, str] = {}  # child pid -> message id
    out: dict[str, str] = {}
    for line in log_text.splitlines():
        m = _PROCESSING.search(line)
        if m:
            pending[m.group(1) or m.group(2)] = m.group(3)
            continue
        r = _RESULT.search(line)
        if r and (r.group(1) or r.group(2)) in pending:
            out[pending.pop(r.group(1) or r.group(2))] = r.group(3)
    return out


def unfinished(log_text: str) -> set[str]:
    """Message-IDs spamd began to scan and has not yet logged a verdict for."""
    started = {m.group(3) for m in _PROCESSING.finditer(log_text)}
    return started - set(verdicts_by_message_id(log_text))
