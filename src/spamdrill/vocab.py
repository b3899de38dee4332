"""One vocabulary for budget rows, drill findings, end-to-end outcomes and the log
diagnosis, sans-IO: a postmaster can hold a prediction, a drill and last night's mail log
side by side because all four use these words, defined here once.

- ``Outcome``: what one spamc run gave back (scanned as spam or ham, or not).
- ``Fate``: what happened to one message, as its sender and recipient see it.
- ``Mode``: why: the failure modes, each with the layer whose limit it meets.
- ``Layer``: against what: the component whose limit fired first.
- ``Finding``: what the system under test does in a failure mode, against its budgets.
- ``Verdict``: whether a drill's hypothesis held (a separate question from ``Finding``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What one spamc run gave back: its message scanned (``spam``, ``ham``), returned
    unscanned (spamc failed open), an error status, or nothing before the load's bound;
    end to end, what Postfix made of a message it did not deliver."""

    SPAM = "spam"
    HAM = "ham"
    UNSCANNED = "unscanned"
    ERROR = "error"
    LOST = "lost"
    # end to end, a message Postfix did not deliver is named by its fate
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DUPLICATED = "duplicated"

    @property
    def scanned(self) -> bool:
        return self in (Outcome.SPAM, Outcome.HAM)


# what spamc itself can give back: every summary counts these, in this order, zeros too
OUTCOMES = (Outcome.SPAM, Outcome.HAM, Outcome.UNSCANNED, Outcome.ERROR, Outcome.LOST)


class Fate(StrEnum):
    """What became of a message."""

    DELIVERED = "delivered"  # in the recipient's mailbox, scanned
    DELIVERED_UNSCANNED = "delivered unscanned"  # in the mailbox, spamc failed open
    DEFERRED = "deferred"  # still queued: Postfix will try again
    BOUNCED = "bounced"  # returned to the sender (a DSN)
    LOST = "lost"  # accepted, then found nowhere
    DUPLICATED = "duplicated"  # delivered more than once

    @property
    def finding(self) -> Finding:
        return _FATE_FINDING[self]


class Layer(StrEnum):
    """The components, inside out; each has a limit that can fire first."""

    KERNEL = "kernel"
    DNS = "dns"
    DATABASE = "database"
    REDIS = "redis"  # rspamd's Redis (Bayes, history, ratelimit, greylisting)
    SPAMD = "spamd"
    RSPAMD = "rspamd"  # its normal workers and task_timeout; rspamc's -t is SPAMC's
    SPAMC = "spamc"
    MAILDROP = "maildrop"
    WRAPPER = "wrapper"
    POSTFIX = "postfix"


class Finding(StrEnum):
    """What the system does in one failure mode, judged against its budgets. Ordered from
    harmless to worst: ``worst()`` picks the one a report leads with."""

    WITHIN = "within"
    DELIVERS_UNSCANNED = "delivers unscanned"
    DEFERS = "defers"
    BOUNCES = "bounces"
    DUPLICATES = "duplicates mail"
    LOSES_MAIL = "loses mail"

    @property
    def crosses_budget(self) -> bool:
        """A finding that makes the system unsafe: mail is bounced, lost or duplicated.
        Delivering unscanned and deferring are what a fail-open filter and a retrying MTA
        are for."""
        return self in (Finding.BOUNCES, Finding.DUPLICATES, Finding.LOSES_MAIL)

    @staticmethod
    def worst(findings: list[Finding]) -> Finding:
        order = list(Finding)
        return max(findings, key=order.index, default=Finding.WITHIN)


_FATE_FINDING = {
    Fate.DELIVERED: Finding.WITHIN,
    Fate.DELIVERED_UNSCANNED: Finding.DELIVERS_UNSCANNED,
    Fate.DEFERRED: Finding.DEFERS,
    Fate.BOUNCED: Finding.BOUNCES,
    Fate.LOST: Finding.LOSES_MAIL,
    Fate.DUPLICATED: Finding.DUPLICATES,
}


class Verdict(StrEnum):
    """Whether a drill's hypothesis held. ``error``: the drill could not tell (its fault
    left no evidence of taking effect, a check crashed, the lab failed)."""

    CONFIRMED = "confirmed"
    REFUTED = "refuted"
    ERROR = "error"


