"""The smallest real drill: mail through maildrop -> spamc -> spamd -> SQL, judged by where
it lands. ``spamdrill run`` uses it to prove a lab works before any fault is injected."""

from __future__ import annotations

from spamdrill import corpus
from spamdrill.checks import CheckResult, judged
from spamdrill.lab import maildrop
from spamdrill.lab.state import LabState


def smoke_checks(state: LabState, seed: int = 1) -> list[CheckResult]:
    layout = state.layout
    user = next(iter(state.users))
    checks = []
    for kind, message, folder in (("spam", corpus.gtube(seed), ".Spam"),
                                  ("ham", corpus.ham(seed), "")):
        before = maildrop.count_messages(layout, user, folder)
        result = maildrop.deliver(layout, user, message, timeout=120)
        after = maildrop.count_messages(layout, user, folder)
        where = f"{user}/{folder or 'INBOX'}"
        ok = result.status == 0 and after == before + 1
        checks.append(judged(
            f"{kind} delivered to {where}", ok,
            f"maildrop exit {result.status} in {result.seconds:.2f} s"
            + (f": {result.stderr.strip()}" if result.stderr.strip() else ""),
        ))
    return checks
