"""What became of each message sent through Postfix, judged from what the real system
shows once its queue has drained, sans-IO: the injections (SMTP replies and queue ids),
the messages found in the recipients' Maildirs (by Message-ID), the queue (``postqueue
-j``), the bounces found in the sender's mailbox (DSNs, by the bounced message's queue id)
and Postfix's log (by queue id).

In this order, the first that holds decides (``vocab.Fate``):

- found twice or more: ``duplicated``;
- found once: ``delivered`` (spamd's headers in it) or ``delivered unscanned``;
- still in the queue: ``deferred``, with the queue's deferral reason;
- a DSN with ``Action: failed`` came back: ``bounced``, with its status and text;
- otherwise ``lost``: Postfix accepted it and it is nowhere. The log says what Postfix
  believed (for a wrapper that exits 0 on failure: ``status=sent``).

A message Postfix never accepted has no fate (``fate`` None) and keeps the SMTP reply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from spamdrill.proto.mailfile import Delivered, Dsn
from spamdrill.proto.postfix_log import Delivery, QueueStory
from spamdrill.proto.postqueue import QueueEntry
from spamdrill.vocab import Fate


@dataclass(frozen=True)
class Injected:
    """One message as handed to Postfix over SMTP."""

    id: str  # the corpus id
    message_id: str | None  # its Message-ID header, "<...>"
    recipient: str
    data: bytes
    queue_id: str | None  # from "250 2.0.0 Ok: queued as QID"; None if not accepted
    reply: str  # the last SMTP reply, "250 2.0.0 Ok: queued as ..." or the error
    start_ns: int = 0  # the barrier's release
    end_ns: int = 0  # the reply to the final "."


@dataclass(frozen=True)
class Found:
    """One copy of a message in a Maildir."""

    path: str
    folder: str  # "" for the inbox, ".Spam" etc.
    message: Delivered
    intact: bool


@dataclass
class MessageFate:
    """What became of one message sent through the lab's Postfix: its ``vocab.Fate`` and
    the evidence for it (copies, folders, DSN, Postfix's verdicts)."""

    id: str
    message_id: str | None
    queue_id: str | None
    fate: Fate | None
    reason: str = ""
    copies: int = 0
    folders: list[str] = field(default_factory=list)
    scanned: bool | None = None
    intact: bool | None = None
    dsn_status: str | None = None
    log: list[Delivery] = field(default_factory=list)  # Postfix's verdicts, in order

    @property
    def seconds(self) -> float | None:
        """Postfix's ``delay=`` for the last attempt: arrival to its verdict."""
        return self.log[-1].delay if self.log else None


def _delivered(out: MessageFate, copies: list[Found]) -> None:
    out.copies = len(copies)
    out.folders = [c.folder for c in copies]
    out.scanned = all(c.message.scanned for c in copies)
    out.intact = all(c.intact for c in copies)
    if len(copies) > 1:
        out.fate = Fate.DUPLICATED
        out.reason = f"found {len(copies)} times: {', '.join(c.path for c in copies)}"
    else:
        out.fate = Fate.DELIVERED if out.scanned else Fate.DELIVERED_UNSCANNED
        out.reason = f"in {copies[0].folder or 'the inbox'}"


def _lost_reason(story: QueueStory | None) -> str:
    if story is None or story.last is None:
        return "accepted, then found nowhere; Postfix logged no delivery for it"
    last = story.last
    return (f"accepted, then found nowhere; Postfix logged status={last.status} "
            f"dsn={last.dsn} ({last.detail})")


def judge_one(sent: Injected, copies: list[Found], queued: QueueEntry | None,
              bounce: Dsn | None, story: QueueStory | None) -> MessageFate:
    """One message's fate from what was found of it."""
    out = MessageFate(sent.id, sent.message_id, sent.queue_id, None,
                  log=list(story.deliveries) if story else [])
    if sent.queue_id is None:
        out.reason = f"not accepted: {sent.reply}"
    elif copies:
        _delivered(out, copies)
    elif queued is not None:
        out.fate = Fate.DEFERRED
        out.reason = queued.reason or f"in the {queued.queue_name} queue, not tried yet"
    elif bounce is not None:
        out.fate = Fate.BOUNCED
        out.dsn_status = bounce.status
        out.reason = bounce.text or bounce.diagnostic
    else:
        out.fate = Fate.LOST
        out.reason = _lost_reason(story)
    return out


def judge(sent: Iterable[Injected], found: dict[str, list[Found]],
          queue: Iterable[QueueEntry], dsns: Iterable[Dsn],
          log: dict[str, QueueStory]) -> list[MessageFate]:
    """Every injected message's outcome. ``found`` is keyed by Message-ID."""
    queued = {e.queue_id: e for e in queue}
    bounces = {d.queue_id: d for d in dsns if d.action == "failed" and d.queue_id}
    return [judge_one(s, found.get(s.message_id or "", []), queued.get(s.queue_id or ""),
                      bounces.get(s.queue_id or ""), log.get(s.queue_id or ""))
            for s in sent]


def tally(outcomes: Iterable[MessageFate]) -> dict[str, int]:
    """Count per fate (every Fate present, zeros included; ``not accepted`` too)."""
    counts = {f.value: 0 for f in Fate}
    counts["not accepted"] = 0
    for o in outcomes:
        counts[o.fate.value if o.fate else "not accepted"] += 1
    return counts
