"""Faults of rspamd itself: stopped (idle, or with scans in flight), the lab's slow rule
made slow, the lab DNS dead for rspamd's own lookups. Its Redis's faults are in ``redis``;
the verbs both act through, and rspamd's log window, in ``rspamd_control``.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec, Stopped, until
from spamdrill.drills.nemesis.rspamd_control import TASK_TIMEOUT, LogWindow, rspamd_control
from spamdrill.drills.timing import Scale
from spamdrill.evidence import NOT_OCCURRED, FaultReport
from spamdrill.lab.rspamd import SLOW_RULE_NAME
from spamdrill.vocab import Mode

# a lookup through rspamd's own resolver that gave up, as the Lua modules log it (asn.lua
# "error querying dns ...: query timed out", rbl.lua "error looking up ...: query timed
# out"; rdns's "query timed out" after dns.timeout x dns.retransmits)
DNS_TIMED_OUT = re.compile(r"[^\n]*(?:error querying dns|error looking up)[^\n]*"
                           r"query timed out[^\n]*")


class RspamdDownSpec(FaultSpec, tag="rspamd-down", frozen=True):
    """rspamd stopped (SIGTERM, as an init script does) at ``at``; started again on lift
    (not awaited: a drill sends mail while it comes up)."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_REFUSED

    def build(self, scale: Scale) -> Fault:
        return RspamdDown()


class RspamdDown(Stopped):
    name = "rspamd-down"
    server = "rspamd"

    def stop(self, ctl: LabControl) -> Undo:
        return rspamd_control(ctl).stop("rspamd")

    def refuses(self, ctl: LabControl) -> bool:
        rc = rspamd_control(ctl)
        return not rc.accepts(rc.rspamd_endpoint())

    def start(self, ctl: LabControl) -> None:
        rspamd_control(ctl).start("rspamd")


# rspamd 3.4's shutdown (src/libserver/worker_util.c, rspamd_worker_term_handler; the
# scan's own line, src/libserver/task.c, rspamd_task_write_log)
WORKER_TERMINATING = re.compile(r"#(\d+)\(normal\)[^\n]*rspamd_worker_term_handler: "
                                r"terminating after receiving signal")
SCAN_LOGGED = re.compile(r"#(\d+)\(normal\)[^\n]*rspamd_task_write_log: id: <([^>\n]*)>")


SCAN_STARTED = re.compile(r"#(\d+)\(normal\)[^\n]*rspamd_message_parse: loaded message")


def in_flight(text: str) -> int:
    """Scans a normal worker has begun (``loaded message``) and not yet answered
    (``rspamd_task_write_log``), by rspamd's log (sans-IO)."""
    held: dict[str, int] = {}
    for line in text.splitlines():
        if (m := SCAN_STARTED.search(line)) is not None:
            held[m.group(1)] = held.get(m.group(1), 0) + 1
        elif (s := SCAN_LOGGED.search(line)) is not None and held.get(s.group(1)):
            held[s.group(1)] -= 1
    return sum(held.values())


def held_at_term(text: str, start: int = 0) -> int:
    """Scans begun and not answered when the first normal worker logged its SIGTERM (at or
    after ``start``), by rspamd's whole log (sans-IO); 0 if none logged it."""
    term = WORKER_TERMINATING.search(text, start)
    return in_flight(text[:term.start()]) if term is not None else 0


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
    in flight (from ``at``, the stop waits up to 5 s for rspamd's log to show one begun
    and not answered); started again on lift. rspamd's main process waits for its workers up to
    max(SOFT_SHUTDOWN_TIME 10 s, 2 x task_timeout) (src/rspamd.c, rspamd_term_handler;
    rspamd.h), each worker stops accepting and finishes the connections it holds
    (worker_util.c, rspamd_worker_term_handler); the lab sends SIGKILL after its own 10 s.
    Evidence: the port refused once rspamd was gone, and a scan a worker held at the
    SIGTERM finished after it (rspamd's log)."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_STOPPING

    def build(self, scale: Scale) -> Fault:
        return RspamdStopping()


class RspamdStopping(RspamdDown):
    """``rspamd-down`` with rspamd's log from the SIGTERM until rspamd is gone."""

    name = "rspamd-stopping"
    # seconds the stop may wait, from its moment, for a scan to be in flight: a message a
    # second whose scan takes one leaves gaps on a loaded machine (SMTP, the milter)
    IN_FLIGHT_WITHIN = 5.0

    def __init__(self) -> None:
        super().__init__()
        self._window = LogWindow()

    def stop(self, ctl: LabControl) -> Undo:
        rc = rspamd_control(ctl)
        if rc.rspamd_log():  # a log to read: stopped with a scan in flight, if one comes
            until(lambda: in_flight(rc.rspamd_log()) > 0, self.IN_FLIGHT_WITHIN)
        self._window.open(rc)
        return super().stop(ctl)  # returns once rspamd is gone (or SIGKILLed)

    def inject(self, ctl: LabControl) -> str:
        super().inject(ctl)
        self._window.close(rspamd_control(ctl))
        return "rspamd told to stop (SIGTERM) with scans in flight"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if not self._refused:
            return super().evidence(ctl)
        log = rspamd_control(ctl).rspamd_log()
        done = finished_after_term(self._window.of(log))
        if done:
            return self.report(True, f"rspamd stopped; {len(done)} scan(s) in flight at the "
                               f"SIGTERM finished before it exited (first: "
                               f"<{done[0][:80]}>), then its port refused connections")
        # behind the milter the proxy exits at once and its connections to the normal
        # workers go with it: a scan held at the SIGTERM may end unlogged
        held = held_at_term(log, self._window.start or 0)
        if held:
            return self.report(True, f"rspamd stopped with {held} scan(s) in flight at the "
                               "SIGTERM (none answered after it), then its port refused "
                               "connections")
        return self.report(False, NOT_OCCURRED + "rspamd stopped, but no scan was in "
                           "flight at its SIGTERM")


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
        self._window = LogWindow()
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