@dataclass(frozen=True)
class ModeInfo:
    layer: Layer
    means: str


class Mode(StrEnum):
    """The failure modes: the budget models them, the drills inject them, the log
    diagnosis recognises them."""

    SPAMD_REFUSED = "spamd-refused"
    SPAMD_ACCEPT_QUEUE_FULL = "spamd-accept-queue-full"
    SPAMD_REJECTED = "spamd-rejected"
    SPAMD_SILENT = "spamd-silent"
    SPAMD_SLOW_DRIP = "spamd-slow-drip"
    SPAMD_OVERLOADED = "spamd-overloaded"
    SPAMD_CHILD_TIMEOUT = "spamd-child-timeout"
    SPAMD_SLOW_SCAN = "spamd-slow-scan"
    DB_UNREACHABLE = "db-unreachable"
    DB_REFUSED = "db-refused"
    DB_LOCKED = "db-locked"
    DB_TOO_MANY_CONNECTIONS = "db-too-many-connections"
    DNS_DEAD = "dns-dead"
    DNS_DB_SERVFAIL = "dns-db-servfail"
    DNS_DB_NXDOMAIN = "dns-db-nxdomain"
    NET_SLOW = "net-slow"
    MAILDROP_TIMEOUT = "maildrop-timeout"
    WRAPPER_BOUNCED_TRANSIENT = "wrapper-bounced-transient"
    WRAPPER_LOST = "wrapper-lost"
    POSTFIX_TIME_LIMIT = "postfix-time-limit"
    OVER_QUOTA = "over-quota"
    UNKNOWN_USER = "unknown-user"
    FILTER_FAILED = "filter-failed"
    FILTER_EMPTY = "filter-empty"
    # rspamd's, measured by the rspamd drills (README's rspamd section)
    RSPAMD_REFUSED = "rspamd-refused"
    RSPAMD_STOPPING = "rspamd-stopping"
    RSPAMD_OVERLOADED = "rspamd-overloaded"
    RSPAMD_TASK_TIMEOUT = "rspamd-task-timeout"
    REDIS_DOWN = "redis-down"
    RSPAMD_SLOW_RULE = "rspamd-slow-rule"
    RSPAMD_DNS_DEAD = "rspamd-dns-dead"
    REDIS_SLOW = "redis-slow"
    MILTER_UNAVAILABLE = "milter-unavailable"

    @property
    def info(self) -> ModeInfo:
        return MODE_INFO[self]

    @property
    def permanent(self) -> bool:
        """A failure no retry mends: bouncing it (5.x.x, saying why) is right."""
        return self in (Mode.OVER_QUOTA, Mode.UNKNOWN_USER)


