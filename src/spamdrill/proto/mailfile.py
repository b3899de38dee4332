"""What a delivered message and a bounce (DSN) say, sans-IO: bytes of a Maildir file in,
values out. Parsed with the standard library's ``email`` package (RFC 5322 and MIME, and
RFC 3464's message/delivery-status, which it splits into header blocks).

A delivered message was *scanned* when spamd's headers are in it (SpamAssassin adds
``X-Spam-Checker-Version`` and ``X-Spam-Status`` to every message it answers for; spamc
gives the message back untouched when it cannot reach spamd), or rspamd's
``X-Spamd-Result`` (its milter_headers routine, which the lab's rspamd adds to every
message it scans through the milter; a milter that was unavailable adds nothing), or
``rspamc --mime``'s ``X-Spam-Action`` (a verdict it got; when it fails it writes
``X-Spam-Error`` instead, and maildrop's xfilter keeps the message as it was). It is
*intact* when the body that was sent is found in it whole: SpamAssassin's
``report_safe`` wraps a spam in a report and attaches the original unchanged, and Maildir
files end lines with LF where SMTP used CRLF.

A Postfix DSN (``src/bounce/bounce_notify_util.c``) has three parts: the notification
text (``<rcpt>: Command died with status 100: "..." Command output: ...``), the
message/delivery-status (``X-Postfix-Queue-ID`` of the bounced message; per recipient
``Action``, ``Status``, ``Diagnostic-Code``), and the returned message or its headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message

SCAN_HEADERS = ("X-Spam-Checker-Version", "X-Spam-Status", "X-Spamd-Result",
                "X-Spam-Action")
_SPACE = re.compile(r"\s+")


def _parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.compat32)


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else _SPACE.sub(" ", str(value)).strip()


def header_block(raw: bytes) -> bytes:
    """The bytes up to the blank line that ends the header (LF-normalized)."""
    text = normalize(raw)
    return text.split(b"\n\n", 1)[0]


def normalize(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def body(raw: bytes) -> bytes:
    """The body as sent (LF-normalized): everything after the first blank line."""
    parts = normalize(raw).split(b"\n\n", 1)
    return parts[1] if len(parts) == 2 else b""


def message_id(raw: bytes) -> str | None:
    """The Message-ID header of a message, as ``<...>``, from its header alone."""
    return _header(_parse(header_block(raw) + b"\n\n"), "Message-ID")


@dataclass(frozen=True)
class Delivered:
    message_id: str | None
    scanned: bool
    spam: bool  # X-Spam-Flag: YES
    spam_status: str | None


def parse_delivered(raw: bytes) -> Delivered:
    msg = _parse(header_block(raw) + b"\n\n")
    flag = (_header(msg, "X-Spam-Flag") or "").upper() == "YES"
    return Delivered(_header(msg, "Message-ID"),
                     any(msg.get(h) is not None for h in SCAN_HEADERS), flag,
                     _header(msg, "X-Spam-Status"))


def intact(sent: bytes, delivered: bytes) -> bool:
    """Whether the body that was sent is found whole in the delivered file."""
    want = body(sent)
    return bool(want.strip()) and want in normalize(delivered)


@dataclass(frozen=True)
class Dsn:
    """One recipient's block of a delivery status notification."""

    queue_id: str | None  # X-Postfix-Queue-ID: the bounced message's queue id
    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # 5.3.0
    diagnostic: str  # "x-unix; ..."
    text: str  # the notification's line for this recipient (what a sender reads)
    original_message_id: str | None


class NotADsn(ValueError):
    pass


def _parts(msg: Message) -> tuple[Message | None, Message | None, Message | None]:
    text = report = returned = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/plain" and text is None:
            text = part
        elif ctype == "message/delivery-status":
            report = part
        elif ctype in ("message/rfc822", "text/rfc822-headers") and returned is None:
            returned = part
    return text, report, returned


def _returned_id(part: Message | None) -> str | None:
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _header(payload[0], "Message-ID")
    if isinstance(payload, str):  # text/rfc822-headers
        return _header(_parse(payload.encode(errors="replace")), "Message-ID")
    return None


def _recipient_text(text: Message | None, recipient: str) -> str:
    """The notification's paragraph for ``<recipient>``, joined into one line."""
    if text is None:
        return ""
    raw = text.get_payload(decode=True)
    body_text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    for para in re.split(r"\n\s*\n", body_text.replace("\r\n", "\n")):
        if para.lstrip().startswith(f"<{recipient}>"):
            return _SPACE.sub(" ", para).strip()
    return ""


def parse_dsn(raw: bytes) -> list[Dsn]:
    """Each recipient block of a DSN; NotADsn if the message is not one."""
    msg = _parse(raw)
    if msg.get_content_type() != "multipart/report":
        raise NotADsn(f"not a delivery report: {msg.get_content_type()}")
    text, report, returned = _parts(msg)
    if report is None or not isinstance(report.get_payload(), list):
        raise NotADsn("no message/delivery-status part")
    blocks = [b for b in report.get_payload() if isinstance(b, Message)]
    per_msg = blocks[0] if blocks else Message()
    orig = _returned_id(returned)
    out = []
    for block in blocks[1:]:
        rcpt = (_header(block, "Final-Recipient") or "").split(";", 1)[-1].strip()
        out.append(Dsn(
            queue_id=_header(per_msg, "X-Postfix-Queue-ID"), recipient=rcpt,
            action=(_header(block, "Action") or "").lower(),
            status=_header(block, "Status") or "",
            diagnostic=_header(block, "Diagnostic-Code") or "",
            text=_recipient_text(text, rcpt), original_message_id=orig))
    return out
