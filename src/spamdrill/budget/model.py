"""The budget model, sans-IO: for each failure mode, each layer's worst case, which limit
fires first, and what Postfix finally does with the mail.

Layers, inside out, each from its source:

- spamc: ``spamdrill.budget.spamc`` (libspamc.c).
- spamd: ``--timeout-child`` (default 300 s) ends a child that takes too long; it answers
  ``SPAMD/1.0 79 Timeout`` (seen on spamd 4.0.1), which spamc treats as a failure (unscanned).
- maildrop: ``maildrop/globaltimer.C``: after the compiled-in global timeout (Debian: 300 s)
  it writes ``maildrop: Timeout quota exceeded.`` and ``_exit(EX_TEMPFAIL)``; it does not kill
  the running xfilter, so a spamc still waiting keeps maildrop's output pipe open.
- the wrapper: ``spamdrill-deliver`` kills the MDA's process group at its deadline, and when
  maildrop exits, and defers; the field report's first wrapper turned 75 into 100 (bounce).
- the database's host name, when the resolver is dead or says SERVFAIL: glibc
  (``resolv/res_send.c``) tries every server ``attempts`` times, and MariaDB Connector/C
  (``plugins/pvio/pvio_socket.c``) calls getaddrinfo() again while it says EAI_AGAIN, for
  the DSN's connect timeout or 30 s: spamd then fails the message (unscanned).
- a firewall that rejects with ICMP: ``spamdrill.budget.icmp`` (the kernel's rate limit).
- Postfix pipe(8): ``pipe_command.c`` waits for the command's output to close; past
  ``<transport>_time_limit`` (default ``command_time_limit``, 1000 s) it kills the process
  group and **bounces** (5.3.0). Exit 75 defers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from spamdrill import fixes
from spamdrill.budget import icmp
from spamdrill.budget import spamc as spamc_model
from spamdrill.budget.spamc import SpamcFlags

MODES = ("spamd-refused", "spamd-accept-queue-full", "spamd-silent", "spamd-slow-drip",
         "spamd-overloaded", "db-unreachable", "db-locked", "dns-dead", "dns-db-servfail",
         "spamd-rejected", "net-slow")

LINUX_TCP_CONNECT_S = spamc_model.KERNEL_CONNECT_S  # tcp_syn_retries 6: 1+2+...+64 s (133.3 s
#                              measured on a 6.18 kernel with tcp_syn_linear_timeouts 4)
INNODB_LOCK_WAIT_S = 50.0  # MariaDB innodb_lock_wait_timeout default
LOCK_WAIT_S = 86400.0  # MariaDB lock_wait_timeout default (FLUSH TABLES WITH READ LOCK)
RESOLV_TIMEOUT_S = 5.0  # resolv.conf(5): timeout 5, attempts 2
RESOLV_ATTEMPTS = 2
CONNECTOR_DNS_TIMEOUT_S = 30  # MariaDB Connector/C pvio_socket.c DNS_TIMEOUT


def libc_dead_lookup_s(timeout: float, attempts: int, servers: int) -> float:
    """One lookup when no listed server answers. glibc ``res_send.c``: each of
    ``attempts`` rounds asks every server in turn; ``send_dg()`` waits ``retrans << i``
    seconds for server ``i``, divided by the server count for ``i > 0``, at least 1 s."""
    n = max(1, servers)
    per_round = 0
    for i in range(n):
        wait = int(timeout) << i
        if i > 0:
            wait //= n
        per_round += max(1, wait)
    return float(max(1, attempts) * per_round)


def dead_name_lookup_s(timeout: float, attempts: int, servers: int, search: int) -> float:
    """getaddrinfo() of one name with no server answering. ``res_search()`` (glibc
    ``resolv/res_query.c``) tries the name as it is and with the search list's first
    domain (ndots decides which first); a TRY_AGAIN (no answer) ends the list there, so a
    search list costs exactly one dead lookup more."""
    return libc_dead_lookup_s(timeout, attempts, servers) * (2 if search else 1)


def connector_dns_wait_s(lookup_s: float, connect_timeout: float = 0) -> float:
    """How long MariaDB Connector/C keeps resolving a name that gives EAI_AGAIN (a dead
    resolver or SERVFAIL). ``pvio_socket_connect()``: getaddrinfo() again and again,
    sleeping 1 us doubling between calls, until ``time(NULL) - start > timeout`` (whole
    seconds; the connect timeout, else ``DNS_TIMEOUT``, 30 s). Simulated exactly, with the
    start at the top of a second (the worst case)."""
    limit = connect_timeout or CONNECTOR_DNS_TIMEOUT_S
    t, wait = 0.0, 1e-6
    while True:
        t += lookup_s
        if math.floor(t) > limit:
            return t
        t += wait
        wait *= 2


@dataclass(frozen=True)
class Setup:
    """Everything the model needs, each with where it came from."""

    spamc: SpamcFlags = field(default_factory=SpamcFlags)
    spamd_timeout_child: float = 300.0
    spamd_timeout_tcp: float = 30.0
    spamd_max_children: int = 5
    rbl_timeout: float = 15.0
    db_connect_timeout: float | None = None  # DSN mysql_connect_timeout; None = the OS's
    db_host_is_name: bool = False
    resolv_timeout: float = RESOLV_TIMEOUT_S  # resolv.conf options timeout:
    resolv_attempts: int = RESOLV_ATTEMPTS  # options attempts:
    resolv_servers: int = 1  # nameserver lines (glibc uses up to 3)
    resolv_search: int = 0  # search (or domain) list's length
    resolv_ndots: int = 1  # options ndots: (which try comes first, not what they cost)
    resolv_rotate: bool = False  # options rotate (which server first: the same total)
    # modes whose component the system does not use, with the reason: n/a rows
    absent: dict[str, str] = field(default_factory=dict)
    maildrop_timeout: float = 300.0
    # none | spamdrill-deliver | bounce-on-75 (what-ifs) | measured | unmeasured
    wrapper: str = "none"
    wrapper_deadline: float | None = None
    postfix_time_limit: float = 1000.0
    link_rate: float | None = None  # bytes/s between spamc and spamd; None: not modelled
    concurrency: int = 100  # spamc started at once from one host: the maildrop service's
    #                         maxproc (master.cf), else default_process_limit
    syn_linear_timeouts: int = 0  # net.ipv4.tcp_syn_linear_timeouts of spamc's host
    # maildrop catches a failed xfilter inside ``exception { }`` and goes on (delivers
    # unscanned); outside one it exits 75, "Unable to filter message." (measured, 2.9.3)
    xfilter_in_exception: bool = False
    spamd_names_by_dns: int = 0  # -d names spamc must ask DNS for (not in /etc/hosts)
    # how the wrapper's behaviour is known (measured, or why not), said in every row it
    # decides
    wrapper_assumption: str = ""
    # the wrapper's measured fate per event of ``wrappertable.EVENTS`` (timeout,
    # filter-failed, delivered), and its exit on each; empty: the ``wrapper`` kind's
    wrapper_fates: dict[str, str] = field(default_factory=dict)
    wrapper_exits: dict[str, str] = field(default_factory=dict)
    # the xfilter runs spamdrill-spamc with --deadline: the whole check ends by then
    spamc_deadline: float | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, key: str, default: str) -> str:
        return self.sources.get(key, default)

    def fate(self, event: str) -> str:
        """What Postfix makes of maildrop's ending ``event`` through the wrapper."""
        if event in self.wrapper_fates:
            return self.wrapper_fates[event]
        if event == "delivered":
            return "delivered"
        return {"bounce-on-75": "bounced", "unmeasured": "lost"}.get(self.wrapper,
                                                                     "deferred")


