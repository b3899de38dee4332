"""What became of one message sent through ``rspamc --mime``, sans-IO.

rspamc (rspamd 3.4, ``src/client/rspamc.cxx``) with ``--mime`` writes the message back with
its verdict as headers (``X-Spam-Action``, ``X-Spam-Score: S / R``, ``X-Spam: yes`` for
spam) and exits 0. When it cannot reach rspamd or hear from it within ``-t`` (10 s by
default, no retry) it still writes the message back, with one ``X-Spam-Error: <why>``
header (``IO write error: Connection refused``, ``IO timeout``, ``HTTP IO read error:
Connection reset by peer`` from an rspamd that exits with it queued), and exits 1: measured on
the lab (``tests/test_rspamd_lab.py``). So unlike spamc it does not fail open in its exit
status; maildrop's xfilter takes that exit as a failed filter.
"""

from __future__ import annotations

import re

from spamdrill.proto.spamc_result import SpamcOutcome
from spamdrill.vocab import Outcome

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_ACTION = re.compile(rb"^X-Spam-Action: *([^\r\n]*)", re.M | re.I)
_SCORE = re.compile(rb"^X-Spam-Score: *(-?[\d.]+) */ *(-?[\d.]+)", re.M | re.I)
_SPAM = re.compile(rb"^X-Spam: *yes", re.M | re.I)
_ERROR = re.compile(rb"^X-Spam-Error: *([^\r\n]*)", re.M | re.I)
_REASONS = (
    ("refused", re.compile(r"Connection refused", re.I)),
    # a connection rspamd's kernel queued, never accepted, closed as rspamd exited
    ("reset", re.compile(r"Connection reset", re.I)),
    ("read-timeout", re.compile(r"timeout|timed out", re.I)),
    ("io-error", re.compile(r".")),
)


def reason_of(error: str) -> str:
    """spamdrill's word for rspamc's X-Spam-Error text (the words spamc's reasons use)."""
    for name, pattern in _REASONS:
        if pattern.search(error):
            return name
    return ""


def classify(message: bytes, stdout: bytes, stderr: str, exit_code: int | None,
             killed: bool = False) -> SpamcOutcome:
    """Outcome of one ``rspamc --mime`` run: ``spam``/``ham`` with rspamd's verdict
    headers, ``unscanned`` when rspamc handed the message back with its error header
    (exit 1), ``error`` for anything else, ``lost`` when the load's bound ended it."""
    if killed or exit_code is None:
        return SpamcOutcome(Outcome.LOST, "no answer within the load's bound")
    head = _HEAD_END.split(stdout, 1)[0]
    err = _ERROR.search(head)
    if err:
        text = err.group(1).decode(errors="replace")
        return SpamcOutcome(Outcome.UNSCANNED, reason_of(text))
    action = _ACTION.search(head)
    if exit_code == 0 and action:
        score = _SCORE.search(head)
        s, r = (float(score.group(1)), float(score.group(2))) if score else (None, None)
        # rspamd's soft reject ("try again later": soft_reject_on_timeout past
        # task_timeout) still exits 0: the record keeps the action as its reason
        said = action.group(1).decode(errors="replace").strip().lower()
        reason = said if said == "soft reject" else ""
        return SpamcOutcome(Outcome.SPAM if _SPAM.search(head) else Outcome.HAM, reason, s, r)
    if exit_code == 0 and stdout == message:
        return SpamcOutcome(Outcome.UNSCANNED, "returned unchanged")
    return SpamcOutcome(Outcome.ERROR, (stderr.strip().splitlines() or [f"exit {exit_code}"])[-1]
                        [:200])
