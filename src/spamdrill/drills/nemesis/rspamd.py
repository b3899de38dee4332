"""Faults of rspamd and its Redis: rspamd stopped (idle, or with scans in flight), Redis
stopped, Redis frozen (SIGSTOP), the link to Redis dropped or slow (the lab's TCP fault
proxy between them), the lab's slow rule made slow, the lab DNS dead for rspamd's own
lookups.

They act through ``RspamdControl``, a narrow interface of their own beside ``LabControl``
(``rspamd_control`` finds it on a running lab, or a test's stand-in on its ``rspamd``
attribute), so rspamd's verbs live with rspamd's faults. Each is journaled before it takes
effect (``lab.faults``), so a ``lab down`` after a SIGKILLed drill starts rspamd or Redis
again, or wakes a frozen Redis.

A Redis fault proves more than that Redis went away: it proves rspamd met it, by what
rspamd logged between the injection and the lift (its ``rspamd_redis_connected`` /
``rspamd_redis_timeout`` lines and the Lua modules' Redis errors, ``lua_redis.lua``).
Redis backs Bayes, history, reputation and ratelimit in Debian's configuration
(https://rspamd.com/doc/configuration/redis.html); with no message scanned while it was
gone, there is no such line, and the fault has no evidence.

The link faults shape the lab's proxy between rspamd and Redis (``[lab.rspamd] redis_proxy
= true``, the means ``db-slow-link`` uses between spamd and MariaDB): its toxics, its
counters as evidence that rspamd's own Redis traffic went through them. What decides is
rspamd's Redis ``timeout``: 1 s unless ``redis.conf`` sets one (``REDIS_DEFAULT_TIMEOUT
1.0`` in src/lua/lua_redis.c, ``timeout = 1.0`` in lualib/lua_redis.lua;
https://rspamd.com/doc/configuration/redis.html), per request, connect included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol

import msgspec

from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec, until
from spamdrill.drills.recording import RecordingLab
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import NOT_OCCURRED, FaultReport
from spamdrill.lab.proxy import Counters
from spamdrill.lab.rspamd import SLOW_RULE_NAME
from spamdrill.lab.state import Endpoint, LabState
from spamdrill.lab.toxics import Shape, mode_shape
from spamdrill.vocab import Mode

Name = Literal["rspamd", "redis"]
# what rspamd 3.4 logs when a Redis request fails (src/libserver/redis_pool.cxx,
# src/lua/lua_redis.c, lualib/lua_redis.lua, plugins' "got error ... when ...")
REDIS_TROUBLE = re.compile(
    r"rspamd_redis_connected: error getting reply from redis server[^\n]*|"
    r"rspamd_redis_timeout: connection to redis server[^\n]*timed out|"
    r"got error [^\n]*(?:when|while)[^\n]*|"
    r"cannot (?:connect|get) (?:to )?redis[^\n]*", re.I)
# rspamd's task timeout firing (src/libserver/task.c, rspamd_task_timeout)
TASK_TIMEOUT = re.compile(r"rspamd_task_timeout: processing of task time out[^\n]*")
# a lookup through rspamd's own resolver that gave up, as the Lua modules log it (asn.lua
# "error querying dns ...: query timed out", rbl.lua "error looking up ...: query timed
# out"; rdns's "query timed out" after dns.timeout x dns.retransmits)
DNS_TIMED_OUT = re.compile(r"[^\n]*(?:error querying dns|error looking up)[^\n]*"
                           r"query timed out[^\n]*")


class RspamdControl(Protocol):
    """Every verb an rspamd fault may use."""

    def rspamd_endpoint(self) -> Endpoint: ...
    def redis_endpoint(self) -> Endpoint: ...
    def stop(self, name: Name) -> Undo: ...  # journaled; SIGTERM, as an init script does
    def start(self, name: Name) -> None: ...  # not awaited
    def pause_redis(self) -> Undo: ...  # journaled SIGSTOP
    def redis_state(self) -> str: ...  # the kernel's state letter; "" when gone
    def rspamd_log(self) -> str: ...
    def accepts(self, ep: Endpoint) -> bool: ...
    def shape_redis_link(self, shape: Shape) -> Undo: ...  # journaled; the lab's proxy
    def redis_link_counters(self) -> Counters | None: ...  # None: none to read


class RealRspamd:
    """``RspamdControl`` on a running lab with rspamd."""

    def __init__(self, state: LabState) -> None:
        if state.rspamd is None:
            raise SpamdrillError("this fault needs the lab's rspamd",
                                 "set [lab.rspamd] enabled = true in the scenario")
        self.state = state
        self.ref = state.rspamd

    def rspamd_endpoint(self) -> Endpoint:
        return self.ref.normal

    def redis_endpoint(self) -> Endpoint:
        return self.ref.redis

    def stop(self, name: Name) -> Undo:
        from spamdrill.lab import faults as lab_faults
        from spamdrill.lab import lab as lab_ops

        undo = lab_faults.stopped(self.state.journal, name)
        lab_ops.stop_named(self.state, name)
        return undo

    def start(self, name: Name) -> None:
        from spamdrill.lab import lab as lab_ops

        lab_ops.start_named(self.state, name, wait=False)

    def pause_redis(self) -> Undo:
        from spamdrill.lab import faults as lab_faults

        ref = self.state.pids["redis"]
        return lab_faults.pause(self.state.journal, ref.pid, ref.ticks)

    def redis_state(self) -> str:
        from spamdrill.lab.procs import proc_state

        ref = self.state.pids.get("redis")
        return proc_state(ref.pid, ref.ticks) if ref is not None else ""

    def rspamd_log(self) -> str:
        from spamdrill.lab.rspamd import Paths

        try:
            return Paths(Path(self.state.run_dir)).log.read_text(errors="replace")
        except OSError:
            return ""

    def accepts(self, ep: Endpoint) -> bool:
        from spamdrill.lab.net import tcp_open

        return tcp_open(ep.host, ep.port)

    def shape_redis_link(self, shape: Shape) -> Undo:
        from spamdrill.lab import faults as lab_faults

        if self.ref.redis_proxy is None:
            raise SpamdrillError("this fault needs the proxy between rspamd and Redis",
                                 "set [lab.rspamd] redis_proxy = true in the scenario")
        return lab_faults.proxy_shape(self.state.journal, shape, "rspamd-redis")

    def redis_link_counters(self) -> Counters | None:
        from spamdrill.lab.proxy import read_counters
        from spamdrill.lab.rspamd import Paths

        if self.ref.redis_proxy is None:
            return None
        return read_counters(Paths(Path(self.state.run_dir)).redis_proxy_shape)


@dataclass
class _Recorded:
    calls: list[str]
    what: str
    healed: bool = False

    def heal(self) -> None:
        if not self.healed:
            self.calls.append(f"heal {self.what}")
            self.healed = True


class RecordingRspamd:
    """``RspamdControl`` for the unit tier, sharing a ``RecordingLab``'s calls and
    answers (``accepts``, ``redis_state``, ``redis_link_counters``; ``rspamd_log``: what
    rspamd's log gains once rspamd or Redis is stopped, Redis frozen, its link shaped,
    or the lab DNS switched)."""

    def __init__(self, lab: RecordingLab) -> None:
        self.calls, self.answers = lab.calls, lab.answers

    def _undo(self, what: str) -> Undo:
        self.calls.append(what)
        return _Recorded(self.calls, what)

    def rspamd_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 11333)

    def redis_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 6379)

    def stop(self, name: Name) -> Undo:
        return self._undo(f"stop {name}")

    def start(self, name: Name) -> None:
        self.calls.append(f"start {name}")

    def pause_redis(self) -> Undo:
        return self._undo("pause redis")

    def redis_state(self) -> str:
        state = self.answers.redis_state
        return "T" if state is None else state

    def rspamd_log(self) -> str:
        met = any(c in ("stop redis", "pause redis", "stop rspamd")
                  or c.startswith(("shape redis link", "dns ")) for c in self.calls)
        return self.answers.rspamd_log if met else ""

    def accepts(self, ep: Endpoint) -> bool:
        accepts = self.answers.accepts
        return False if accepts is None else accepts

    def shape_redis_link(self, shape: Shape) -> Undo:
        return self._undo(f"shape redis link {shape.describe()}")

    def redis_link_counters(self) -> Counters | None:
        """Zero until the link is shaped, then the answer (the proxy counts from its
        start: a fault judges what it added)."""
        shaped = any(c.startswith("shape redis link") for c in self.calls)
        return self.answers.redis_link_counters if shaped else Counters()


def rspamd_control(ctl: object) -> RspamdControl:
    """The rspamd verbs for ``ctl``: the running lab's (``RealLab.state``), or the
    recording stand-in's of the unit tier."""
    if isinstance(ctl, RecordingLab):
        return RecordingRspamd(ctl)
    state = getattr(ctl, "state", None)
    if isinstance(state, LabState):
        return RealRspamd(state)
    raise SpamdrillError("this fault needs the lab's rspamd")


