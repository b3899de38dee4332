"""A slow rule behind the lab's private Postfix as a milter (root): what the sender gets when
rspamd's task_timeout ends the scan, with a partial verdict (rspamd's shipped default) and
with soft_reject_on_timeout; and the negative twin, a slow rule that was never made slow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_e2e import needs_root

from spamdrill.budget.rspamd import EDGE_MARGIN_S, Prediction, RspamdSetup, predict
from spamdrill.drills import runner
from spamdrill.drills.control import RealLab
from spamdrill.drills.scenario import load_all
from spamdrill.lab.config import LabConfig
from spamdrill.vocab import Fate, Mode

pytestmark = [pytest.mark.lab, pytest.mark.root]
SCENARIOS = load_all()


def milter_bound(soft_reject: bool) -> Prediction:
    """The budget's slow-rule prediction behind the milter, for the drills' lab (rspamd's
    shipped timeouts, Postfix's defaults, accept)."""
    [p] = [p for p in predict(RspamdSetup(rspamc_t=None, milter_action="accept",
                                          soft_reject=soft_reject))
           if p.mode == Mode.RSPAMD_SLOW_RULE and p.via == "milter"]
    return p


def run(name: str, tmp_path: Path) -> runner.ScenarioResult:
    [r] = runner.run_scenario(SCENARIOS[name], scale=1.0, base=LabConfig(), workdir=tmp_path)
    return r


def test_a_partial_verdict_reaches_the_sender_as_250_after_task_timeout(
        tmp_path: Path) -> None:
    if needs_root("e2e-rspamd-slow-rule"):
        return
    r = run("e2e-rspamd-slow-rule", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    # at the task timeout (8 s), not the rule's 60 s: room for a loaded machine's Postfix
    assert all(m.fate == "delivered" and m.deferrals == 0 and 8 <= (m.seconds or 0) < 8 + 6
               for m in r.history.messages), r.history.messages
    bound = milter_bound(soft_reject=False)  # 250 at task_timeout, delivered
    assert bound.fate == Fate.DELIVERED and "250" in bound.why
    assert all((m.seconds or 0) <= bound.worst_s + EDGE_MARGIN_S for m in r.history.messages)


def test_a_soft_reject_reaches_the_sender_as_451_and_the_retry_is_delivered(
        tmp_path: Path) -> None:
    """From the lab's loopback rspamd greylists nothing, so the retry, once the service
    answers again, is delivered at once (an outside sender's would wait out greylisting:
    e2e-rspamd-milter-soft-reject)."""
    if needs_root("e2e-rspamd-slow-rule-soft-reject"):
        return
    r = run("e2e-rspamd-slow-rule-soft-reject", tmp_path)
    assert r.verdict == "confirmed", (r.checks, r.faults, r.error)
    first = "the sender got 451 4.7.1 timeout processing message"
    assert all(m.reason.startswith(first) and m.fate == "delivered" and m.deferrals == 1
               for m in r.history.messages), r.history.messages
    bound = milter_bound(soft_reject=True)  # the first attempt: 451 4.7.1, deferred
    assert bound.fate == Fate.DEFERRED and "451 4.7.1" in bound.why


class _Nothing:
    def heal(self) -> None:
        pass


@pytest.mark.parametrize("name", ["e2e-rspamd-slow-rule", "e2e-rspamd-slow-rule-soft-reject"])
def test_a_slow_rule_never_made_slow_is_an_error(name: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative twin: the lab DNS never gets the rule, every message is scanned and
    delivered at once; the drill proves nothing and says so."""
    if needs_root(name):
        return

    def idle(self: RealLab, rules: list[tuple[str, str, float]]) -> Any:
        return _Nothing()

    monkeypatch.setattr(RealLab, "dns_rules", idle)
    r = run(name, tmp_path)
    assert r.verdict == "error", (r.checks, r.faults)
    assert not r.faults[0].took_effect and "did not occur" in r.faults[0].detail
    assert all(m.fate == "delivered" and m.deferrals == 0 for m in r.history.messages)