@dataclass
class Violation:
    inner: str
    outer: str
    fix: str

    def public(self) -> dict[str, str]:
        return {"inner": self.inner, "outer": self.outer, "fix": self.fix}


@dataclass
class ModeResult:
    mode: str
    spamc_s: float | None  # spamc's worst case (None: unbounded)
    spamd_s: float | None  # how long spamd takes to answer in this mode (None: no answer)
    worst_s: float | None  # delivery's worst wall time until Postfix gets a verdict
    fires_first: str
    outcome: str  # delivered | delivered unscanned | deferred | bounced
    why: str
    violations: list[Violation] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"mode": self.mode, "worst_s": _r(self.worst_s), "spamc_s": _r(self.spamc_s),
                "spamd_s": _r(self.spamd_s), "fires_first": self.fires_first,
                "outcome": self.outcome, "why": self.why,
                "violations": [v.public() for v in self.violations],
                "assumptions": list(self.assumptions)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def limits(s: Setup) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"layer": "spamc -t (per read)", "seconds": s.spamc.timeout or None,
         "source": s.spamc.origin("timeout")},
        {"layer": "spamc connect (per address and try)", "seconds": s.spamc.connect_wait,
         "source": s.spamc.origin("connect_timeout") if s.spamc.connect_timeout
         else "the kernel's TCP connect timeout (spamc sets no alarm without -t or -n)"},
        {"layer": "spamd --timeout-child", "seconds": s.spamd_timeout_child,
         "source": s.source("spamd", "spamd default")},
        {"layer": "SpamAssassin rbl_timeout", "seconds": s.rbl_timeout,
         "source": s.source("sa", "SpamAssassin default")},
        {"layer": "resolver, one name with no server answering"
                  + (" (as is, then the first search domain)" if s.resolv_search else ""),
         "seconds": _name_lookup(s),
         "source": s.source("resolv", "glibc defaults (timeout 5, attempts 2)")},
        {"layer": "maildrop global timeout", "seconds": s.maildrop_timeout,
         "source": s.source("maildrop", "Debian maildrop 2.9.3 (compiled in)")},
        {"layer": "Postfix time limit (bounces)", "seconds": s.postfix_time_limit,
         "source": s.source("postfix", "Postfix default command_time_limit")},
    ]
    if s.wrapper_fates:
        said = "; ".join(
            f"{event}: {s.wrapper_exits[event] + ' -> ' if event in s.wrapper_exits else ''}"
            f"{s.fate(event)}" for event in ("timeout", "filter-failed", "delivered"))
        out.insert(5, {"layer": "wrapper (measured)" if s.wrapper_exits else
                       "wrapper (not measured: the worst assumed)", "seconds": None,
                       "source": f"{s.source('wrapper', 'master.cf')}: {said}"})
    if s.spamc_deadline is not None:
        out.insert(2, {"layer": "spamdrill-spamc --deadline (the whole check; fails open)",
                       "seconds": s.spamc_deadline + SPAMC_DEADLINE_MARGIN_S,
                       "source": s.source("spamc_deadline", "the xfilter's command") +
                       f" (+ {SPAMC_DEADLINE_MARGIN_S:g} s for start-up and exit)"})
    if s.wrapper == "spamdrill-deliver":
        out.insert(5, {"layer": "spamdrill-deliver deadline (defers)",
                       "seconds": s.wrapper_deadline or 600.0,
                       "source": s.source("wrapper", "spamdrill-deliver default")})
    return out