MODE_INFO: dict[Mode, ModeInfo] = {
    Mode.SPAMD_REFUSED: ModeInfo(Layer.SPAMC, "spamd not listening: every connect refused"),
    Mode.SPAMD_ACCEPT_QUEUE_FULL: ModeInfo(
        Layer.SPAMC, "SYNs dropped (a full accept queue, a dropping firewall): spamc waits "
        "out a connect timeout per try"),
    Mode.SPAMD_REJECTED: ModeInfo(
        Layer.KERNEL, "a firewall rejects with ICMP, which the kernel rate-limits under a "
        "burst"),
    Mode.SPAMD_SILENT: ModeInfo(Layer.SPAMC, "spamd accepts and never answers"),
    Mode.SPAMD_SLOW_DRIP: ModeInfo(Layer.SPAMC, "spamd answers a byte at a time: -t bounds "
                                   "each read, not the answer"),
    Mode.SPAMD_OVERLOADED: ModeInfo(Layer.SPAMD, "every child busy: connections queue until "
                                    "one is free (--max-children)"),
    Mode.SPAMD_CHILD_TIMEOUT: ModeInfo(Layer.SPAMD, "a scan ran past --timeout-child"),
    Mode.SPAMD_SLOW_SCAN: ModeInfo(Layer.SPAMD, "one scan itself took long (a message's "
                                   "rules, DNSBL or database waits): what starts a "
                                   "cascade behind it"),
    Mode.DB_UNREACHABLE: ModeInfo(Layer.DATABASE, "packets to the database dropped: each SQL "
                                  "connect waits on TCP"),
    Mode.DB_REFUSED: ModeInfo(Layer.DATABASE, "the database refuses or resets connections"),
    Mode.DB_LOCKED: ModeInfo(Layer.DATABASE, "SpamAssassin's queries wait on a lock"),
    Mode.DB_TOO_MANY_CONNECTIONS: ModeInfo(Layer.DATABASE, "the database's connection limit "
                                           "reached"),
    Mode.DNS_DEAD: ModeInfo(Layer.DNS, "the resolver does not answer"),
    Mode.DNS_DB_SERVFAIL: ModeInfo(Layer.DNS, "the database's name answered SERVFAIL"),
    Mode.DNS_DB_NXDOMAIN: ModeInfo(Layer.DNS, "the database's name answered NXDOMAIN"),
    Mode.NET_SLOW: ModeInfo(Layer.SPAMC, "a slow link between spamc and spamd"),
    Mode.MAILDROP_TIMEOUT: ModeInfo(Layer.MAILDROP, "maildrop's global timer fired: "
                                    "'Timeout quota exceeded.', exit 75"),
    Mode.WRAPPER_BOUNCED_TRANSIENT: ModeInfo(Layer.WRAPPER, "the delivery wrapper turned a "
                                             "transient failure into a bounce"),
    Mode.WRAPPER_LOST: ModeInfo(Layer.WRAPPER, "the delivery wrapper reported success for "
                                "mail that was not delivered"),
    Mode.POSTFIX_TIME_LIMIT: ModeInfo(Layer.POSTFIX, "the pipe command outlived Postfix's "
                                      "time limit, which bounces"),
    Mode.OVER_QUOTA: ModeInfo(Layer.MAILDROP, "the recipient's Maildir is over quota"),
    Mode.UNKNOWN_USER: ModeInfo(Layer.MAILDROP, "no such recipient"),
    Mode.FILTER_FAILED: ModeInfo(Layer.MAILDROP, "the xfilter command failed: 'Unable to "
                                 "filter message.', exit 75"),
    Mode.FILTER_EMPTY: ModeInfo(Layer.MAILDROP, "the xfilter printed nothing and exited 0: "
                                "maildrop delivers nothing and exits 0"),
    Mode.RSPAMD_REFUSED: ModeInfo(Layer.SPAMC, "rspamd not listening: rspamc is refused at "
                                  "once and exits 1 (no retry), the message unscanned"),
    Mode.RSPAMD_STOPPING: ModeInfo(
        Layer.RSPAMD, "rspamd told to stop: scans in flight finish, new connections wait "
        "unaccepted until it exits, then are reset (rspamc exits 1, unscanned)"),
    Mode.RSPAMD_OVERLOADED: ModeInfo(
        Layer.RSPAMD, "every normal worker busy: one event loop interleaves its scans, so a "
        "burst waits past rspamc's -t together instead of in turn"),
    Mode.RSPAMD_TASK_TIMEOUT: ModeInfo(
        Layer.RSPAMD, "a scan ran past task_timeout (a frozen Redis, a slow rule): rspamd "
        "answers with a forced partial verdict, or a soft reject with "
        "soft_reject_on_timeout"),
    Mode.REDIS_DOWN: ModeInfo(Layer.REDIS, "rspamd's Redis refuses: Bayes, history and "
                              "greylisting fail and rspamd scans on without them"),
    Mode.RSPAMD_SLOW_RULE: ModeInfo(
        Layer.RSPAMD, "a rule waits on a slow service past task_timeout (Redis healthy): "
        "rspamd answers at task_timeout with a partial verdict, or a soft reject with "
        "soft_reject_on_timeout"),
    Mode.RSPAMD_DNS_DEAD: ModeInfo(
        Layer.DNS, "rspamd's nameserver does not answer: each lookup gives up after "
        "dns.timeout x dns.retransmits, three in turn (ASN, allowlists, blocklists), unless "
        "task_timeout ends the scan first"),
    Mode.REDIS_SLOW: ModeInfo(Layer.REDIS, "the link to rspamd's Redis is slow: below its "
                              "Redis timeout each scan pays the delay per request, above it "
                              "each request times out"),
    Mode.MILTER_UNAVAILABLE: ModeInfo(
        Layer.POSTFIX, "Postfix cannot reach its milter (rspamd's proxy): "
        "milter_default_action decides, accept (unscanned) or tempfail (4xx to the sender)"),
}
