"""Postfix's log lines as events, sans-IO.

The shapes, from Postfix 3.7's sources: ``log_adhoc.c`` writes every delivery attempt as
``QID: to=<rcpt>, [orig_to=<addr>, ]relay=R, [conn_use=N, ]delay=D, delays=a/b/c/d,
[tls=..., ]dsn=X.Y.Z, status=S (reason)`` (a: before the queue manager, b: in it, c:
connection set-up, d: transmission -- for pipe(8), the command's run time); cleanup logs
``QID: message-id=<...>``, qmgr ``QID: from=<...>, size=N, nrcpt=N (queue active)`` and
``QID: removed``, smtpd ``QID: client=name[addr]``, pickup ``QID: uid=N from=<...>``, bounce
``QID: sender non-delivery notification: NEWQID``. A program is ``postfix/NAME`` or, for
a second instance, ``SYSLOG_NAME/NAME``; the daemon's name is what follows the last slash.

A daemon's reader hands what a line says to the join (``join.Joiner``) and makes no object
but the delivery itself: these are most of the lines of a mail log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from spamdrill.logs.events import AgentWarning, Delivery, Key, Line, line
from spamdrill.logs.formats import TRUNCATED, After, Read, Skip, skip

if TYPE_CHECKING:
    from spamdrill.logs.join import Joiner

# a number Python converts: "1.2.3" or 5,000 digits in a forged line must not be a traceback
_NUM = r"\d{1,15}(?:\.\d{1,15})?"
_DELIVERY = re.compile(
    r"to=<(?P<to>[^>]*)>, (?:orig_to=<(?P<orig>[^>]*)>, )?relay=(?P<relay>[^,]*), "
    rf"(?:conn_use=\d+, )?delay=(?P<delay>{_NUM}), "
    rf"delays=(?P<a>{_NUM})/(?P<b>{_NUM})/(?P<c>{_NUM})/(?P<d>{_NUM}), "
    r"(?:tls=\S+, )?dsn=(?P<dsn>[\d.]+), status=(?P<status>\w+) \((?P<text>.*)\)\Z")
_QUEUED = re.compile(r"from=<(?P<from>[^>]*)>, size=(?P<size>\d{1,15}), nrcpt=(?P<nrcpt>\d+)")
_NOTICE = re.compile(r"(?P<kind>(?:sender|postmaster) (?:non-delivery|delivery status|"
                     r"delay) notification): (?P<qid>[0-9A-Za-z]+)\Z")
_line = tuple.__new__  # a Line without NamedTuple's __new__ (see events.line)
# daemons whose "QID: to=<...>" lines are delivery attempts
AGENTS = frozenset({"pipe", "local", "virtual", "smtp", "lmtp", "error", "discard", "retry",
                    "relay"})


def daemon(prog: str) -> str | None:
    """``postfix/pipe`` -> ``pipe``; None for other programs."""
    service, slash, name = prog.rpartition("/")
    if not slash or not service.startswith("postfix"):
        return None
    return name


# what one line's text after ``QID: `` does: (join, daemon, key, ts, pid, body, src, no,
# text) -> True (the join took it), False (not needed), or a Skip
Body = Callable[["Joiner", str, Key, float, str, str, int, int, str], "bool | Skip"]


def _delivery(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
              no: int, text: str) -> bool | Skip:
    m = _DELIVERY.match(body)
    if m is None:
        return skip(TRUNCATED)
    to, orig, relay, delay, a, b, c, d, dsn, status, said = m.groups()
    join.delivery(Delivery(key, ts, name, pid, to, orig or "", relay, float(delay),
                           (float(a), float(b), float(c), float(d)), dsn, status, said,
                           _line(Line, (src, no, text))))
    return True


def _from(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
          no: int, text: str) -> bool | Skip:
    """qmgr's ``from=<...>, size=N, nrcpt=N (queue active)``, or ``status=expired``."""
    m = _QUEUED.match(body)
    if m is not None:
        msg = join.message(key, ts)
        msg.sender, msg.size = m.group(1), int(m.group(2))
        return True
    if "status=expired" in body:
        join.message(key, ts)
        return True
    return skip(TRUNCATED) if "size=" not in body and body.count(",") < 2 else False


def _removed(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
             no: int, text: str) -> bool | Skip:
    if body == "removed":
        join.removed(key, ts)
        return True
    return _notice(join, name, key, ts, pid, body, src, no, text)


def _message_id(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str,
                src: int, no: int, text: str) -> bool | Skip:
    if body.startswith("message-id="):
        join.message(key, ts).mid = body[11:].strip()
        return True
    return _notice(join, name, key, ts, pid, body, src, no, text)


def _client(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
            no: int, text: str) -> bool | Skip:
    """smtpd's ``client=name[addr]``."""
    if body.startswith("client="):
        join.message(key, ts).client = body[7:].split(",", 1)[0]
        return True
    return _notice(join, name, key, ts, pid, body, src, no, text)


def _uid(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
         no: int, text: str) -> bool | Skip:
    """pickup's ``uid=N from=<...>``: submitted locally by that user."""
    join.message(key, ts).client = f"local, uid {body[4:].split(' ', 1)[0]}"
    return True


def _notice(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
            no: int, text: str) -> bool | Skip:
    """bounce's ``sender non-delivery notification: NEWQID``: the message was seen."""
    if name != "bounce" or _NOTICE.match(body) is None:
        return False
    join.message(key, ts)
    return True


def _not_read(join: Joiner, name: str, key: Key, ts: float, pid: str, body: str, src: int,
              no: int, text: str) -> bool | Skip:
    return False


def _bodies(name: str, agent: bool) -> dict[str, Body]:
    """A daemon's lines by their text's first four characters."""
    bodies: dict[str, Body] = {"to=<": _delivery if agent else _not_read, "remo": _removed,
                               "mess": _message_id, "clie": _client}
    if name == "qmgr":
        bodies["from"] = _from
    if name == "pickup":
        bodies["uid="] = _uid
    return bodies


def reader(name: str, join: Joiner, after: After) -> Read:
    """The reader of one Postfix daemon's lines (``pipe``, ``qmgr``, ...)."""
    agent = name in AGENTS
    bodies = _bodies(name, agent)
    other = _notice if name == "bounce" else _not_read

    def read(ts: float, host: str, pid: str, msg: str, src: int, no: int,
             text: str) -> None:
        qid, sep, body = msg.partition(": ")
        if not sep:
            return
        if qid == "warning":
            if agent:
                join.warning(AgentWarning(host, name, pid, ts, body, line(src, no, text)))
                after(True, ts, src, no, text)
            return
        if len(qid) < 5 or not qid.isalnum() or qid == "NOQUEUE":
            return
        took = bodies.get(body[:4], other)(join, name, (host, qid), ts, pid, body, src, no,
                                           text)
        if took is not False and (took is not True or ts > join.now or join.dirty):
            after(took, ts, src, no, text)

    # what the compiled reader loop (_fastloop.pyx) does itself for a queue id's line
    from spamdrill.logs.join import Attempt

    read.__dict__["inline"] = ("postfix", name, join, after, bodies, other,
                               (_message_id, _client, _removed, _from),
                               (Delivery, Line, skip(TRUNCATED), Attempt), _delivery)
    return read