def _spamd_answer(s: Setup, work_s: float | None) -> float | None:
    """When spamd answers if the scan would take ``work_s``: --timeout-child caps it."""
    if work_s is None or work_s >= s.spamd_timeout_child:
        return s.spamd_timeout_child if s.spamd_timeout_child else None
    return work_s


def _spamc_given_answer(f: SpamcFlags, answer_s: float | None) -> float | None:
    """spamc's worst case when spamd answers after ``answer_s`` (None: never)."""
    bound = spamc_model.silent(f)
    if answer_s is None:
        return bound
    if f.timeout and answer_s >= f.timeout:
        return bound
    return answer_s


def evaluate(s: Setup) -> list[ModeResult]:
    f = s.spamc
    db_connect = s.db_connect_timeout or LINUX_TCP_CONNECT_S
    calls, sleeps = spamc_model.connect_failures(f, refused=False)
    cases: list[tuple[str, float | None, float | None, str]] = [
        ("spamd-refused", spamc_model.refused(f), None,
         f"every connect refused at once: {spamc_model.connect_failures(f, True)[1]} "
         f"retry sleep(s) of {f.retry_sleep:g} s"),
        ("spamd-accept-queue-full", spamc_model.accept_queue_full(f), None,
         f"SYNs dropped: {calls} connect() calls ({f.tries} tries x "
         f"{f.addresses_per_try} address(es)) x {f.connect_wait:g} s + {sleeps} sleep(s)"),
        ("spamd-silent", spamc_model.silent(f), None,
         "accepted, never answers: filter-retries x -t + sleeps"),
        ("spamd-slow-drip", spamc_model.slow_drip(f), None,
         "-t bounds each read, not the answer: a byte every < -t seconds never ends"),
    ]
    rejected = icmp.simulate(s.concurrency, f, syn_linear=s.syn_linear_timeouts)
    cases.append(("spamd-rejected", rejected.worst_s, None,
                  f"a firewall rejects with ICMP port unreachable: of {s.concurrency} spamc "
                  f"at once from one host, the kernel answers {icmp.XRLIM_BURST_FACTOR} at "
                  f"once and then one a second; the rest wait out connect timeouts "
                  f"({rejected.sent} ICMPs, {rejected.limited} SYNs unanswered)"))
    overload = _spamd_answer(s, None)
    cases.append(("spamd-overloaded", _spamc_given_answer(f, None), overload,
                  "queued in the kernel's accept queue until a child is free: spamc waits "
                  "for the first line, bounded by -t"))
    db_work = 2 * db_connect  # user prefs, then Bayes: each connects
    cases.append(("db-unreachable", _spamc_given_answer(f, _spamd_answer(s, db_work)),
                  _spamd_answer(s, db_work),
                  f"packets dropped: each SQL connect waits {db_connect:g} s (user prefs and "
                  "Bayes), capped by --timeout-child"))
    cases.append(("db-locked", _spamc_given_answer(f, _spamd_answer(s, LOCK_WAIT_S)),
                  _spamd_answer(s, LOCK_WAIT_S),
                  "a global read lock: Bayes updates wait lock_wait_timeout, capped by "
                  "--timeout-child"))
    if s.db_host_is_name:
        lookup = _name_lookup(s)
        limit = s.db_connect_timeout or CONNECTOR_DNS_TIMEOUT_S
        for mode, each, what in (("dns-dead", lookup, f"each lookup waits {lookup:g} s"),
                                 ("dns-db-servfail", 0.0, "each lookup fails at once")):
            work = connector_dns_wait_s(each, s.db_connect_timeout or 0)
            cases.append((mode, _spamc_given_answer(f, _spamd_answer(s, work)),
                          _spamd_answer(s, work),
                          f"the DSN names the database: {what}, and MariaDB Connector/C "
                          f"asks again for {limit:g} s (EAI_AGAIN): spamd fails the message "
                          f"after {work:.1f} s"))
    else:
        cases.append(("dns-dead", _spamc_given_answer(f, _spamd_answer(s, s.rbl_timeout)),
                      _spamd_answer(s, s.rbl_timeout),
                      f"DNSBL lookups give up after rbl_timeout ({s.rbl_timeout:g} s); the "
                      "DSN names the database by address"))
        cases.append(("dns-db-servfail", 0.0, 0.0, "the DSN names the database by address: "
                      "no lookup of its name to fail"))
    if s.spamd_names_by_dns:
        cases = [_spamc_lookups(s, c) if c[0] == "dns-dead" else c for c in cases]
    if s.link_rate:
        cases.append(_slow_link_case(f, s.link_rate))
    fails = {"db-unreachable", "dns-db-servfail"} | ({"dns-dead"} if s.db_host_is_name
                                                     else set())
    results = []
    for case in cases:
        if case[0] in s.absent:
            results.append(ModeResult(case[0], None, None, None, "-", "n/a",
                                      s.absent[case[0]]))
            continue
        bounded = _within_deadline(s, case)
        mode, spamc_s, spamd_s, why = bounded
        result = _judge(s, mode, spamc_s, spamd_s, why, mode in fails)
        if bounded is not case and result.fires_first == "spamc":
            result.fires_first = "spamdrill-spamc --deadline"
        results.append(result)
    return results


