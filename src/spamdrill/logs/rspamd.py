"""rspamd's log lines, and Postfix's milter lines, diagnosed in the shared vocabulary
(sans-IO: text lines in, findings out).

rspamd 3.4 (its own file, ``type = "file"``, or syslog) writes a line per scan from
``rspamd_task_write_log`` (src/libserver/task.c's log format: ``id: <Message-ID>``,
``qid: <Postfix queue id>`` when the MTA sent one, as Postfix's milter does,
``(default: F (no action): [1.40/15.00] [symbols])``, ``time: 19.186ms``, ``forced: ...``),
each task's lines sharing its tag (``<9a610f>``):

- ``rspamd_task_timeout: processing of task time out: 8.0s spent; 8.0s limit; forced
  processing``: the scan ran past ``task_timeout`` (``rspamd-task-timeout``: a partial
  verdict, or soft reject);
- ``rspamd_redis_timeout: connection to redis server ... timed out``,
  ``rspamd_redis_connected: error getting reply from redis server``, a module's ``got error
  ... when ...`` (lualib/lua_redis.lua): Redis failed this scan (``redis-down``: rspamd
  scans on).

Postfix's smtpd says what happened when the milter was unavailable (src/milter/milter8.c,
src/smtpd/smtpd.c): ``warning: connect to Milter service inet:HOST:PORT: Connection
refused``, ``warning: milter inet:...: can't read SMFIC_OPTNEG reply packet header: ...``
(unreachable or timing out: ``milter-unavailable``), then ``NOQUEUE: milter-reject: STAGE
from CLIENT: 451 4.7.1 ...`` (``milter_default_action = tempfail``: the sender was
deferred) or, with ``accept``, the session goes on and the message is queued unscanned
(``QID: client=...`` from the same smtpd process). A milter that does not answer the end
of the message within ``milter_content_timeout`` is cleanup's to log (``warning: milter
...: can't read SMFIC_BODYEOB reply packet header: Connection timed out``, for the message
that cleanup process holds): queued unscanned with ``accept``, refused (``QID:
milter-reject: END-OF-MESSAGE ...: 4.7.1``) with ``tempfail``. Postfix's cleanup names a
queue id's
Message-ID (``QID: message-id=<...>``), which rspamd's ``id:`` carries too: either joins a
scan to its message.

Measured on the lab's Postfix 3.7 and rspamd 3.4 (tests/data/rspamd-logs/).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from spamdrill.vocab import Fate, Mode

_TASK = re.compile(r"<(?P<tag>[0-9a-z]{4,})>; (?P<mod>[a-z_]+); (?P<fn>[a-z_0-9]+): "
                   r"(?P<text>.*)$")
_WRITE = re.compile(r"id: (?P<mid><[^>]*>)(?:, qid: <(?P<qid>[^>]*)>)?.*?"
                    r"\(default: (?P<flag>[TFS]) \((?P<action>[a-z ]+)\): "
                    r"\[(?P<score>-?[\d.]+)/")
_TIME = re.compile(r", time: (?P<ms>[\d.]+)ms")
_REDIS = re.compile(r"error getting reply from redis server|connection to redis server"
                    r"[^\n]*timed out|got error [^\n]*(?:when|while)|cannot (?:connect|get) "
                    r"(?:to )?redis", re.I)
_SMTPD = re.compile(r"postfix(?:/[a-z_-]+)?/smtpd\[(?P<pid>\d+)\]: (?P<text>.*)$")
_CLEANUP = re.compile(r"postfix(?:/[a-z_-]+)?/cleanup\[(?P<pid>\d+)\]: (?P<text>.*)$")
_MESSAGE_ID = re.compile(r"^(?P<qid>[0-9A-Za-z]+): message-id=(?P<mid><[^>]*>)")
_MILTER_DOWN = re.compile(r"warning: (?:connect to Milter service (?P<a>\S+): (?P<why>.*)|"
                          r"milter (?P<b>\S+): (?P<why2>.*))$")
_MILTER_REJECT = re.compile(r"^(?P<qid>NOQUEUE|[0-9A-Za-z]+): milter-reject: (?P<stage>[A-Z-]+)"
                            r" from \S+: (?P<reply>(?:[45]\d\d )?[45]\.\d+\.\d+ [^;]*)")
_QUEUED = re.compile(r"^(?P<qid>[0-9A-Za-z]+): client=")


@dataclass
class Scan:
    """One rspamd task, by its tag."""

    tag: str
    message_id: str = ""
    qid: str = ""
    action: str = ""
    score: float | None = None
    ms: float | None = None
    timed_out: bool = False
    redis: list[str] = field(default_factory=list)  # the Redis errors it met

    @property
    def mode(self) -> Mode | None:
        if self.timed_out:
            return Mode.RSPAMD_TASK_TIMEOUT
        if self.redis:
            return Mode.REDIS_DOWN
        return None


@dataclass(frozen=True)
class Item:
    """A message (or a refused session) and what rspamd's failure did to it."""

    key: str  # the queue id, else the Message-ID, else "NOQUEUE smtpd[PID]"
    mode: Mode
    fate: Fate
    why: str
    evidence: str  # the line that shows it


