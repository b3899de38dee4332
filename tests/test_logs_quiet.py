"""``diagnose.quiet``, the shortcut for a delivered attempt whose wrapper line said all was
well, against ``diagnose`` itself: on every attempt of the fixtures and of generated logs
(hostile recipients, texts, DSNs and wrapper words), the shortcut answers exactly when the
diagnosis would have nothing to show, and with the same ``scanned``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import FIELDS, LINES, field_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill.logs.diagnose import diagnose, quiet
from spamdrill.logs.formats import zone
from spamdrill.logs.join import Attempt
from spamdrill.logs.reader import Filters, Reader
from spamdrill.logs.summary import Analysis, Options
from spamdrill.vocab import Fate

pytestmark = pytest.mark.unit
DATA = Path(__file__).parent / "data" / "logs"
UTC = zone("UTC")
WRAPPER = ("Nov 29 16:10:31 mx1 spamdrill-deliver[19330]: {qid}: to=<{user}> from=<{sender}> "
           "mda {mda} outcome={outcome} dsn={dsn} rule=r delay=0.3s")
DELIVERY = ("Nov 29 16:10:31 mx1 postfix/pipe[19323]: {qid}: to=<{user}>, relay=maildrop, "
            "delay=0.4, delays=0.1/0/0/0.3, dsn={dsn}, status=sent ({text})")


def _checked(path: Path) -> list[str | None]:
    """Reads ``path``; for each plain attempt with wrapper lines, compares the shortcut
    with the diagnosis. Returns the shortcut's answers."""
    analysis = Analysis(Options(tz=UTC))
    th = analysis.o.thresholds
    seen: list[str | None] = []
    take = analysis._attempt

    def check(attempt: Attempt) -> None:
        if attempt.plain and attempt.wrappers:
            scanned, diag = quiet(attempt, th), diagnose(attempt, th)
            seen.append(scanned)
            nothing = not (diag.modes or diag.slow or diag.problem)
            assert (scanned is not None) == nothing
            if scanned is not None:
                assert diag.fate is Fate.DELIVERED and diag.scanned == scanned
        take(attempt)

    analysis._attempt = check  # type: ignore[method-assign]
    Reader([str(path)], Filters(year=2026, tz=UTC)).run(analysis)
    analysis.document()
    return seen


def test_the_shortcut_agrees_with_the_diagnosis_on_the_fixture() -> None:
    assert _checked(DATA / "mail.log")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({name: field_text for name in FIELDS}),
       mda=st.sampled_from(["status=0", "status=75", "status=1", "signal=9", "deadline"]),
       outcome=st.sampled_from(["deliver", "defer", "bounce"]),
       dsn=st.sampled_from(["2.0.0", "5.1.1", "4.3.0"]),
       text=st.sampled_from(["delivered via maildrop service", "maildir over quota.",
                             "Timeout quota exceeded", "user unknown", "x"]))
def test_the_shortcut_agrees_with_the_diagnosis_on_generated_logs(
        fields: dict[str, str], mda: str, outcome: str, dsn: str, text: str,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    _log(tmp_path_factory.mktemp("quiet") / "mail.log", fields, mda, outcome, dsn, text)


def _log(path: Path, fields: dict[str, str], mda: str, outcome: str, dsn: str,
         text: str) -> list[str | None]:
    """A delivery with its spamd scan and its wrapper's line, checked: the comparisons."""
    fields["qid"] = "0A1B2C3D4E"
    lines = [ln.format(**fields) for ln in LINES if "postfix/pipe" not in ln]
    lines.append(WRAPPER.format(**{**fields, "mda": mda, "outcome": outcome, "dsn": dsn}))
    lines.append(DELIVERY.format(**{**fields, "dsn": dsn, "text": text}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    return _checked(path)


@pytest.mark.parametrize(("mda", "text", "dsn", "quiet_one"), [
    ("status=0", "delivered via maildrop service", "2.0.0", True),
    ("status=1", "delivered via maildrop service", "2.0.0", False),  # the wrapper lost it
    ("status=0", "maildir over quota.", "2.0.0", False),  # the text names a mode
    ("status=0", "delivered via maildrop service", "5.1.1", False)])
def test_the_shortcut_takes_only_what_has_nothing_to_show(
        tmp_path: Path, mda: str, text: str, dsn: str, quiet_one: bool) -> None:
    """A quiet delivery is taken; a wrapper that lost a failure, a text or a DSN naming a
    mode leave it to the diagnosis."""
    fields = {name: "x" for name in FIELDS} | {"user": "alice", "mid": "m1@x", "ip": "1.2.3.4"}
    found = _log(tmp_path / "mail.log", fields, mda, "deliver", dsn, text)
    assert found == (["scanned"] if quiet_one else [None])


@settings(max_examples=100, deadline=None)
@given(text=st.one_of(field_text, st.sampled_from([
    "delivered via maildrop service", "Command time limit exceeded",
    "maildrop: Timeout quota exceeded.", "maildir over quota.", "MAILBOX FULL",
    "timeout quota exceeded", "Invalid user specified.", "\u017fer unknown",
    "Unable to filter message"])))
def test_a_delivery_text_names_the_same_modes_each_time(text: str) -> None:
    """The modes a delivery's text names, kept per text, are those its searches find."""
    from spamdrill.logs import diagnose as dg

    direct = tuple((mode, note) for test, mode, note in dg._OUTER if test(text))
    assert dg._outer_modes(text) == direct
    assert dg._outer_modes(text) == direct  # from what was kept
    assert len(dg._said) <= 1024
