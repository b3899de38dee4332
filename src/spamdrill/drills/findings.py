"""Findings, sans-IO: what the system under test does in each failure mode a drill
measured, against its budgets, in the words of ``spamdrill.vocab`` (a separate question
from whether the drill's hypothesis held).

The layers are the budget model's (``spamdrill.budget.model``), fed with what the drill
measured instead of what the model predicts: maildrop's global timer fires at its budget
and exits 75 (``maildrop/globaltimer.C``), which the wrapper defers or, like the field
report's, turns into a bounce; a spamc still running holds maildrop's output open, and
Postfix's pipe(8) bounces what outlives its time limit (``pipe_command.c``);
spamdrill-deliver defers at its deadline. A message spamc never returned is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from spamdrill.checks.delivery import SENDER_GOT
from spamdrill.history import MessageRecord
from spamdrill.runmodel import FindingRow
from spamdrill.vocab import Fate, Finding, Layer, Mode, Outcome

RSPAMD_PEER = "rspamd"  # drills.rspamd_target's records
LISTENER_MODE = {"refuse": Mode.SPAMD_REFUSED, "queue-full": Mode.SPAMD_ACCEPT_QUEUE_FULL,
                 "silent": Mode.SPAMD_SILENT, "nonreader": Mode.SPAMD_SILENT,
                 "drip": Mode.SPAMD_SLOW_DRIP}


@dataclass(frozen=True)
class Budgets:
    """Each layer's limit in drill seconds, and the wrapper that decides on maildrop's 75
    (``measured``: what a system's own wrapper did in the budget's sandbox, per way
    maildrop gives up, in ``fates``)."""

    maildrop_s: float
    postfix_s: float
    wrapper: str  # bounce-on-75 | spamdrill-deliver | none | measured
    deadline_s: float
    fates: tuple[tuple[str, str], ...] = ()  # (event, fate): "timeout", "filter-failed"


def _row(case: str, mode: Mode | None, fate: Fate, finding: Finding, layer: Layer | None,
         worst_s: float | None, ms: list[MessageRecord], why: str) -> FindingRow:
    """A case's row as the document keeps it: its name ("all" for the one case of a
    drill without cases) and its worst time to the millisecond."""
    return FindingRow(case or "all", mode, finding, fate, layer,
                      None if worst_s is None else round(worst_s, 3), len(ms),
                      sum(1 for m in ms if m.scanned),
                      sum(1 for m in ms if m.outcome == Outcome.UNSCANNED),
                      sum(1 for m in ms if m.outcome == Outcome.LOST), why)


_MEASURED_WHY = {
    Fate.DEFERRED: "the wrapper (measured) passed it on: Postfix defers",
    Fate.BOUNCED: "the wrapper (measured) turned it into a bounce",
    Fate.LOST: "the wrapper (measured) exited 0: Postfix counts it delivered, so it is lost",
    Fate.DUPLICATED: "the wrapper (measured) retried a delivery: delivered twice",
}


def _maildrop_gave_up(b: Budgets, event: str = "timeout") -> tuple[Fate, Layer, str]:
    if b.wrapper == "measured":
        fate = Fate(dict(b.fates).get(event, "lost"))
        fate = Fate.LOST if fate == Fate.DELIVERED else fate  # nothing was delivered
        how = "maildrop's timer fired" if event == "timeout" else "the xfilter failed"
        return fate, Layer.WRAPPER, f"{how} (exit 75) and {_MEASURED_WHY[fate]}"
    if b.wrapper == "bounce-on-75":
        return Fate.BOUNCED, Layer.MAILDROP, ("maildrop's timer fired (exit 75) and the "
                                              "wrapper turned it into a bounce")
    return Fate.DEFERRED, Layer.MAILDROP, "maildrop's timer fired (exit 75): Postfix defers"


def judge(worst_s: float | None, any_unscanned: bool, failed: bool,
          b: Budgets) -> tuple[Fate, Layer | None, str]:
    """The worst fate of a case from its worst spamc time (None: never returned),
    whether any message came back unscanned, and whether spamc failed outright (an
    error status: maildrop's xfilter fails, as at its timer)."""
    if worst_s is None:
        return Fate.LOST, Layer.SPAMC, "spamc never returned"
    if b.wrapper == "spamdrill-deliver" and worst_s >= b.deadline_s:
        return Fate.DEFERRED, Layer.WRAPPER, "spamdrill-deliver's deadline: it defers"
    if worst_s >= b.postfix_s:
        return Fate.BOUNCED, Layer.POSTFIX, ("a spamc still running held maildrop's output "
                                             "past Postfix's time limit, which bounces")
    if worst_s >= b.maildrop_s:
        return _maildrop_gave_up(b, "timeout")
    if failed:
        return _maildrop_gave_up(b, "filter-failed")
    if any_unscanned:
        return Fate.DELIVERED_UNSCANNED, Layer.SPAMC, "spamc failed open within the budget"
    return Fate.DELIVERED, None, "scanned within the budget"


def _measured_fate(m: MessageRecord) -> Fate:
    """End to end the real Postfix decided: a message deferred during the fault and
    delivered after it counts as deferred (what this failure mode does to mail)."""
    fate = Fate(m.fate or Fate.LOST)  # only messages with a fate are asked
    if m.deferrals and fate in (Fate.DELIVERED, Fate.DELIVERED_UNSCANNED):
        return Fate.DEFERRED
    return fate


_FATE_WHY = {
    Fate.DELIVERED: "delivered and scanned",
    Fate.DELIVERED_UNSCANNED: "delivered, unscanned (spamc failed open)",
    Fate.DEFERRED: "Postfix deferred it (and retried once the fault healed)",
    Fate.BOUNCED: "Postfix bounced it to the sender",
    Fate.LOST: "accepted, then found nowhere",
    Fate.DUPLICATED: "delivered more than once",
}


def end_to_end(case: str, ms: list[MessageRecord], mode: Mode | None) -> FindingRow:
    """A case whose messages went through Postfix: each one's fate was read from the
    real system, so the worst of them is the finding, with the DSN of a bounce."""
    fates = [_measured_fate(m) for m in ms if m.fate]
    worst = max(fates, key=lambda f: list(Finding).index(f.finding))
    example = next((m for m in ms if m.fate and _measured_fate(m) == worst), None)
    why = _FATE_WHY[worst]
    if example is not None and example.reason.startswith(SENDER_GOT):
        # refused before the queue (a milter's tempfail): the sender deferred it
        why = f"refused at SMTP ({example.reason[len(SENDER_GOT):].split(';', 1)[0][:80]}): " \
              "the sender kept it and sent it again once the fault healed"
    elif example is not None and worst == Fate.BOUNCED:
        why += f": {example.dsn} {example.reason[:120]}"
    elif example is not None and worst in (Fate.LOST, Fate.DUPLICATED) and example.reason:
        why = example.reason[:200]  # it says the fate itself, and what Postfix logged
    finding = worst.finding
    if worst == Fate.BOUNCED and mode is not None and mode.permanent and \
            all(m.dsn.startswith("5.") for m in ms if m.fate == Fate.BOUNCED):
        finding, why = Finding.WITHIN, f"{why} (a permanent failure: bouncing is right)"
    times = [m.seconds for m in ms if m.seconds is not None]
    return _row(case, mode, worst, finding, None, max(times) if times else None, ms, why)


def case_finding(case: str, ms: list[MessageRecord], mode: Mode | None,
                 b: Budgets) -> FindingRow:
    if any(m.fate for m in ms):
        return end_to_end(case, ms, mode)
    times = [m.seconds for m in ms]
    lost = sum(1 for m in ms if m.outcome == "lost")
    worst = None if lost or not ms or None in times else max(t or 0.0 for t in times)
    unscanned = sum(1 for m in ms if m.outcome == "unscanned")
    failed = any(m.outcome == "error" for m in ms)
    fate, layer, why = judge(worst, unscanned > 0, failed, b)
    if fate == Fate.DELIVERED_UNSCANNED and ms and ms[0].peer == RSPAMD_PEER:
        why = ("rspamc failed (exit 1, X-Spam-Error) within the budget, and maildrop's "
               "exception { } delivers it unscanned")
    peer_mode = LISTENER_MODE.get(ms[0].peer) if ms else None
    return _row(case, peer_mode or mode, fate, fate.finding, layer,
                None if lost else max((t for t in times if t is not None), default=None),
                ms, why)


def findings(by_case: dict[str, list[MessageRecord]], mode: Mode | None,
             b: Budgets) -> list[FindingRow]:
    return [case_finding(case, ms, mode, b) for case, ms in sorted(by_case.items())]
