"""rspamd's budget (sans-IO): each failure mode's worst case and what becomes of the mail,
by the two ways postmasters deploy rspamd, from its configuration and Postfix's milter
settings (``spamdrill.system.rspamd``).

- **rspamc in maildrop's xfilter** (``rspamc --mime``): rspamc waits ``-t`` (10 s by
  default) and does not retry; when it fails it exits 1 and prints the message with
  ``X-Spam-Error``. maildrop treats the exit as a failed xfilter: inside ``exception { }``
  the mail is delivered unscanned, outside maildrop exits 75 and the wrapper decides
  (measured by the lab's drills: README's rspamd section).
- **Postfix's milter** (``smtpd_milters`` to rspamd's proxy worker): a milter that cannot
  be reached, or does not answer within Postfix's ``milter_*_timeout``, gets
  ``milter_default_action``: ``accept`` (delivered unscanned), ``tempfail`` (the sender
  gets 4xx and tries again), ``reject`` (5xx: the sender's MTA bounces it)
  (https://www.postfix.org/MILTER_README.html). rspamd's soft reject answers the MTA
  with a temporary failure too (https://rspamd.com/doc/workers/rspamd_proxy.html).

A scan held past ``task_timeout`` (a frozen Redis, a slow rule) is answered with what
rspamd has (a partial verdict), or with soft reject when ``soft_reject_on_timeout`` is
set (https://rspamd.com/doc/configuration/options.html). Through rspamc a soft reject
defers nothing: rspamc exits 0 and hands the message back with ``X-Spam-Action: soft
reject`` and ``X-Spam: yes`` (score 0.00, ham included), so maildrop delivers it (the
``redis-frozen-soft-reject`` drill); only a milter turns it into a 4xx (``451 4.7.1
timeout processing message``: ``e2e-rspamd-milter-soft-reject``). The lab measured the answer at
``task_timeout`` plus two Redis timeouts, at four settings (8 s + 2 x 1 s = 10.0 s,
Debian's; 8 + 2 x 0.5 = 9.0; 8 + 2 x 3 = 14.0; 4 + 2 x 1 = 6.0, each within 0.04 s:
benchmarks/rspamd_task_timeout.py): the model uses that as the time of the answer, and
a client whose ``-t`` falls between ``task_timeout`` and that answer plus a second
(``EDGE_MARGIN_S``: the answer's own jitter; rspamc -t 10 against the 10.0 s answer
failed some messages and not others) is "at the edge", never within.

Two more ways a scan is held, with Redis healthy (the lab's drills, README's rspamd
section):

- **a slow rule** (``rspamd-slow-rule``): a rule waiting on a service that hangs holds the
  scan to ``task_timeout`` itself, and rspamd answers then (measured 8.02-8.03 s with
  Debian's 8 s), partial or soft reject as above;
- **its nameserver dead** (``rspamd-dns-dead``): each lookup of rspamd's resolver gives up
  after ``dns.timeout`` x ``dns.retransmits`` (1 s x 5 = 5.0 s measured), and a scan
  asks in three rounds, each waiting for the one before: the ASN lookup (a prefilter,
  plugins/asn.lua: filters start once prefilters are done), then the RBL module's
  allowlists, then its blocklists (``RBL_CALLBACK`` depends on ``RBL_CALLBACK_WHITE``,
  plugins/rbl.lua). So the lookups take ``DNS_CHAIN`` = 3 of those in turn, and the
  answer comes at the shorter of that and ``task_timeout``: Debian's min(8, 3 x 5) = 8 s
  (measured 8.01-8.12 s); 1 s x 2 under 8 s: 6 s (measured 6.04-6.25 s); 1 s x 5 under
  20 s: 15 s (measured 15.07-15.14 s; benchmarks/rspamd_dns_dead.py, which first showed
  the third round). Only a scan that ``task_timeout`` ended is a partial verdict or a
  soft reject; one the lookups ended first is an ordinary verdict without the DNS
  results.
And two more, measured by the rspamc path; behind the milter, a stop measured by
``e2e-rspamd-milter-stopping`` and a slow Redis predicted from Postfix's and rspamd's own
rules (see ``_milter_more``):

- **rspamd stopping** (``rspamd-stopping``): told to stop, rspamd's main process waits
  for its workers' scans in flight up to max(``SOFT_SHUTDOWN_TIME`` 10 s, 2 x
  task_timeout) (src/rspamd.c, ``rspamd_term_handler``); a message that arrives
  meanwhile waits unaccepted until rspamd exits and is then reset (or rspamc's ``-t``
  ends first), one after that is refused: rspamc exits 1 either way. The lab measured the
  reset 1.2 s after such a message was sent, its 1 s scans in flight finishing first.
- **Redis slow** (``redis-slow``): below rspamd's Redis timeout each scan pays the delay
  per request, above it each request times out; either way the scan is answered no later
  than with a frozen or dropped Redis (task_timeout plus two Redis timeouts), so that is
  the worst case the model gives (measured: 0.9 s at 0.15 s a chunk each way, 5.0 s at
  1.5 s, against 10.0 s for a dropped link: the ``redis-slow``, ``redis-slow-past-timeout``
  and ``redis-dropped`` drills).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from spamdrill.vocab import Fate, Finding, Mode

Path_ = Literal["rspamc", "milter"]
RSPAMC_DEFAULT_T = 10.0  # rspamc --help: -t, --timeout (10 s)
SOFT_SHUTDOWN_S = 10.0  # rspamd.h SOFT_SHUTDOWN_TIME: the least rspamd waits for its scans
EDGE_MARGIN_S = 1.0  # see the module docstring
DNS_CHAIN = 3  # lookups in turn per scan with the nameserver dead (see the module docstring)


@dataclass(frozen=True)
class RspamdSetup:
    """The inputs, in seconds. ``rspamc_t`` is None when no xfilter runs rspamc;
    ``milter_action`` is None when Postfix runs no milter."""

    task_timeout: float = 8.0
    soft_reject: bool = False
    redis_timeout: float = 1.0
    workers: int | None = None
    rspamc_t: float | None = RSPAMC_DEFAULT_T
    in_exception: bool = True
    milter_action: str | None = None
    milter_connect_timeout: float = 30.0
    milter_command_timeout: float = 30.0
    milter_content_timeout: float = 300.0
    proxy_timeout: float = 120.0
    dns_timeout: float = 1.0
    dns_retransmits: int = 5

    @property
    def answer_s(self) -> float:
        """When rspamd answers a scan held past its task timeout (see the module)."""
        return self.task_timeout + 2 * self.redis_timeout

    @property
    def dns_dead_s(self) -> float:
        """When rspamd answers a scan whose nameserver is dead (see the module)."""
        return min(self.task_timeout, DNS_CHAIN * self.dns_timeout * self.dns_retransmits)

    @property
    def dns_dead_timed_out(self) -> bool:
        """Whether task_timeout, not the lookups, ends a scan with the nameserver dead."""
        return DNS_CHAIN * self.dns_timeout * self.dns_retransmits >= self.task_timeout

    @property
    def shutdown_s(self) -> float:
        """The longest rspamd waits for its scans once told to stop (see the module)."""
        return max(SOFT_SHUTDOWN_S, 2 * self.task_timeout)


@dataclass(frozen=True)
class Prediction:
    mode: Mode
    via: Path_
    worst_s: float  # the longest a message waits in this mode, by this path
    fate: Fate  # what becomes of the message
    why: str
    edge: bool = False  # the client's limit sits between the timeout and the answer

    @property
    def finding(self) -> Finding:
        return self.fate.finding

    def public(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "via": self.via, "worst_s": round(self.worst_s, 3),
                "fate": self.fate.value, "finding": self.finding.value, "why": self.why,
                "edge": self.edge}


def _rspamc_failed(s: RspamdSetup, what: str) -> tuple[Fate, str]:
    if s.in_exception:
        return Fate.DELIVERED_UNSCANNED, (f"{what}: rspamc exits 1, and maildrop's "
                                          "exception { } delivers the message unscanned")
    return Fate.DEFERRED, (f"{what}: rspamc exits 1 and maildrop exits 75 (the xfilter "
                           "outside exception { }): the wrapper decides, deferred only if "
                           "it passes 75 on (see the filter-failed row)")


def _milter_unavailable(s: RspamdSetup, what: str) -> tuple[Fate, str]:
    action = s.milter_action or "tempfail"
    fate = {"accept": Fate.DELIVERED_UNSCANNED, "tempfail": Fate.DEFERRED,
            "reject": Fate.BOUNCED, "quarantine": Fate.DELIVERED_UNSCANNED}[action]
    said = {"accept": "Postfix accepts it as if there were no milter (unscanned)",
            "tempfail": "the sender gets 451 4.7.1 and keeps the message to try again",
            "reject": "the sender gets 5xx: its MTA bounces the message",
            "quarantine": "Postfix accepts it unscanned and holds it in its hold queue"}
    return fate, f"{what}: milter_default_action = {action}: {said[action]}"


def predict(s: RspamdSetup) -> list[Prediction]:
    """Each mode's worst case, by each path the system uses."""
    out: list[Prediction] = []
    if s.rspamc_t is not None:
        out += _rspamc(s, s.rspamc_t)
    if s.milter_action is not None:
        out += _milter(s)
    return out + _held(s)