SPAMC_DEADLINE_MARGIN_S = 1.0  # past --deadline: start-up and exit (tests/test_spamc_lab.py)


def _within_deadline(s: Setup, case: tuple[str, float | None, float | None, str]
                     ) -> tuple[str, float | None, float | None, str]:
    """spamdrill-spamc ends the whole check at --deadline (connects, retries, sleeps, the
    answer however slowly it comes) and then fails as spamc fails (the message unscanned,
    or with -x a failed xfilter): a worst case past the deadline becomes the deadline,
    with no answer from spamd."""
    d = s.spamc_deadline
    mode, spamc_s, _, why = case
    if d is None or (spamc_s is not None and spamc_s <= d):
        return case
    bound = d + SPAMC_DEADLINE_MARGIN_S
    was = "unbounded" if spamc_s is None else f"{spamc_s:g} s"
    return (mode, bound, None, f"{why}; spamdrill-spamc --deadline {d:g} ends the check "
            f"after {d:g} s (+ {SPAMC_DEADLINE_MARGIN_S:g} s) where spamc's flags allow {was}")


def _name_lookup(s: Setup) -> float:
    return dead_name_lookup_s(s.resolv_timeout, s.resolv_attempts, s.resolv_servers,
                              s.resolv_search)


def _spamc_lookups(s: Setup, case: tuple[str, float | None, float | None, str]
                   ) -> tuple[str, float | None, float | None, str]:
    """spamc resolves every -d name before it connects (``transport_setup``): with the
    resolver dead each name costs a whole dead lookup; if none resolves, spamc fails with
    EX_TEMPFAIL and never reaches spamd."""
    lookup = _name_lookup(s)
    wait = s.spamd_names_by_dns * lookup
    mode, spamc_s, spamd_s, why = case
    if s.spamd_names_by_dns >= len(s.spamc.hosts):
        return (mode, wait, None, f"spamc resolves spamd's name(s) first: "
                f"{s.spamd_names_by_dns} x {lookup:g} s, then gives up (EX_TEMPFAIL) "
                "without reaching spamd")
    return (mode, None if spamc_s is None else spamc_s + wait, spamd_s,
            f"{why}; spamc first waits {wait:g} s for the -d name(s) DNS must answer")


