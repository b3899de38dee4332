"""rspamd's log lines, and Postfix's milter lines, diagnosed in the shared vocabulary
(sans-IO: text lines in, findings out).

rspamd 3.4 (its own file, ``type = "file"``, or syslog) writes a line per scan from
``rspamd_task_write_log`` (src/libserver/task.c's log format: ``id: <Message-ID>``,
``qid: <Postfix queue id>`` when the MTA sent one, as Postfix's milter does,
``(default: F (no action): [1.40/15.00] [symbols])``, ``time: 19.186ms``, ``forced: ...``),
each task's lines sharing its tag (``<9a610f>``):

- ``rspamd_task_timeout: processing of task time out: 8.0s spent; 8.0s limit; forced
  processing``: the scan ran past ``task_timeout`` (a partial verdict, or soft reject).
  What held it is in the lines right after: ``rspamd_session_cleanup: forced removed event
  on destroy: ..., subsystem: S, scheduled from: WHERE``, one per wait the timeout cut
  short (src/libserver/async_session.c). ``rspamd lua redis`` or ``redis statistics``:
  Redis (``rspamd-task-timeout``: frozen, dropped); ``rspamd dns``: lookups
  (``rspamd-dns-dead``); ``rspamd lua tcp``/``http``/``udp``: a rule waiting on a service
  of its own, named by ``scheduled from`` (``rspamd-slow-rule``: the lab's
  ``SPAMDRILL_SLOW_RULE``); nothing said: ``rspamd-task-timeout``;
- ``rspamd_redis_timeout: connection to redis server ... timed out`` (or a module's ``got
  error timeout ...``) in a scan that ``task_timeout`` did not end: each request waited
  out Redis's timeout and rspamd scanned on, late (``redis-slow``: a link slower than the
  timeout); ``rspamd_redis_connected: error getting reply from redis server``, a module's
  ``got error ... when ...`` (lualib/lua_redis.lua) without a timeout: Redis refused
  (``redis-down``: rspamd scans on at once);
- ``error querying dns "NAME" on NS: query timed out`` (asn.lua), ``error looking up NAME:
  query timed out`` (rbl.lua): a lookup gave up after ``dns.timeout`` x ``retransmits``;
  two names or more in one scan is the nameserver, not one zone's servers
  (``rspamd-dns-dead``; one name alone is that zone's trouble, not diagnosed);
- ``rspamd_worker_term_handler: terminating after receiving signal Terminated`` (each
  process) and the main process's ``rspamd_term_handler: catch termination signal, waiting
  for N children for S seconds``: rspamd told to stop (``rspamd-stopping``). A scan a
  worker finishes after its own line was in flight and is answered, scanned; mail arriving
  until rspamd is back is not in its log at all: rspamc is reset or refused and exits 1 at
  once (maildrop delivers it unscanned inside ``exception { }``), and a milter's
  ``milter_default_action`` decides (Postfix's lines, below).

A Redis that is merely slower, below its timeout, logs no error: each scan is only late
(``time:``), which no line of rspamd's tells apart from a slow machine; not diagnosed.
A line of rspamd's that says something went wrong (an error, a timeout, a failure) and
that none of the above reads is counted and quoted (``Diagnosis.unread``), so that a log
this reader does not understand is never reported as a clean one.

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

# the function, or a Lua module's file and line ("asn.lua:72")
_TASK = re.compile(r"<(?P<tag>[0-9a-z]{4,})>; (?P<mod>[a-z_]+); "
                   r"(?P<fn>[A-Za-z_0-9]+(?:\.lua:\d+)?): (?P<text>.*)$")
# the writing process: rspamd's own file ("#21261(normal)") or syslog ("rspamd[21261]:")
_PROC = re.compile(r"#(?P<pid>\d+)\((?P<kind>[a-z_]+)\)|rspamd\[(?P<spid>\d+)\]")
_WHEN = re.compile(r"^(?P<when>.*?)\s*(?:#\d+\(|\S+ rspamd\[)")
_WRITE = re.compile(r"id: (?P<mid><[^>]*>)(?:, qid: <(?P<qid>[^>]*)>)?.*?"
                    r"\(default: (?P<flag>[TFS]) \((?P<action>[a-z ]+)\): "
                    r"\[(?P<score>-?[\d.]+)/")
_TIME = re.compile(r", time: (?P<ms>[\d.]+)ms")
_REDIS = re.compile(r"error getting reply from redis server|connection to redis server"
                    r"[^\n]*timed out|got error [^\n]*(?:when|while)|cannot (?:connect|get) "
                    r"(?:to )?redis|redis_\w+ error|from redis: ", re.I)
_REDIS_TIMEOUT = re.compile(r"timed out|timeout", re.I)
_DNS_TIMEOUT = re.compile(r'error (?:querying dns "?(?P<a>[^" ]+)"?|looking up (?P<b>\S+?)):? '
                          r'(?:on \S+: )?query timed out')
_PENDING = re.compile(r"forced removed event on destroy: \S+, subsystem: (?P<sub>[^,]+), "
                      r"scheduled from: (?P<where>\S+)")
_TERM = re.compile(r"terminating after receiving signal (?P<sig>Terminated|Interrupt)")
_MAIN_WAIT = re.compile(r"catch termination signal, waiting for (?P<n>\d+) children for "
                        r"(?P<s>[\d.]+) seconds")
_TROUBLE = re.compile(r"\b(?:errors?|timed out|timeout|failed|failure|cannot|refused|reset|"
                      r"abnormally)\b", re.I)
# a line that says trouble but is rspamd's routine (startup, a ham's own symbols)
_ROUTINE = re.compile(r"skip obtaining bayes tokens|cannot make spf request for empty domain|"
                      r"is not found, but it can be loaded|cannot open file .*symbols\.cache|"
                      r"cannot load controller stats|map file is not found|"
                      r"process_deps: cannot find dependency|"
                      r"some symbols can be terminated before checks|no ASN information|"
                      r"rspamd_add_passthrough_result|rspamd_task_write_log|"
                      r"rspamd_worker_body_handler", re.I)
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
    redis_timeouts: int = 0  # of those, the ones that waited out Redis's timeout
    dns: list[str] = field(default_factory=list)  # names whose lookups timed out
    pending: list[tuple[str, str]] = field(default_factory=list)  # what task_timeout cut
    stop: int = -1  # the stop (Diagnosis.stops) it was in flight at, if it finished after

    def held_by(self, *subsystems: str) -> list[str]:
        return [where for sub, where in self.pending if any(s in sub for s in subsystems)]

    @property
    def mode(self) -> Mode | None:
        if self.timed_out:
            if self.redis or self.held_by("redis"):
                return Mode.RSPAMD_TASK_TIMEOUT
            if self.held_by("rspamd dns") or self.dns:
                return Mode.RSPAMD_DNS_DEAD
            if self.held_by("lua tcp", "lua http", "lua udp"):
                return Mode.RSPAMD_SLOW_RULE
            return Mode.RSPAMD_TASK_TIMEOUT
        if len(set(self.dns)) >= 2:
            return Mode.RSPAMD_DNS_DEAD
        if self.redis_timeouts:
            return Mode.REDIS_SLOW
        if self.redis:
            return Mode.REDIS_DOWN
        if self.stop >= 0:
            return Mode.RSPAMD_STOPPING
        return None


@dataclass(frozen=True)
class Item:
    """A message (or a refused session, or rspamd's stop) and what rspamd's failure did
    to it."""

    key: str  # the queue id, else the Message-ID, else "NOQUEUE smtpd[PID]"
    mode: Mode
    fate: Fate
    why: str
    evidence: str  # the line that shows it


@dataclass
class _Session:
    trouble: str = ""  # the milter warning, while this smtpd's session lasts


@dataclass
class _Stop:
    """rspamd told to stop: when, which processes said so, how long it waits."""

    when: str
    line: str = ""  # the first line that said so
    wait: str = ""  # the main process's "waiting for N children for S seconds"
    done: bool = False  # its main process said "terminating...": a later line is another


@dataclass
class Diagnosis:
    scans: dict[str, Scan] = field(default_factory=dict)  # by tag
    items: list[Item] = field(default_factory=list)
    lines: int = 0  # rspamd's and Postfix's lines read
    unread: list[str] = field(default_factory=list)  # rspamd's trouble not diagnosed
    stops: list[_Stop] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.items:
            out[i.mode.value] = out.get(i.mode.value, 0) + 1
        return out


def _stop_of(d: Diagnosis, when: str) -> tuple[int, _Stop]:
    """The stop a stop line belongs to: the last one, until its main process exited."""
    if not d.stops or d.stops[-1].done:
        d.stops.append(_Stop(when))
    return len(d.stops) - 1, d.stops[-1]


def _write_line(d: Diagnosis, tag: str, body: str, stop: int) -> bool:
    """A scan's result line; False if its shape is not the one read here."""
    wr = _WRITE.match(body)
    if wr is None:
        return False
    scan = d.scans.setdefault(tag, Scan(tag))
    scan.message_id, scan.qid, scan.action = wr["mid"], wr["qid"] or "", wr["action"]
    scan.score = float(wr["score"])
    t = _TIME.search(body)
    scan.ms = float(t["ms"]) if t else None
    if "forced: " in body and "soft reject" in body.split("forced: ", 1)[1]:
        scan.action = "soft reject"
    scan.stop = stop
    return True


def _stop_line(d: Diagnosis, fn: str, body: str, when: str, pid: str,
               stopped: dict[str, int]) -> bool:
    """A line of rspamd's stop, or False."""
    if _TERM.search(body) is not None:
        n, stop = _stop_of(d, when)
        stop.line = stop.line or body[:200]
        stopped[pid] = n
    elif (wait := _MAIN_WAIT.search(body)) is not None:
        _, stop = _stop_of(d, when)
        stop.line = stop.line or body[:200]
        stop.wait = f"{float(wait['s']):g} s for {wait['n']} processes"
    elif fn == "main" and body.startswith("terminating...") and d.stops:
        d.stops[-1].done = True
        stopped.clear()  # its workers are gone; their pids may come back as others
    else:
        return False
    return True


def _rspamd_line(d: Diagnosis, text: str, stopped: dict[str, int]) -> bool:
    m = _TASK.search(text)
    if m is None:
        return False
    tag, fn, body = m["tag"], m["fn"], m["text"]
    p = _PROC.search(text, 0, m.start())
    pid = (p["pid"] or p["spid"]) if p else ""
    w = _WHEN.match(text)
    when = w["when"] if w else ""
    if fn == "rspamd_task_write_log":
        if not _write_line(d, tag, body, stopped.get(pid, -1)):
            d.unread.append(text[:200])
    elif fn == "rspamd_task_timeout":
        d.scans.setdefault(tag, Scan(tag)).timed_out = True
    elif (pend := _PENDING.search(body)) is not None:
        d.scans.setdefault(tag, Scan(tag)).pending.append((pend["sub"], pend["where"]))
    elif (dns := _DNS_TIMEOUT.search(body)) is not None:
        d.scans.setdefault(tag, Scan(tag)).dns.append(dns["a"] or dns["b"])
    elif _REDIS.search(body):
        scan = d.scans.setdefault(tag, Scan(tag))
        scan.redis.append(body[:200])
        scan.redis_timeouts += bool(_REDIS_TIMEOUT.search(body))
    elif (not _stop_line(d, fn, body, when, pid, stopped) and _TROUBLE.search(body)
          and not _ROUTINE.search(text)):
        d.unread.append(text[:200])
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
        # a timeout (milter_content_timeout), or the milter gone mid-message (rspamd
        # stopping: "Application error", e2e-rspamd-milter-stopping)
        what = ("did not answer the end of the message in time" if "timed out" in warning
                else "failed at the end of the message (" + warning.rsplit(": ", 1)[-1][:40]
                + ")")
        if reply is not None:
            out.append(Item(qid, Mode.MILTER_UNAVAILABLE, Fate.DEFERRED,
                            f"the milter {what}: milter_default_action = tempfail, the "
                            f"sender got {reply[:60]}", warning))
        else:
            out.append(Item(qid, Mode.MILTER_UNAVAILABLE, Fate.DELIVERED_UNSCANNED,
                            f"the milter {what}: milter_default_action = accept, queued "
                            "without rspamd's verdict", warning))
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


def _scan_item(scan: Scan, mode: Mode, stop_line: str) -> Item:
    fate = Fate.DELIVERED
    soft = scan.action == "soft reject"
    if scan.timed_out:
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
        held = {Mode.RSPAMD_DNS_DEAD: "held by DNS lookups that did not come back",
                Mode.RSPAMD_SLOW_RULE: "held by a rule waiting on a service ("
                + ", ".join(sorted({w for s, w in scan.pending if "redis" not in s}))[:80]
                + ")"}.get(mode)
        if held is None and (scan.redis or scan.held_by("redis")):
            held = "held by Redis"
        if held:
            why = f"{why}, {held}"
        evidence = "rspamd_task_timeout: processing of task time out"
    elif mode == Mode.RSPAMD_DNS_DEAD:
        names = sorted(set(scan.dns))
        why = (f"{len(names)} DNS lookups timed out ({', '.join(names)[:80]}): its nameserver "
               "did not answer; scanned without their results, late")
        evidence = names[0]
    elif mode == Mode.REDIS_SLOW:
        why = (f"{scan.redis_timeouts} Redis request(s) waited out Redis's timeout, then "
               "rspamd scanned on without them, late (Redis or the link to it slower than "
               "that timeout, or a worker too busy to read the answer)")
        evidence = next(r for r in scan.redis if _REDIS_TIMEOUT.search(r))
    elif mode == Mode.REDIS_DOWN:
        why, evidence = "Redis failed: rspamd scanned on without it", scan.redis[0]
    elif scan.qid:  # RSPAMD_STOPPING, a milter's scan: stop_line is its stop's
        # the proxy worker exits at once: Postfix never gets the verdict
        # (e2e-rspamd-milter-stopping: cleanup's "Application error", then tempfail)
        fate = Fate.DEFERRED
        why = ("in flight when rspamd was told to stop: a normal worker finished the scan, "
               "but the milter (rspamd's proxy) exits at once, so Postfix never got the "
               "verdict: milter_default_action (Postfix's default, tempfail, assumed here; "
               "Postfix's lines say which)")
        evidence = stop_line
    else:  # RSPAMD_STOPPING through rspamc: answered
        why = "in flight when rspamd was told to stop: finished and answered, scanned"
        evidence = stop_line
    if scan.ms is not None:
        why += f" after {scan.ms / 1000:.1f} s"
    key = scan.qid or scan.message_id or f"rspamd task <{scan.tag}>"
    return Item(key, mode, fate, why, evidence)


def _stop_items(d: Diagnosis) -> list[Item]:
    """One finding per stop. Its fate is the mail's that arrived meanwhile, which rspamd's
    log does not show: by Postfix's milter lines when they are here (the default action
    they show), else rspamc's (exit 1: delivered unscanned inside ``exception { }``)."""
    milter = [i.fate for i in d.items if i.mode == Mode.MILTER_UNAVAILABLE]
    fate = max(sorted(set(milter)), key=milter.count) if milter else Fate.DELIVERED_UNSCANNED
    then = ("behind the milter, Postfix's lines show milter_default_action: " + fate.value
            if milter else "rspamc is reset or refused and exits 1 at once (maildrop "
            "delivers unscanned inside exception { }); behind a milter, "
            "milter_default_action decides (give Postfix's lines too)")
    out = []
    for n, stop in enumerate(d.stops):
        finished = sum(1 for s in d.scans.values() if s.stop == n)
        out.append(Item(
            f"rspamd stopped {stop.when}".strip(), Mode.RSPAMD_STOPPING, fate,
            "rspamd told to stop (SIGTERM)" + (f", waiting up to {stop.wait}" if stop.wait
                                               else "")
            + f"; {finished} scan(s) in flight finished after it. Mail arriving until "
            f"rspamd is back is not in its log: {then}", stop.line))
    return out


def diagnose(lines: Iterable[str]) -> Diagnosis:
    """rspamd's and Postfix's lines, in log order (either program's, or both merged):
    each scan that met a failure, each stop of rspamd's, and each message the milter's
    absence let in or sent back, in the vocabulary's modes and fates."""
    d = Diagnosis()
    sessions: dict[str, _Session] = {}
    mids: dict[str, str] = {}
    cleanup = _Cleanup()
    stopped: dict[str, int] = {}  # a process told to stop -> the stop (d.stops)
    for text in lines:
        if (_rspamd_line(d, text, stopped)
                or _postfix_line(d, text, sessions, mids, cleanup)):
            d.lines += 1
    d.items += _cleanup_items(cleanup)
    for scan in d.scans.values():
        mode = scan.mode
        if mode is not None:
            d.items.append(_scan_item(scan, mode, d.stops[scan.stop].line
                                      if scan.stop >= 0 else ""))
    d.items += _stop_items(d)
    # a queue id whose Message-ID rspamd logged without the qid: name it by the queue id
    by_mid = {mid: qid for qid, mid in mids.items()}
    d.items = [Item(by_mid.get(i.key, i.key), i.mode, i.fate, i.why, i.evidence)
               for i in d.items]
    # a milter's scan rspamd finished after its stop, and Postfix's own line for that
    # message (what the sender got): one finding, Postfix's
    refused = {i.key for i in d.items if i.mode == Mode.MILTER_UNAVAILABLE}
    d.items = [i for i in d.items
               if not (i.mode == Mode.RSPAMD_STOPPING and i.key in refused)]
    return d
