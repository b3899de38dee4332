"""What became of one message sent through spamc, sans-IO.

spamc (``spamc/spamc.c``, ``libspamc.c``) fails open by default: when it cannot reach or
hear from spamd it writes the message back unchanged and exits 0, and says why only on
stderr with ``-l`` (otherwise syslog, which these machines lack). So the outcome is read
from the output (scanned headers or not) and the reason from stderr:

- ``connect to spamd on H failed, retrying (#n of m): <strerror>`` per attempt, then
  ``connection attempt to spamd aborted after m retries``;
- ``skipped message, greater than max message size (N bytes)`` for ``-s``;
- read/write timeouts and protocol errors as their own lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spamdrill.vocab import Outcome

_STATUS = re.compile(rb"^X-Spam-Status: (Yes|No), score=(-?[\d.]+) required=(-?[\d.]+)",
                     re.M | re.I)
_REASONS = (
    ("too-big", re.compile(r"greater than max message size")),
    ("refused", re.compile(r"Connection refused")),
    ("connect-timeout", re.compile(r"connect to spamd.*(timed out|Operation now in progress|"
                                   r"Interrupted system call)", re.I)),
    ("connect-failed", re.compile(r"connection attempt to spamd aborted")),
    ("read-timeout", re.compile(r"time(d)? ?out|timeout", re.I)),
    ("protocol", re.compile(r"spamd responded with|bad response|protocol", re.I)),
    ("io-error", re.compile(r"failed|error", re.I)),
)


@dataclass(frozen=True)
class SpamcOutcome:
    outcome: Outcome
    reason: str
    score: float | None = None
    required: float | None = None


def reason_from_stderr(stderr: str) -> str:
    for name, pattern in _REASONS:
        if pattern.search(stderr):
            return name
    return ""


def classify(message: bytes, stdout: bytes, stderr: str, exit_code: int | None,
             killed: bool = False) -> SpamcOutcome:
    """Outcome of one spamc run. ``killed``: the load's time bound ended it (lost)."""
    reason = reason_from_stderr(stderr)
    if killed or exit_code is None:
        return SpamcOutcome(Outcome.LOST, reason or "no answer within the load's bound")
    head = stdout.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    m = _STATUS.search(head)
    if m:
        is_spam = m.group(1).lower() == b"yes"
        return SpamcOutcome(Outcome.SPAM if is_spam else Outcome.HAM, reason, float(m.group(2)),
                            float(m.group(3)))
    if stdout == message:
        return SpamcOutcome(Outcome.UNSCANNED, reason or "returned unchanged")
    if exit_code != 0 or not stdout:
        return SpamcOutcome(Outcome.ERROR, reason or f"exit {exit_code}")
    return SpamcOutcome(Outcome.UNSCANNED, reason or "output without X-Spam-Status")