def _slow_link_case(f: SpamcFlags, rate: float) -> tuple[str, float | None,
                                                          float | None, str]:
    link = spamc_model.slow_link(f, rate)
    if link.largest_scanned is None:
        why = (f"every message up to -s ({f.max_size} bytes) goes up in "
               f"{f.max_size / rate:.0f} s and comes back as slowly; scan time adds")
    else:
        why = (f"spamc's writes are unbounded and the kernel takes the message at once, so "
               f"the upload counts against -t: up to {link.largest_scanned} bytes are "
               f"scanned (the largest takes about 2 x -t), bigger ones come back unscanned")
    answered = link.worst_s if link.worst_scanned else None
    return ("net-slow", link.worst_s, answered, why)


def _judge(s: Setup, mode: str, spamc_s: float | None, spamd_s: float | None,
           why: str, spamd_fails: bool = False) -> ModeResult:
    """``spamd_fails``: spamd's answer is an error (service unavailable), never a scan."""
    scanned = (spamd_s is not None and spamc_s == spamd_s and not spamd_fails
               and spamd_s < s.spamd_timeout_child and mode != "spamd-overloaded")
    m, ctl = s.maildrop_timeout, s.postfix_time_limit
    deadline = (s.wrapper_deadline or 600.0) if s.wrapper == "spamdrill-deliver" else None
    violations: list[Violation] = []
    spamc_txt = "unbounded" if spamc_s is None else f"{spamc_s:g} s"
    if spamc_s is not None and spamc_s < m and (deadline is None or spamc_s < deadline):
        answered = spamd_s is not None and spamc_s == spamd_s  # a scan, or spamd's error
        fires = "none (spamd answered)" if answered else "spamc"
        if scanned:
            return _through(s, ModeResult(mode, spamc_s, spamd_s, spamc_s, fires,
                                          "delivered", why), "delivered")
        return _failed_scan(s, mode, spamc_s, spamd_s, fires, why)
    if deadline is not None and deadline <= m:
        fires, worst, outcome = "spamdrill-deliver deadline", deadline, "deferred"
    else:
        fires = "maildrop global timeout"
        if spamc_s is None and deadline is not None:
            # nothing in spamc bounds it, and the wrapper already turns it into a deferral
            why += ("; no spamc flag bounds this: spamdrill-deliver defers it when maildrop "
                    "gives up (find the slow spamd: spamdrill run spamc-timeouts)")
        else:
            violations.append(Violation(f"spamc worst case ({spamc_txt})",
                                        f"maildrop global timeout ({m:g} s)", _fix(s, mode)))
        if deadline is not None:  # the wrapper kills the hung spamc once maildrop exits
            worst, outcome = m, "deferred"
        elif spamc_s is None or spamc_s >= ctl:
            worst, outcome = ctl, "bounced"
            fires = "maildrop global timeout, then Postfix time limit"
            violations.append(Violation(
                f"spamc still running ({spamc_txt}) holds maildrop's output pipe open",
                f"Postfix time limit ({ctl:g} s), which bounces", fixes.DELIVER))
        else:
            worst = spamc_s  # maildrop's exit 75 reaches Postfix when spamc lets go
            return _through(s, ModeResult(mode, spamc_s, spamd_s, worst, fires, "deferred",
                                          why, violations), "timeout")
    return ModeResult(mode, spamc_s, spamd_s, worst, fires, outcome, why, violations)


