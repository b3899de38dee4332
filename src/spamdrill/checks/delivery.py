"""Checks end to end, on what Postfix did with each message: bounces and their reasons,
deferrals that later delivered, each message's fate, delivered mail intact (sans-IO)."""

from __future__ import annotations

import re

from spamdrill.checks.base import (
    CheckResult,
    CheckSpec,
    Count,
    ids_of,
    judged,
    must_compile,
)
from spamdrill.evidence import Evidence
from spamdrill.vocab import Fate

# how an end-to-end record's reason begins when its sender was refused with a 4xx and
# sent the message again (drills/e2e.py writes it): "the sender got 451 4.7.1 ...; ..."
SENDER_GOT = "the sender got "


class NoBounce(CheckSpec, tag="no_bounce", frozen=True):
    """End to end: nothing bounced because of a transient fault. ``allowed``: DSN status
    prefixes that are right to bounce here (``"5.2.2"``: a mailbox over quota)."""

    allowed: tuple[str, ...] = ()

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        bad = [m for m in ms if m.outcome == "bounced"
               and not any(m.dsn.startswith(a) for a in self.allowed)]
        shown = "; ".join(sorted({f"{m.dsn}: {m.reason[:80]}" for m in bad})[:2])
        return judged("nothing bounced for a transient failure" + (
            f" (allowed: {', '.join(self.allowed)})" if self.allowed else ""),
            bool(ms) and not bad, f"{len(bad)} of {len(ms)} bounced" + (
                f": {shown}" if shown else ""), ids_of(bad))


class BouncesSayWhy(CheckSpec, tag="bounces_say_why", frozen=True):
    """End to end: every bounce happened (``min``) and its DSN carries the status and a
    text that names its cause (``pattern``, a regular expression), so the sender knows
    why."""

    pattern: str
    status: str = ""  # a DSN status prefix each bounce must carry, e.g. "5.2.2"
    min: Count = 1

    def __post_init__(self) -> None:
        must_compile(self.pattern)

    def judge(self, ev: Evidence) -> CheckResult:
        bounced = [m for m in ev.history.messages if m.outcome == "bounced"]
        bad = [m for m in bounced if not m.dsn.startswith(self.status)
               or not re.search(self.pattern, m.reason)]
        return judged(f"bounces carry {self.status or 'a status'} and say /{self.pattern}/",
                       len(bounced) >= self.min and not bad,
                       f"{len(bounced)} bounced, {len(bad)} without the cause" + (
                           f" (e.g. {bad[0].dsn}: {bad[0].reason[:100]})" if bad else ""),
                       ids_of(bad))


class DeferredThenDelivered(CheckSpec, tag="deferred_then_delivered", frozen=True):
    """End to end: every message Postfix deferred during the fault was delivered, exactly
    once, after the fault healed; and some were deferred (``min``)."""

    min: Count = 1

    def judge(self, ev: Evidence) -> CheckResult:
        deferred = [m for m in ev.history.messages if m.deferrals > 0]
        bad = [m for m in deferred if m.fate not in ("delivered", "delivered unscanned")]
        return judged("every deferred message was delivered once the fault healed",
                       len(deferred) >= self.min and not bad,
                       f"{len(deferred)} deferred, {len(deferred) - len(bad)} then delivered"
                       + (f"; {bad[0].id}: {bad[0].fate} ({bad[0].reason[:80]})" if bad
                          else ""), ids_of(bad))


class FateIs(CheckSpec, tag="fate_is", frozen=True):
    """End to end: every message ended in one of ``fates`` (``vocab.Fate`` words: a
    wrapper's failure shown for what it is, e.g. ``["lost"]`` for one that exits 0)."""

    fates: tuple[Fate, ...]

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        allowed = {f.value for f in self.fates}
        bad = [m for m in ms if m.fate not in allowed]
        seen = ", ".join(f"{n} {f or 'no fate'}" for f, n in sorted(
            {m.fate: sum(1 for x in ms if x.fate == m.fate) for m in ms}.items()))
        return judged(f"every message {' or '.join(sorted(allowed))}", bool(ms) and not bad,
                       seen, ids_of(bad))


class DeliveredIntact(CheckSpec, tag="delivered_intact", frozen=True):
    """End to end: every delivered copy holds the message as it was sent (body intact,
    headers added by spamd aside)."""

    def judge(self, ev: Evidence) -> CheckResult:
        delivered = [m for m in ev.history.messages if m.intact is not None]
        bad = [m for m in delivered if not m.intact]
        return judged("every delivered message intact", bool(delivered) and not bad,
                       f"{len(delivered) - len(bad)}/{len(delivered)} intact", ids_of(bad))


class SenderRetried(CheckSpec, tag="sender_retried", frozen=True):
    """End to end, before the queue: every message was first refused at SMTP with a
    temporary reply (``status``, an enhanced status prefix such as ``"4.7.1"``: the
    sender keeps the message and tries again), and once the fault healed the sender's
    retries got it delivered exactly once (``fates``). A milter with
    ``milter_default_action = tempfail`` that cannot be reached does this."""

    status: str = "4."
    fates: tuple[Fate, ...] = (Fate.DELIVERED,)

    def judge(self, ev: Evidence) -> CheckResult:
        ms = ev.history.messages
        want = SENDER_GOT + self.status[:1]
        refused = [m for m in ms if m.reason.startswith(want)
                   and self.status in m.reason[len(SENDER_GOT):].split(";", 1)[0]]
        allowed = {f.value for f in self.fates}
        bad = [m for m in ms if m not in refused or m.fate not in allowed]
        first = refused[0].reason[len(SENDER_GOT):].split(";", 1)[0] if refused else ""
        return judged(f"every message refused with {self.status}, then "
                      f"{' or '.join(sorted(allowed))} when sent again",
                      bool(ms) and not bad,
                      f"{len(refused)} of {len(ms)} refused first"
                      + (f" ({first[:80]})" if first else "")
                      + (f"; {bad[0].id}: {bad[0].fate or 'no fate'} ({bad[0].reason[:80]})"
                         if bad else ""), ids_of(bad))