@dataclass
class _Session:
    trouble: str = ""  # the milter warning, while this smtpd's session lasts


@dataclass
class Diagnosis:
    scans: dict[str, Scan] = field(default_factory=dict)  # by tag
    items: list[Item] = field(default_factory=list)
    lines: int = 0  # rspamd's and Postfix's lines read

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.items:
            out[i.mode.value] = out.get(i.mode.value, 0) + 1
        return out


def _rspamd_line(d: Diagnosis, text: str) -> bool:
    m = _TASK.search(text)
    if m is None:
        return False
    tag, fn, body = m["tag"], m["fn"], m["text"]
    if fn == "rspamd_task_write_log":
        w = _WRITE.match(body)
        if w is None:
            return True
        scan = d.scans.setdefault(tag, Scan(tag))
        scan.message_id, scan.qid, scan.action = w["mid"], w["qid"] or "", w["action"]
        scan.score = float(w["score"])
        t = _TIME.search(body)
        scan.ms = float(t["ms"]) if t else None
        if "forced: " in body and "soft reject" in body.split("forced: ", 1)[1]:
            scan.action = "soft reject"
    elif fn == "rspamd_task_timeout":
        d.scans.setdefault(tag, Scan(tag)).timed_out = True
    elif _REDIS.search(body):
        d.scans.setdefault(tag, Scan(tag)).redis.append(body[:200])
    return True


@dataclass
class _Cleanup:
    """What each cleanup process holds: its message, and milter timeouts met."""

    current: dict[str, str] = field(default_factory=dict)  # cleanup pid -> queue id
    timed_out: dict[str, str] = field(default_factory=dict)  # queue id -> the warning
    refused: dict[str, str] = field(default_factory=dict)  # queue id -> the 4xx


def _cleanup_line(body: str, pid: str, mids: dict[str, str], c: _Cleanup) -> None:
    m = _MESSAGE_ID.match(body)
    if m is not None:
        mids[m["qid"]] = m["mid"]
        c.current[pid] = m["qid"]
        return
    if _MILTER_DOWN.match(body) and pid in c.current:
        c.timed_out.setdefault(c.current[pid], body)
        return
    rej = _MILTER_REJECT.match(body)
    if rej is not None and rej["reply"].startswith("4"):
        c.refused[rej["qid"]] = rej["reply"]


def _cleanup_items(c: _Cleanup) -> list[Item]:
    out = []
    for qid, warning in c.timed_out.items():
        reply = c.refused.get(qid)
        if reply is not None:
            out.append(Item(qid, Mode.MILTER_UNAVAILABLE, Fate.DEFERRED,
                            f"the milter did not answer the end of the message in time: "
                            f"milter_default_action = tempfail, the sender got "
                            f"{reply[:60]}", warning))
        else:
            out.append(Item(qid, Mode.MILTER_UNAVAILABLE, Fate.DELIVERED_UNSCANNED,
                            "the milter did not answer the end of the message in time: "
                            "milter_default_action = accept, queued without rspamd's "
                            "verdict", warning))
    return out