EVENT_WORDS = {"timeout": "maildrop's EX_TEMPFAIL (75, \"Timeout quota exceeded.\")",
               "filter-failed": "maildrop's EX_TEMPFAIL (75, \"Unable to filter "
                                "message.\")",
               "delivered": "maildrop's delivery (0)"}


def _through(s: Setup, r: ModeResult, event: str) -> ModeResult:
    """The row once the wrapper has turned maildrop's ending ``event`` into Postfix's
    verdict: its measured (or assumed) fate, a violation when it bounces a temporary
    failure, loses or duplicates mail, and how the wrapper's behaviour is known."""
    fate = s.fate(event)
    if s.wrapper_assumption and (event != "delivered" or fate != "delivered"):
        r.assumptions.append(s.wrapper_assumption)
    if fate == "delivered":
        return r
    if event != "delivered" and fate == "deferred":
        r.outcome = "deferred"
        return r
    exit_of = s.wrapper_exits.get(event, "")
    how = f"the wrapper's {exit_of} (measured)" if exit_of else "the wrapper"
    meaning = {"lost": "Postfix counts it delivered: lost",
               "duplicated": "Postfix tries again: delivered twice",
               "bounced": "Postfix bounces it",
               "deferred": "Postfix defers it"}.get(fate, fate)
    r.outcome = fate
    r.violations.append(Violation(EVENT_WORDS[event], f"{how}: {meaning}", fixes.WRAPPER))
    return r


