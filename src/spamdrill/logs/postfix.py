"""Postfix's log lines as events, sans-IO.

The shapes, from Postfix 3.7's sources: ``log_adhoc.c`` writes every delivery attempt as
``QID: to=<rcpt>, [orig_to=<addr>, ]relay=R, [conn_use=N, ]delay=D, delays=a/b/c/d,
[tls=..., ]dsn=X.Y.Z, status=S (reason)`` (a: before the queue manager, b: in it, c:
connection set-up, d: transmission -- for pipe(8), the command's run time); cleanup logs
``QID: message-id=<...>``, qmgr ``QID: from=<...>, size=N, nrcpt=N (queue active)`` and
``QID: removed``, smtpd ``QID: client=name[addr]``, pickup ``QID: uid=N from=<...>``, bounce
``QID: sender non-delivery notification: NEWQID``. A program is ``postfix/NAME`` or, for
a second instance, ``SYSLOG_NAME/NAME``; the daemon's name is what follows the last slash.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from spamdrill.logs.events import (
    AgentWarning,
    Arrived,
    Delivery,
    Event,
    Expired,
    Key,
    Line,
    MessageId,
    Notice,
    Queued,
    Removed,
    line,
)
from spamdrill.logs.formats import TRUNCATED, Entry, Skip, skip

_DELIVERY = re.compile(
    r"to=<(?P<to>[^>]*)>, (?:orig_to=<(?P<orig>[^>]*)>, )?relay=(?P<relay>[^,]*), "
    r"(?:conn_use=\d+, )?delay=(?P<delay>[\d.]+), "
    r"delays=(?P<a>[\d.]+)/(?P<b>[\d.]+)/(?P<c>[\d.]+)/(?P<d>[\d.]+), "
    r"(?:tls=\S+, )?dsn=(?P<dsn>[\d.]+), status=(?P<status>\w+) \((?P<text>.*)\)\Z")
_QUEUED = re.compile(r"from=<(?P<from>[^>]*)>, size=(?P<size>\d+), nrcpt=(?P<nrcpt>\d+)")
_NOTICE = re.compile(r"(?P<kind>(?:sender|postmaster) (?:non-delivery|delivery status|"
                     r"delay) notification): (?P<qid>[0-9A-Za-z]+)\Z")
# daemons whose "QID: to=<...>" lines are delivery attempts
AGENTS = frozenset({"pipe", "local", "virtual", "smtp", "lmtp", "error", "discard", "retry",
                    "relay"})


def daemon(prog: str) -> str | None:
    """``postfix/pipe`` -> ``pipe``; None for other programs."""
    service, slash, name = prog.rpartition("/")
    if not slash or not service.startswith("postfix"):
        return None
    return name


def _delivery(key: Key, entry: Entry, agent: str, body: str,
              ln: Line) -> Delivery | Skip:
    m = _DELIVERY.match(body)
    if m is None:
        return skip(TRUNCATED)
    g = m.group
    return Delivery(key, entry.ts, agent, entry.pid, g("to"), g("orig") or "", g("relay"),
                    float(g("delay")), (float(g("a")), float(g("b")), float(g("c")),
                                        float(g("d"))),
                    g("dsn"), g("status"), g("text"), ln)


def _from(key: Key, entry: Entry, body: str, ln: Line) -> Queued | Expired | Skip | None:
    m = _QUEUED.match(body)
    if m is not None:
        return Queued(key, entry.ts, m.group("from"), int(m.group("size")),
                      int(m.group("nrcpt")), ln)
    if "status=expired" in body:
        return Expired(key, entry.ts, ln)
    return skip(TRUNCATED) if "size=" not in body and body.count(",") < 2 else None


def _arrived(key: Key, entry: Entry, body: str, ln: Line) -> Arrived:
    if body.startswith("uid="):  # pickup: submitted locally by that user
        return Arrived(key, entry.ts, f"local, uid {body[4:].split(' ', 1)[0]}", ln)
    return Arrived(key, entry.ts, body[len("client="):].split(",", 1)[0], ln)


def _notice(key: Key, entry: Entry, body: str, ln: Line) -> Notice | None:
    m = _NOTICE.match(body)
    if m is None:
        return None
    return Notice(key, entry.ts, m.group("kind"), m.group("qid"), ln)


Parser = Callable[[Entry, int, int, str], "Event | Skip | None"]


def parser(name: str) -> Parser:
    """The parser of one Postfix daemon's lines (``pipe``, ``qmgr``, ...): an event, or
    None for lines the join does not need."""
    agent = name in AGENTS

    def parse(entry: Entry, src: int, no: int, text: str) -> Event | Skip | None:
        qid, sep, body = entry.msg.partition(": ")
        if not sep:
            return None
        if qid == "warning":
            return AgentWarning(entry.host, name, entry.pid, entry.ts, body,
                                line(src, no, text)) if agent else None
        if len(qid) < 5 or not qid.isalnum() or qid == "NOQUEUE":
            return None
        return _body(name, agent, (entry.host, qid), entry, body, src, no, text)

    return parse


def _body(name: str, agent: bool, key: Key, entry: Entry, body: str, src: int, no: int,
          text: str) -> Event | Skip | None:
    first = body[:4]
    if first == "to=<":
        return _delivery(key, entry, name, body, line(src, no, text)) if agent else None
    if first == "from" and name == "qmgr":
        return _from(key, entry, body, line(src, no, text))
    if first == "remo" and body == "removed":
        return Removed(key, entry.ts, line(src, no, text))
    if first == "mess" and body.startswith("message-id="):
        return MessageId(key, entry.ts, body[11:].strip(), line(src, no, text))
    if (first == "clie" and body.startswith("client=")) or \
            (first == "uid=" and name == "pickup"):
        return _arrived(key, entry, body, line(src, no, text))
    if name == "bounce":
        return _notice(key, entry, body, line(src, no, text))
    return None