def _postfix_line(d: Diagnosis, text: str, sessions: dict[str, _Session],
                  mids: dict[str, str], cleanup: _Cleanup) -> bool:
    c = _CLEANUP.search(text)
    if c is not None:
        _cleanup_line(c["text"], c["pid"], mids, cleanup)
        return True
    m = _SMTPD.search(text)
    if m is None:
        return False
    pid, body = m["pid"], m["text"]
    if body.startswith("connect from "):
        sessions[pid] = _Session()
        return True
    down = _MILTER_DOWN.match(body)
    if down is not None:
        sessions.setdefault(pid, _Session()).trouble = body
        return True
    rej = _MILTER_REJECT.match(body)
    s = sessions.get(pid)
    if rej is not None and rej["reply"].startswith("4") and s is not None and s.trouble:
        qid = rej["qid"]
        key = f"NOQUEUE smtpd[{pid}]" if qid == "NOQUEUE" else qid
        d.items.append(Item(key, Mode.MILTER_UNAVAILABLE, Fate.DEFERRED,
                            f"milter_default_action = tempfail: the session refused with "
                            f"{rej['reply'][:60]} from {rej['stage']} on"
                            + (" (smtpd still greets; the client meets it at EHLO)"
                               if rej["stage"] == "CONNECT" else "")
                            + ": the sender keeps the message",
                            s.trouble))
        s.trouble = ""  # one refusal per session: what the sender saw first
        return True
    q = _QUEUED.match(body)
    if q is not None and s is not None and s.trouble:
        d.items.append(Item(q["qid"], Mode.MILTER_UNAVAILABLE, Fate.DELIVERED_UNSCANNED,
                            "milter_default_action = accept: queued without rspamd's scan",
                            s.trouble))
        return True
    return False


def diagnose(lines: Iterable[str]) -> Diagnosis:
    """rspamd's and Postfix's lines, in log order (either program's, or both merged):
    each scan that met a failure, and each message the milter's absence let in or sent
    back, in the vocabulary's modes and fates."""
    d = Diagnosis()
    sessions: dict[str, _Session] = {}
    mids: dict[str, str] = {}
    cleanup = _Cleanup()
    for text in lines:
        if _rspamd_line(d, text) or _postfix_line(d, text, sessions, mids, cleanup):
            d.lines += 1
    d.items += _cleanup_items(cleanup)
    for scan in d.scans.values():
        mode = scan.mode
        if mode is None:
            continue
        if mode == Mode.RSPAMD_TASK_TIMEOUT:
            soft = scan.action == "soft reject"
            # a milter sends the queue id (qid:); rspamc in maildrop's xfilter does not, and
            # it exits 0 on a soft reject: delivered (redis-frozen-soft-reject)
            fate = Fate.DEFERRED if soft and scan.qid else Fate.DELIVERED
            if soft:
                why = ("past task_timeout: soft reject, the MTA defers" if scan.qid else
                       "past task_timeout: soft reject from a client that sent no queue id "
                       "(rspamc in maildrop's xfilter, say), which exits 0 with X-Spam: "
                       "yes: delivered, not deferred")
            else:
                why = (f"past task_timeout: a partial verdict ({scan.action or 'no action'}, "
                       f"score {scan.score if scan.score is not None else '?'})")
        else:
            fate, why = Fate.DELIVERED, "Redis failed: rspamd scanned on without it"
        if scan.ms is not None:
            why += f" after {scan.ms / 1000:.1f} s"
        key = scan.qid or scan.message_id or f"rspamd task <{scan.tag}>"
        evidence = scan.redis[0] if scan.redis and not scan.timed_out else (
            "rspamd_task_timeout: processing of task time out" if scan.timed_out else "")
        d.items.append(Item(key, mode, fate, why, evidence))
    # a queue id whose Message-ID rspamd logged without the qid: name it by the queue id
    by_mid = {mid: qid for qid, mid in mids.items()}
    d.items = [Item(by_mid.get(i.key, i.key), i.mode, i.fate, i.why, i.evidence)
               for i in d.items]
    return d