def _failed_scan(s: Setup, mode: str, spamc_s: float, spamd_s: float | None, fires: str,
                 why: str) -> ModeResult:
    """spamc gave up (or spamd failed the message) before maildrop's timeout. With its
    safe fallback spamc prints the message unchanged and exits 0: delivered unscanned.
    With ``-x`` it prints nothing and exits non-zero (69, 70, 74; 75 with -X): maildrop's
    xfilter fails, and maildrop exits 75 ("Unable to filter message.") unless the xfilter
    sits in an ``exception { }`` block, which catches it and delivers unscanned. maildrop
    looks only at zero or not, so -X changes nothing under maildrop."""
    if s.spamc.safe_fallback or s.xfilter_in_exception:
        if not s.spamc.safe_fallback:
            why += "; -x: the xfilter fails inside exception { }, which maildrop catches"
        return _through(s, ModeResult(mode, spamc_s, spamd_s, spamc_s, fires,
                                      "delivered unscanned", why), "delivered")
    why += ("; -x: spamc prints nothing and exits non-zero, maildrop exits 75 'Unable to "
            "filter message.'")
    return _through(s, ModeResult(mode, spamc_s, spamd_s, spamc_s, fires, "deferred",
                                  why), "filter-failed")


def _fix(s: Setup, mode: str) -> str:
    """The smallest change that brings spamc back under maildrop's timeout, with a stated
    margin below it, in the words of the one catalog of fixes (``spamdrill.fixes``) the
    logs' diagnosis shows too."""
    f, m = s.spamc, s.maildrop_timeout
    margin = fixes.fix_margin_s(m)
    room = m - margin
    below = f"; {margin:g} s below maildrop's {m:g} s"
    # spamdrill-spamc's whole check, with its exit, a margin below maildrop's timeout
    deadline_max = max(1, math.floor(room - SPAMC_DEADLINE_MARGIN_S))
    if s.spamc_deadline is not None:  # it bounds every mode already: a shorter deadline
        return fixes.fix(mode, fixes.SPAMC_DEADLINE, deadline_max=deadline_max) \
            + f" ({below[2:]})"
    if mode == "spamd-refused":
        sleeps = spamc_model.connect_failures(f, refused=True)[1]
        sleep_max = math.floor(room / max(1, sleeps))
        return fixes.fix(mode, sleep_max=sleep_max) + f" ({below[2:]})"
    if mode in ("spamd-accept-queue-full", "spamd-rejected"):
        calls, sleeps = spamc_model.connect_failures(f, refused=False)
        n_max = math.floor((room - sleeps * f.retry_sleep) / calls)
        firewall = fixes.FIREWALL_RESET if mode == "spamd-rejected" else ""
        if n_max >= 1:
            return fixes.fix(mode, n_max=n_max, t=f"{f.timeout:g}") + f" ({below[2:]})"
        return fixes.fix(mode, fixes.CONNECT_RETRIES, firewall=firewall)
    if mode == "net-slow" and f.timeout:
        return fixes.fix(mode, t_max=max(1, math.floor(room / 2))) + f" ({below[2:]})"
    if mode == "spamd-slow-drip" or not f.timeout:
        return fixes.fix(mode, fixes.UNBOUNDED, deadline_max=deadline_max) + f" ({below[2:]})"
    t_max = math.floor((room - (f.filter_retries - 1) * f.filter_retry_sleep)
                       / f.filter_retries)
    return fixes.fix(mode, fixes.SPAMC_T, t_max=max(1, t_max)) + f" ({below[2:]})"
