"""Postfix's own log lines (``maillog_file``, or syslog's mail.log), sans-IO.

The lines that tell a message's story, by queue id (formats read in Postfix 3.7:
``smtpd/smtpd.c``, ``cleanup/cleanup_message.c``, ``qmgr/qmgr_active.c``,
``global/log_adhoc.c``, ``bounce/bounce_notify_service.c``)::

    QID: client=unknown[127.0.0.1]                         smtpd accepted it
    QID: message-id=<...>                                  cleanup: the join to the message
    QID: from=<...>, size=N, nrcpt=N (queue active)        qmgr
    QID: to=<...>, relay=R, delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=S (detail)
    QID: sender non-delivery notification: NEWQID          bounce: the DSN's own queue id
    QID: removed                                           qmgr: gone from the queue

``delays=a/b/c/d``: before the queue manager (including SMTP reception), in the queue
manager (waiting for a delivery agent, or for a retry), connection set-up, and
transmission -- for pipe(8), the whole run of the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(
    r"^(?P<time>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<program>[\w/.-]+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
# short ids are upper-case hex; long ids (enable_long_queue_ids) are 12+ letters/digits.
# Neither form can be a lower-case word such as "warning".
_QID = re.compile(r"^(?P<qid>[0-9A-F]{6,}|[0-9A-Za-z]{12,}): (?P<rest>.*)$")
_FIELD = re.compile(r"(?P<key>[a-z_]+)=(?P<value><[^>]*>|[^,]*)(?:, |$)")
_STATUS = re.compile(r"^(?P<head>.*?)status=(?P<status>\w+)(?: \((?P<detail>.*)\))?$")
_NOTICE = re.compile(r"^sender (?:non-delivery|delivery status) notification: "
                     r"(?P<qid>\w+)$")


@dataclass(frozen=True)
class LogLine:
    time: str  # as logged: "Nov 29 15:49:47" (no year, whole seconds)
    host: str
    program: str  # "postfix/pipe"
    pid: int
    queue_id: str | None
    text: str  # after the queue id, if any


@dataclass(frozen=True)
class Delays:
    """``delays=a/b/c/d`` in seconds."""

    before_qmgr: float
    in_qmgr: float
    connect: float
    transmission: float


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt's verdict, as the delivery agent logged it."""

    time: str
    program: str
    queue_id: str
    to: str
    relay: str
    delay: float | None
    delays: Delays | None
    dsn: str
    status: str  # sent | deferred | bounced | expired
    detail: str


def parse_line(line: str) -> LogLine | None:
    """One log line, or None for anything that is not a program's line."""
    m = _LINE.match(line.rstrip("\n"))
    if m is None:
        return None
    text, qid = m["text"], None
    q = _QID.match(text)
    if q is not None:
        qid, text = q["qid"], q["rest"]
    return LogLine(m["time"], m["host"], m["program"], int(m["pid"]), qid, text)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _delays(value: str | None) -> Delays | None:
    parts = [_float(p) for p in (value or "").split("/")]
    if len(parts) != 4 or any(p is None for p in parts):
        return None
    a, b, c, d = (float(p or 0.0) for p in parts)
    return Delays(a, b, c, d)


def parse_delivery(line: LogLine) -> Delivery | None:
    """A ``to=<...>, ..., status=...`` line, or None."""
    if line.queue_id is None or not line.text.startswith("to=<"):
        return None
    m = _STATUS.match(line.text)
    if m is None:
        return None
    fields = {f["key"]: f["value"] for f in _FIELD.finditer(m["head"])}
    return Delivery(
        time=line.time, program=line.program, queue_id=line.queue_id,
        to=fields.get("to", "").strip("<>"), relay=fields.get("relay", ""),
        delay=_float(fields.get("delay")), delays=_delays(fields.get("delays")),
        dsn=fields.get("dsn", ""), status=m["status"], detail=m["detail"] or "")


@dataclass
class QueueStory:
    """Everything the log says about one queue id."""

    queue_id: str
    message_id: str | None = None
    client: str | None = None
    sender: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    notice_queue_id: str | None = None  # the DSN Postfix sent for it
    removed: bool = False

    @property
    def last(self) -> Delivery | None:
        return self.deliveries[-1] if self.deliveries else None


def _apply(story: QueueStory, line: LogLine) -> None:
    text = line.text
    delivery = parse_delivery(line)
    if delivery is not None:
        story.deliveries.append(delivery)
    elif text.startswith("message-id="):
        story.message_id = text.split("=", 1)[1].strip()
    elif text.startswith("client="):
        story.client = text.split("=", 1)[1]
    elif text.startswith("from=<"):
        story.sender = text[len("from=<"):].split(">", 1)[0]
    elif text == "removed":
        story.removed = True
    elif (n := _NOTICE.match(text)) is not None:
        story.notice_queue_id = n["qid"]


def stories(text: str) -> dict[str, QueueStory]:
    """Every queue id in a log, with its story, in order of first appearance."""
    out: dict[str, QueueStory] = {}
    for raw in text.splitlines():
        line = parse_line(raw)
        if line is None or line.queue_id is None:
            continue
        story = out.setdefault(line.queue_id, QueueStory(line.queue_id))
        _apply(story, line)
    return out


# Postfix's warnings about the machine, not its configuration: mail_stream.c finds a
# queue file's mtime a second ahead of time() (the kernel stamps files from its coarse
# clock; seen under load) and resets the stamps, once per process
_MACHINE = re.compile(r"warning: (file system clock is \d+ seconds ahead of local clock|"
                      r"resetting file time stamps - this hurts performance)$")


def problems(text: str) -> list[str]:
    """Postfix's warnings, errors, fatals and panics: a misconfiguration shows here (the
    machine's clock warnings, ``_MACHINE``, are not one)."""
    out = []
    for raw in text.splitlines():
        line = parse_line(raw)
        if line is not None and line.text.split(":", 1)[0] in (
                "warning", "error", "fatal", "panic") and not _MACHINE.match(line.text):
            out.append(f"{line.program}: {line.text}")
    return out