class _Window:
    """rspamd's log between an injection and its lift (offsets into the file)."""

    def __init__(self) -> None:
        self.start: int | None = None
        self.end: int | None = None

    def open(self, rc: RspamdControl) -> None:
        self.start, self.end = len(rc.rspamd_log()), None

    def close(self, rc: RspamdControl) -> None:
        if self.start is not None and self.end is None:
            self.end = len(rc.rspamd_log())

    def text(self, rc: RspamdControl) -> str:
        if self.start is None:
            return ""
        log = rc.rspamd_log()
        return log[self.start:self.end if self.end is not None else len(log)]


class RspamdDownSpec(FaultSpec, tag="rspamd-down", frozen=True):
    """rspamd stopped (SIGTERM, as an init script does) at ``at``; started again on lift
    (not awaited: a drill sends mail while it comes up)."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_REFUSED

    def build(self, scale: Scale) -> Fault:
        return RspamdDown()


class RspamdDown(Fault):
    name = "rspamd-down"

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._refused = False
        self._back = False

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._undo = rc.stop("rspamd")
        self._refused = not rc.accepts(rc.rspamd_endpoint())
        return "rspamd stopped (SIGTERM)"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not stopped"
        rc = rspamd_control(ctl)
        self._undo.heal()
        self._undo = None
        rc.start("rspamd")
        self._back = True
        return "rspamd starting again"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if not self._refused:
            return self.report(False, NOT_OCCURRED + (
                "rspamd's port still accepted connections after the stop"
                if self._undo is not None or self._back else "rspamd was never stopped"))
        return self.report(True, "rspamd's port refused connections once it was stopped"
                           + ("; started again when the fault was lifted" if self._back
                              else ""))


# rspamd 3.4's shutdown (src/libserver/worker_util.c, rspamd_worker_term_handler; the
# scan's own line, src/libserver/task.c, rspamd_task_write_log)
WORKER_TERMINATING = re.compile(r"#(\d+)\(normal\)[^\n]*rspamd_worker_term_handler: "
                                r"terminating after receiving signal")
SCAN_LOGGED = re.compile(r"#(\d+)\(normal\)[^\n]*rspamd_task_write_log: id: <([^>\n]*)>")


def finished_after_term(text: str) -> list[str]:
    """Message-IDs a normal worker answered after it logged its SIGTERM: the scans it held
    when it was told to stop, and finished (sans-IO, rspamd's log)."""
    told: set[str] = set()
    done: list[str] = []
    for line in text.splitlines():
        if (m := WORKER_TERMINATING.search(line)) is not None:
            told.add(m.group(1))
        elif (s := SCAN_LOGGED.search(line)) is not None and s.group(1) in told:
            done.append(s.group(2))
    return done


class RspamdStoppingSpec(FaultSpec, tag="rspamd-stopping", frozen=True):
    """rspamd told to stop (SIGTERM to its whole process group, as systemd's default
    KillMode=control-group does: every worker gets it at once) at ``at``, while scans are
    in flight; started again on lift. rspamd's main process waits for its workers up to
    max(SOFT_SHUTDOWN_TIME 10 s, 2 x task_timeout) (src/rspamd.c, rspamd_term_handler;
    rspamd.h), each worker stops accepting and finishes the connections it holds
    (worker_util.c, rspamd_worker_term_handler); the lab sends SIGKILL after its own 10 s.
    Evidence: the port refused once rspamd was gone, and a scan a worker held at the
    SIGTERM finished after it (rspamd's log)."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_STOPPING

    def build(self, scale: Scale) -> Fault:
        return RspamdStopping()


class RspamdStopping(Fault):
    name = "rspamd-stopping"

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._refused = False
        self._window = _Window()

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._window.open(rc)
        self._undo = rc.stop("rspamd")  # returns once rspamd is gone (or SIGKILLed)
        self._refused = not rc.accepts(rc.rspamd_endpoint())
        self._window.close(rc)
        return "rspamd told to stop (SIGTERM) with scans in flight"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not stopped"
        rc = rspamd_control(ctl)
        self._window.close(rc)
        self._undo.heal()
        self._undo = None
        rc.start("rspamd")
        return "rspamd starting again"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if not self._refused:
            return self.report(False, NOT_OCCURRED + "rspamd's port still accepted "
                               "connections after the stop")
        done = finished_after_term(self._window.text(rspamd_control(ctl)))
        if not done:
            return self.report(False, NOT_OCCURRED + "rspamd stopped, but no worker "
                               "finished a scan after its SIGTERM: none was in flight")
        return self.report(True, f"rspamd stopped; {len(done)} scan(s) in flight at the "
                           f"SIGTERM finished before it exited (first: <{done[0][:80]}>), "
                           "then its port refused connections")


class RedisDownSpec(FaultSpec, tag="redis-down", frozen=True):
    """rspamd's Redis stopped (SIGTERM) at ``at``; started again (empty) on lift."""

    def failure_mode(self) -> Mode:
        return Mode.REDIS_DOWN

    def build(self, scale: Scale) -> Fault:
        return RedisDown()


class RedisDown(Fault):
    name = "redis-down"

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._refused = False
        self._window = _Window()

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._window.open(rc)
        self._undo = rc.stop("redis")
        self._refused = not rc.accepts(rc.redis_endpoint())
        return "Redis stopped (SIGTERM)"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not stopped"
        rc = rspamd_control(ctl)
        self._window.close(rc)
        self._undo.heal()
        self._undo = None
        rc.start("redis")
        return "Redis starting again (empty: it keeps nothing)"

    def evidence(self, ctl: LabControl) -> FaultReport:
        rc = rspamd_control(ctl)
        if not self._refused:
            return self.report(False, NOT_OCCURRED + "Redis's port still accepted "
                               "connections after the stop")
        said = REDIS_TROUBLE.findall(self._window.text(rc))
        if not said:
            return self.report(False, NOT_OCCURRED + "Redis refused connections, but "
                               "rspamd logged no Redis error while it was down (no scan "
                               "met it)")
        return self.report(True, f"Redis refused connections; rspamd logged {len(said)} "
                           f"Redis error(s) while it was down, first: {said[0][:120]}")


class RedisFrozenSpec(FaultSpec, tag="redis-frozen", frozen=True):
    """rspamd's Redis frozen (SIGSTOP: its port still accepts in the kernel, nothing
    answers) at ``at``; SIGCONT on lift."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_TASK_TIMEOUT

    def build(self, scale: Scale) -> Fault:
        return RedisFrozen()


class RedisFrozen(Fault):
    name = "redis-frozen"
    STOPPED_WITHIN = 2.0  # s for the kernel to show it stopped (T)

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._stopped = False
        self._window = _Window()

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._window.open(rc)
        self._undo = rc.pause_redis()
        self._stopped = until(lambda: rc.redis_state() == "T", self.STOPPED_WITHIN)
        return "Redis frozen (SIGSTOP)"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not frozen"
        self._window.close(rspamd_control(ctl))
        self._undo.heal()
        self._undo = None
        return "Redis thawed (SIGCONT)"

    def evidence(self, ctl: LabControl) -> FaultReport:
        rc = rspamd_control(ctl)
        if not self._stopped:
            return self.report(False, NOT_OCCURRED + "Redis never showed as stopped (T)")
        text = self._window.text(rc)
        said, timeouts = REDIS_TROUBLE.findall(text), TASK_TIMEOUT.findall(text)
        if not said or not timeouts:
            return self.report(False, NOT_OCCURRED + "Redis was frozen, but rspamd logged "
                               f"{len(said)} Redis error(s) and {len(timeouts)} task "
                               "timeout(s) while it was: no scan was held by it")
        return self.report(True, f"Redis frozen (state T); rspamd logged {len(said)} Redis "
                           f"error(s) and {len(timeouts)} task timeout(s) while it was")


class RspamdSlowRuleSpec(FaultSpec, tag="rspamd-slow-rule", frozen=True):
    """The lab's slow rule (``[lab.rspamd] slow_rule = true``: every scan asks the lab DNS
    over TCP and waits, ``lab.rspamd.SLOW_RULE``) made slow: the lab DNS answers that one
    name only after ``delay`` production seconds (longer than rspamd's ``task_timeout``,
    8 s in Debian's options.inc, so the task timeout decides; the rule's own timeout is
    longer still). rspamd then answers what it has, a partial verdict, or soft reject
    with ``soft_reject_on_timeout`` (https://rspamd.com/doc/configuration/options.html).
    The worker is not blocked: the rule waits on its event loop (rspamd_tcp)."""

    delay: Annotated[float, msgspec.Meta(gt=0)] = 60.0

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_SLOW_RULE

    def build(self, scale: Scale) -> Fault:
        return RspamdSlowRule(scale.seconds(self.delay))


class _DnsForRspamd(Fault):
    """A lab DNS rule, with rspamd's log between its injection and its lift: the lab
    DNS's own log says it applied the rule to some query, rspamd's says a scan met it."""

    def __init__(self, rules: list[tuple[str, str, float]]) -> None:
        self.rules = rules
        self._undo: Undo | None = None
        self._mark = 0
        self._window = _Window()
        self.actions: dict[str, int] = {}

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._window.open(rc)
        self._mark = ctl.dns_mark()
        self._undo = ctl.dns_rules(self.rules)
        return ", ".join(f"lab DNS {n}: {m}" + (f" {d:g} s" if m == "delay" else "")
                         for n, m, d in self.rules)

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "no rules"
        self._window.close(rspamd_control(ctl))
        self.actions = ctl.dns_actions_since(self._mark)
        self._undo.heal()
        self._undo = None
        return "the lab DNS answers again"

    def applied(self, action: str) -> int:
        """Queries the lab DNS logged under ``action`` while the rule held ("delay 60s":
        its first word)."""
        return sum(n for a, n in self.actions.items() if a.split()[0] == action)


class RspamdSlowRule(_DnsForRspamd):
    name = "rspamd-slow-rule"

    def __init__(self, delay: float) -> None:
        super().__init__([(SLOW_RULE_NAME, "delay", delay)])

    def evidence(self, ctl: LabControl) -> FaultReport:
        delayed = self.applied("delay")
        timeouts = TASK_TIMEOUT.findall(self._window.text(rspamd_control(ctl)))
        if not delayed or not timeouts:
            return self.report(False, NOT_OCCURRED + f"the lab DNS delayed {delayed} "
                               f"query(ies) for {SLOW_RULE_NAME} and rspamd logged "
                               f"{len(timeouts)} task timeout(s) while the rule held: no "
                               "scan was held by the slow rule (is [lab.rspamd] slow_rule "
                               "= true?)")
        return self.report(True, f"the lab DNS delayed {delayed} slow-rule query(ies); "
                           f"rspamd logged {len(timeouts)} task timeout(s) while it did, "
                           f"first: {timeouts[0][:100]}")


class RspamdDnsDeadSpec(FaultSpec, tag="rspamd-dns-dead", frozen=True):
    """The lab DNS, rspamd's only nameserver (``options.dns.nameserver``, set by the
    lab), drops every query, as a dead resolver does: each lookup of rspamd's resolver
    gives up after ``dns.timeout`` x ``dns.retransmits`` (1 s x 5 in Debian's
    options.inc), and a scan asks in three rounds, each after the one before: the ASN
    prefilter (plugins/asn.lua), the RBL module's allowlists, then its blocklists
    (``RBL_CALLBACK`` depends on ``RBL_CALLBACK_WHITE``: plugins/rbl.lua); so a scan's
    lookups take three of those in turn, unless ``task_timeout`` ends it first."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_DNS_DEAD

    def build(self, scale: Scale) -> Fault:
        return RspamdDnsDead()