def _held(s: RspamdSetup) -> list[Prediction]:
    """A slow rule and a dead nameserver, by each path (see the module docstring)."""
    dns = s.dns_timeout * s.dns_retransmits
    cases = [(Mode.RSPAMD_SLOW_RULE, float(s.task_timeout), True,
              f"a rule waiting on a service that hangs holds the scan to task_timeout "
              f"{s.task_timeout:g} s"),
             (Mode.RSPAMD_DNS_DEAD, s.dns_dead_s, s.dns_dead_timed_out,
              f"each lookup gives up after dns.timeout {s.dns_timeout:g} s x retransmits "
              f"{s.dns_retransmits} = {dns:g} s, {DNS_CHAIN} in turn, task_timeout "
              f"{s.task_timeout:g} s")]
    out: list[Prediction] = []
    for mode, answer, timed_out, cause in cases:
        verdict = ("soft reject" if timed_out and s.soft_reject else
                   "a partial verdict" if timed_out else "a verdict without the DNS results")
        why = f"{cause}: rspamd answers at about {answer:g} s with {verdict}"
        t = s.rspamc_t
        if t is not None:
            if t <= answer:
                fate, failed = _rspamc_failed(s, f"rspamc's -t {t:g} s ends first")
                out.append(Prediction(mode, "rspamc", t, fate, f"{cause}; {failed}"))
            elif t < answer + EDGE_MARGIN_S:
                fate, failed = _rspamc_failed(s, f"-t {t:g} s falls that close to it")
                out.append(Prediction(mode, "rspamc", t, fate,
                                      f"{why}; {failed}: some messages fail, some not",
                                      edge=True))
            else:
                through = ("; rspamc exits 0 with X-Spam-Action: soft reject and X-Spam: "
                           "yes, and maildrop delivers it" if verdict == "soft reject"
                           else "")
                out.append(Prediction(mode, "rspamc", answer, Fate.DELIVERED, why + through))
        if s.milter_action is not None:
            limit = min(s.milter_content_timeout, s.proxy_timeout)
            if answer >= limit:
                fate, failed = _milter_unavailable(s, f"the milter's wait ends first "
                                                      f"({limit:g} s)")
                out.append(Prediction(mode, "milter", limit, fate, f"{cause}; {failed}"))
            elif verdict == "soft reject":
                out.append(Prediction(mode, "milter", answer, Fate.DEFERRED,
                                      f"{why}: the milter tempfails (451 4.7.1), the "
                                      "sender tries again"))
            else:
                out.append(Prediction(mode, "milter", answer, Fate.DELIVERED,
                                      f"{why}: the sender gets 250, delivered"))
    return out


