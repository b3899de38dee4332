"""``postqueue -j``: Postfix's queue as JSON, one message per line, sans-IO.

Format (postqueue(1), Postfix >= 3.1; ``src/showq/showq.c``): ``queue_name`` (incoming,
active, deferred, hold, maildrop), ``queue_id``, ``arrival_time``, ``message_size``,
``sender``, and ``recipients``, each with ``address`` and, once a delivery failed,
``delay_reason`` -- the deferral's reason, e.g. Postfix's "temporary failure. Command
output: ..." for a pipe(8) command that exited 75.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


class QueueFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Recipient:
    address: str
    delay_reason: str


@dataclass(frozen=True)
class QueueEntry:
    queue_id: str
    queue_name: str
    arrival_time: int
    size: int
    sender: str
    recipients: tuple[Recipient, ...]

    @property
    def reason(self) -> str:
        """The first recipient's deferral reason ("" if none was tried yet)."""
        return next((r.delay_reason for r in self.recipients if r.delay_reason), "")


def _entry(raw: object) -> QueueEntry:
    if not isinstance(raw, dict):
        raise QueueFormatError(f"not a queue entry: {raw!r}")
    try:
        rcpts = tuple(Recipient(str(r["address"]), str(r.get("delay_reason", "")))
                      for r in raw.get("recipients", []))
        return QueueEntry(str(raw["queue_id"]), str(raw["queue_name"]),
                          int(raw.get("arrival_time", 0)), int(raw.get("message_size", 0)),
                          str(raw.get("sender", "")), rcpts)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise QueueFormatError(f"queue entry without {exc}: {raw!r}") from None


def parse(text: str) -> list[QueueEntry]:
    """Every entry of ``postqueue -j``'s output (empty output: an empty queue)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueueFormatError(f"not JSON: {line[:80]!r} ({exc.msg})") from None
        out.append(_entry(raw))
    return out