class RspamdDnsDead(_DnsForRspamd):
    name = "rspamd-dns-dead"

    def __init__(self) -> None:
        super().__init__([("*", "drop", 0.0)])

    def evidence(self, ctl: LabControl) -> FaultReport:
        dropped = self.applied("drop")
        said = DNS_TIMED_OUT.findall(self._window.text(rspamd_control(ctl)))
        if not dropped or not said:
            return self.report(False, NOT_OCCURRED + f"the lab DNS dropped {dropped} "
                               f"query(ies) and rspamd logged {len(said)} lookup(s) timed "
                               "out while it was dead: no scan of rspamd's met it")
        return self.report(True, f"the lab DNS dropped {dropped} query(ies); rspamd logged "
                           f"{len(said)} lookup(s) timed out while it did, first: "
                           f"{said[0].strip()[:120]}")


class _RedisLink(Fault):
    """The proxy between rspamd and Redis shaped from inject to lift. Evidence: chunks of
    rspamd's Redis traffic the toxics handled while it held (the proxy's counters, read at
    both ends: it counts from its start), and what rspamd logged about Redis meanwhile."""

    name = "redis-link"
    needs_rspamd_errors = False  # the Redis errors rspamd logged are part of the evidence

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self._undo: Undo | None = None
        self._before: Counters | None = None
        self.shaped: int | None = None
        self._window = _Window()

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._before = rc.redis_link_counters() or Counters()
        self._window.open(rc)
        self._undo = rc.shape_redis_link(self.shape)
        return f"the link from rspamd to Redis: {self.shape.describe()}"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not shaped"
        rc = rspamd_control(ctl)
        after = rc.redis_link_counters()
        before = self._before or Counters()
        self.shaped = None if after is None else after.shaped_chunks - before.shaped_chunks
        self._window.close(rc)
        self._undo.heal()
        self._undo = None
        return "the link from rspamd to Redis passes traffic untouched"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if self.shaped is None:
            return self.report(False, NOT_OCCURRED + "the proxy's counters could not be read"
                               if self._before is not None else "the link was never shaped")
        said = REDIS_TROUBLE.findall(self._window.text(rspamd_control(ctl)))
        logged = (f"rspamd logged {len(said)} Redis error(s) meanwhile"
                  + (f", first: {said[0][:120]}" if said else ""))
        if self.shaped <= 0:
            return self.report(False, NOT_OCCURRED + "no Redis traffic of rspamd's went "
                               f"through the shaped link (no scan met it); {logged}")
        if self.needs_rspamd_errors and not said:
            return self.report(False, NOT_OCCURRED + f"{self.shaped} chunk(s) of rspamd's "
                               "Redis traffic shaped, but rspamd logged no Redis error: "
                               "it never waited out its Redis timeout")
        return self.report(True, f"{self.shaped} chunk(s) of rspamd's Redis traffic "
                           f"shaped; {logged}")