def _rspamc(s: RspamdSetup, t: float) -> list[Prediction]:
    out = [Prediction(Mode.RSPAMD_REFUSED, "rspamc", 0.0,
                      *_rspamc_failed(s, "rspamd refuses at once"))]
    answer = s.answer_s
    if t <= s.task_timeout:
        fate, why = _rspamc_failed(s, f"rspamc's -t {t:g} s ends first (task_timeout "
                                      f"{s.task_timeout:g} s)")
        out.append(Prediction(Mode.RSPAMD_TASK_TIMEOUT, "rspamc", t, fate, why))
    else:
        edge = t < answer + EDGE_MARGIN_S
        verdict = ("soft reject, which defers nothing here: rspamc exits 0 with "
                   "X-Spam-Action: soft reject and X-Spam: yes (score 0), and maildrop "
                   "delivers it, as spam to a maildroprc that files X-Spam: yes"
                   if s.soft_reject else "a partial verdict (the symbols not yet run lost)")
        why = (f"rspamd answers at about {answer:g} s (task_timeout {s.task_timeout:g} s "
               f"+ Redis's timeouts) with {verdict}")
        if edge:
            fate, failed = _rspamc_failed(s, f"-t {t:g} s falls before that answer")
            out.append(Prediction(Mode.RSPAMD_TASK_TIMEOUT, "rspamc", t, fate,
                                  f"{why}; {failed}: some messages fail, some not",
                                  edge=True))
        else:
            out.append(Prediction(Mode.RSPAMD_TASK_TIMEOUT, "rspamc", answer,
                                  Fate.DELIVERED, why))
    fate, why = _rspamc_failed(s, f"every scan waiting for a busy worker past -t {t:g} s")
    workers = f"{s.workers}" if s.workers else "CPUs - 2 (1 to 4)"
    out.append(Prediction(Mode.RSPAMD_OVERLOADED, "rspamc", t, fate,
                          f"{workers} normal worker(s) interleave a burst; {why}"))
    out.append(Prediction(Mode.REDIS_DOWN, "rspamc", 0.0, Fate.DELIVERED,
                          "Redis refuses at once: rspamd scans on without Bayes, history "
                          "and greylisting"))
    out.append(_redis_slow(s, t))
    wait = min(t, s.shutdown_s)
    fate, why = _rspamc_failed(s, f"a message arriving while rspamd stops waits unaccepted "
                                  f"until it exits (up to {s.shutdown_s:g} s: its scans in "
                                  f"flight finish first) or -t {t:g} s, then fails")
    out.append(Prediction(Mode.RSPAMD_STOPPING, "rspamc", wait, fate, why))
    return out


def _redis_slow(s: RspamdSetup, t: float) -> Prediction:
    """A slow link to Redis: never answered later than a frozen one (see the module)."""
    answer = s.answer_s
    why = (f"each Redis request pays the link's delay, or times out at {s.redis_timeout:g} "
           f"s above it; rspamd answers by about {answer:g} s at worst (task_timeout "
           f"{s.task_timeout:g} s + Redis's timeouts)")
    if t >= answer + EDGE_MARGIN_S:
        return Prediction(Mode.REDIS_SLOW, "rspamc", answer, Fate.DELIVERED, why)
    fate, failed = _rspamc_failed(s, f"-t {t:g} s may fall before that answer")
    return Prediction(Mode.REDIS_SLOW, "rspamc", t, fate, f"{why}; {failed}: on a link "
                      "slow enough, some messages fail", edge=True)


def _milter(s: RspamdSetup) -> list[Prediction]:
    out = [Prediction(Mode.MILTER_UNAVAILABLE, "milter", 0.0,
                      *_milter_unavailable(s, "rspamd's proxy refuses the connection"))]
    answer = s.answer_s
    limit = min(s.milter_content_timeout, s.proxy_timeout)
    if answer >= limit:
        fate, why = _milter_unavailable(
            s, f"the milter's wait ends first ({limit:g} s: milter_content_timeout "
               f"{s.milter_content_timeout:g} s, the proxy's timeout {s.proxy_timeout:g} s)")
        out.append(Prediction(Mode.RSPAMD_TASK_TIMEOUT, "milter", limit, fate, why))
    elif s.soft_reject:
        out.append(Prediction(Mode.RSPAMD_TASK_TIMEOUT, "milter", answer, Fate.DEFERRED,
                              f"rspamd answers at about {answer:g} s with soft reject: the "
                              "milter tempfails, the sender tries again"))
    else:
        out.append(Prediction(Mode.RSPAMD_TASK_TIMEOUT, "milter", answer, Fate.DELIVERED,
                              f"rspamd answers at about {answer:g} s with a partial verdict, "
                              f"within milter_content_timeout {s.milter_content_timeout:g} s"))
    out.append(Prediction(Mode.REDIS_DOWN, "milter", 0.0, Fate.DELIVERED,
                          "Redis refuses at once: rspamd scans on without it"))
    return out + _milter_more(s)