class RedisDroppedSpec(FaultSpec, tag="redis-dropped", frozen=True):
    """Everything rspamd sends Redis, and everything Redis sends back, silently dropped
    from ``at`` (the proxy's blackhole: connections stay open and nothing arrives, as when
    a firewall starts dropping an established flow); passed again on lift. rspamd waits
    its Redis timeout on each request."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_TASK_TIMEOUT

    def build(self, scale: Scale) -> Fault:
        return RedisDropped(mode_shape("blackhole"))


class RedisDropped(_RedisLink):
    name = "redis-dropped"
    needs_rspamd_errors = True


class RedisSlowSpec(FaultSpec, tag="redis-slow", frozen=True):
    """Each chunk between rspamd and Redis ``latency`` seconds late each way, give or take
    ``jitter`` (the proxy's latency toxic, as ``db-slow-link``), in production seconds.
    Below rspamd's Redis timeout every request succeeds, late; above it each one times
    out."""

    latency: Annotated[float, msgspec.Meta(gt=0)]
    jitter: Annotated[float, msgspec.Meta(ge=0)] = 0.0

    def failure_mode(self) -> Mode:
        return Mode.REDIS_SLOW

    def build(self, scale: Scale) -> Fault:
        return RedisSlow(mode_shape("latency", latency=scale.seconds(self.latency),
                                    jitter=scale.seconds(self.jitter)))


class RedisSlow(_RedisLink):
    name = "redis-slow"