def _milter_more(s: RspamdSetup) -> list[Prediction]:
    """rspamd stopping and a slow Redis, behind Postfix's milter.

    - **stopping** (measured: ``e2e-rspamd-milter-stopping``): rspamd's proxy worker, the
      milter, exits at once, so the message whose milter session is open gets no verdict
      even when a normal worker finishes its scan (cleanup: ``can't read SMFIC_BODYEOB
      reply packet header: Application error``), and a new session's connection sits
      unaccepted until rspamd exits and resets it (``SMFIC_OPTNEG ... Connection reset by
      peer``), or Postfix's wait for the milter's first reply (``milter_command_timeout``;
      the connect completes in the kernel) ends first; once rspamd is gone, the connect is
      refused. Each is ``milter_default_action`` (measured with tempfail: 451 4.7.1 within
      about a second of the stop, the retry delivered once rspamd was back). The bound is
      the longest rspamd may take to exit (``shutdown_s``) or that wait.
    - **a slow Redis**: answered no later than a frozen one (``answer_s``), within
      Postfix's wait unless ``milter_content_timeout`` or the proxy's timeout is shorter.
      Below Redis's timeout, or past it without reaching task_timeout (the two slow links
      measured), the verdict is an ordinary one: 250, delivered; only a link slow enough to
      hold a scan to task_timeout (a dropped one) is a partial verdict, or a soft reject
      (451 4.7.1, as ``e2e-rspamd-milter-soft-reject`` measured), the worst case given."""
    wait = min(s.shutdown_s, s.milter_command_timeout)
    fate, why = _milter_unavailable(
        s, f"rspamd's proxy exits at once: the message in flight gets no verdict, and one "
           f"arriving while rspamd stops waits unaccepted until rspamd exits (up to "
           f"{s.shutdown_s:g} s) or milter_command_timeout {s.milter_command_timeout:g} s "
           "ends first, then Postfix's connects are refused")
    out = [Prediction(Mode.RSPAMD_STOPPING, "milter", wait, fate, why)]
    answer = s.answer_s
    limit = min(s.milter_content_timeout, s.proxy_timeout)
    cause = (f"each Redis request pays the link's delay, or times out at "
             f"{s.redis_timeout:g} s above it; rspamd answers by about {answer:g} s at "
             f"worst (task_timeout {s.task_timeout:g} s + Redis's timeouts)")
    if answer >= limit:
        fate, failed = _milter_unavailable(s, f"the milter's wait ends first ({limit:g} s)")
        out.append(Prediction(Mode.REDIS_SLOW, "milter", limit, fate, f"{cause}; {failed}"))
    elif s.soft_reject:
        out.append(Prediction(Mode.REDIS_SLOW, "milter", answer, Fate.DEFERRED,
                              f"{cause}; a scan held to task_timeout is a soft reject: the "
                              "milter tempfails (451 4.7.1), the sender tries again; "
                              "one answered sooner is delivered (250)"))
    else:
        out.append(Prediction(Mode.REDIS_SLOW, "milter", answer, Fate.DELIVERED,
                              f"{cause}, within milter_content_timeout "
                              f"{s.milter_content_timeout:g} s: delivered (250)"))
    return out


def worst(predictions: list[Prediction]) -> Finding:
    return Finding.worst([p.finding for p in predictions])
