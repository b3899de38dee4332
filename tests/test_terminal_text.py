"""Outside text reaches the terminal as text, in every renderer (logs, run, report,
budget, history, compare): never read as rich markup (``[link=...]``, ``[bold]``, an
unbalanced ``[/x]`` that crashed ``spamdrill logs``), never a control character (escape
sequences, CR, bidi overrides), never an emoji code. And ``spamdrill logs`` never ends in
a traceback, whatever it reads (Hypothesis, in process)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import traceback
from pathlib import Path
from typing import Any

import pytest
from hostile import FIELDS, FORMATS, PIECES, field_text, hostile_text, log_text
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spamdrill import cli, report, runmodel
from spamdrill.render import compare, term

pytestmark = pytest.mark.unit

RUNS = Path(__file__).parent / "data" / "runs"
ROOT = Path(__file__).parent.parent
SHOWN = "[/x] [bold]b[/bold] [link=https://evil.example/]l[/link] \x1b[31mred \x9b2J :smile: \r"
# what the terminal must show of SHOWN, character for character
AS_TEXT = ("[/x] [bold]b[/bold] [link=https://evil.example/]l[/link] \\x1b[31mred \\x9b2J "
           ":smile: \\x0d")
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(run: Any) -> str:
    """What a person sees: ``run(console)`` printed without colour, wide."""
    buf = io.StringIO()
    run(term.console(file=buf, width=3000, color_system=None, soft_wrap=True))
    return buf.getvalue()


def assert_text(out: str, *expected: str) -> None:
    assert not CONTROL.search(out), repr(CONTROL.search(out))
    for text in expected:
        assert text in out, (text, out[-2000:])
    assert "😄" not in out


def cli_run(*args: str) -> tuple[int, str, str]:
    """``spamdrill ARGS`` in this process: exit status, stdout, stderr; a traceback fails."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            pytest.fail(f"spamdrill {' '.join(args)!r} raised:\n{traceback.format_exc()}")
    return code, out.getvalue(), err.getvalue()


def test_safe_escapes_markup_and_shows_control_characters() -> None:
    assert term.plain(SHOWN) == AS_TEXT
    assert term.safe("\\") == "\\\\" and term.safe("a[/x]") == "a\\[/x]"
    assert term.plain("\u202egnp.exe\u2066") == "\\u202egnp.exe\\u2066"
    assert_text(shown(lambda c: c.print(term.safe(SHOWN))), AS_TEXT)


# -- spamdrill logs ---------------------------------------------------------------------------

def logs_shown(tmp_path: Path, text: str, *args: str) -> str:
    path = tmp_path / "mail.log"
    path.write_text(text, errors="surrogateescape")
    code, out, err = cli_run("logs", "--tz", "UTC", "--year", "2026", *args, str(path))
    assert code == 0, err
    return out


def test_logs_show_a_hostile_recipient_and_reason_as_text(tmp_path: Path) -> None:
    """The reproduction: a recipient ``"[/x]"@example.net`` crashed the summary with a
    traceback; ``[link=...]`` and ``[bold]`` in a DSN's text were interpreted; a raw
    escape sequence reached the terminal."""
    fields = dict.fromkeys(FIELDS, "x")
    fields.update(qid="4B64A20CC72", ip="192.0.2.7", to='"[/x]"@example.net',
                  text=SHOWN.replace("\r", ""), mid="m1@example.net")
    out = logs_shown(tmp_path, log_text(fields))
    assert_text(out, '"[/x]"@example.net', AS_TEXT.replace(" \\x0d", ""))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields=st.fixed_dictionaries({k: field_text for k in FIELDS}),
       anonymize=st.booleans(), fmt=st.sampled_from(FORMATS))
def test_logs_never_traceback_on_hostile_fields(fields: dict[str, str], anonymize: bool,
                                                fmt: str) -> None:
    with _tmp() as tmp:
        path = tmp / "mail.log"
        path.write_text(log_text(fields, fmt), errors="surrogatepass")
        code, out, err = cli_run("logs", "--tz", "UTC", "--year", "2026",
                                 *(["--anonymize"] if anonymize else []), str(path))
    assert code in (0, 2, 4), err  # 4: nothing to diagnose, said
    assert not CONTROL.search(out + err), repr(out + err)


LINE_PARTS = [p.encode() for p in PIECES] + [
    b"Nov 29 16:10:31 mx1 postfix/pipe[1]: 4B64A20CC72: to=<", b">, relay=maildrop, ",
    b"status=deferred (", b"spamd[18810]: spamd: result: ", b"mid=<", b"\n", b"\x1f\x8b",
    b'{"MESSAGE": ', b"<22>1 2026-11-29T16:10:31Z mx1 postfix/pipe 1 - - ", b"\xff\xfe",
    b"2026-11-29T16:10:31+0000 mx1 postfix/qmgr[2]: ", b"\x00"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(LINE_PARTS)),
                     max_size=30).map(b"".join), stdin=st.booleans())
def test_logs_never_traceback_on_any_bytes(data: bytes, stdin: bool) -> None:
    with _tmp() as tmp:
        path = tmp / "input"
        path.write_bytes(data)
        if stdin:  # '-': read from stdin, as in journalctl ... | spamdrill logs -
            with path.open("rb") as raw, _stdin(raw):
                code, out, err = cli_run("logs", "--tz", "UTC", "-")
        else:
            code, out, err = cli_run("logs", "--tz", "UTC", str(path))
    assert code in (0, 2, 4), err  # 4: nothing to diagnose, said
    assert code == 0 or err.count("\n") == 1, err  # bad input: one line
    assert not CONTROL.search(out + err), repr(out + err)


@contextlib.contextmanager
def _stdin(raw: Any) -> Any:
    import sys

    before = sys.stdin
    sys.stdin = io.TextIOWrapper(raw)
    try:
        yield
    finally:
        sys.stdin = before


@contextlib.contextmanager
def _tmp() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="spamdrill-fuzz-") as tmp:
        yield Path(tmp)


# -- a run: the quick view after `spamdrill run`, and `spamdrill report` ----------------------

def hostile_doc(text: str) -> dict[str, Any]:
    """The recorded ``field`` run with every string a person could have written replaced
    by ``text`` (names, hypotheses, reasons, notes, log lines, flags)."""
    doc = json.loads((RUNS / "field" / "report.json").read_text())
    # the vocabulary's words are validated when read (an unknown one is refused): these
    # stay as recorded, every other string is the stranger's
    keep = {"outcome", "fate", "peer", "kind", "started", "run", "results_dir", "verdict",
            "finding", "status", "mode", "fires_first"}

    def walk(x: Any, key: str = "") -> Any:
        if isinstance(x, dict):
            return {k: walk(v, k) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v, key) for v in x]
        if isinstance(x, str) and key not in keep:
            return text
        return x
    return walk(doc)  # type: ignore[no-any-return]


def test_run_view_shows_document_text_as_text() -> None:
    run = runmodel.from_document(hostile_doc(SHOWN))
    assert_text(shown(lambda c: report.print_run(c, run)), AS_TEXT)
    # end to end: the wrappers' table, with what a bounce said
    doc = hostile_doc(SHOWN)
    for sc in doc["scenarios"]:
        for m in sc["messages"]:
            m.update(peer="postfix", fate="bounced")
    out = shown(lambda c: report.print_run(c, runmodel.from_document(doc)))
    assert "what each wrapper made of it" in out
    assert_text(out, AS_TEXT)


def test_report_command_shows_document_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    doc = hostile_doc(SHOWN)
    path.write_text(json.dumps(doc))
    code, out, err = cli_run("report", str(path))
    assert code == doc["exit_status"], err  # report exits with the recorded run's status
    assert_text(out, "[/x]", "\\x1b[31mred")


# -- budget, history, compare -----------------------------------------------------------------

def test_budget_shows_config_text_as_text(tmp_path: Path) -> None:
    """A maildroprc is a file someone else may have written: its path and its lines show
    in the limits' sources and notes."""
    where = tmp_path / "[link=evil]etc\x1b[31m[bold]"
    where.mkdir()
    rc = where / "maildroprc"
    rc.write_text('xfilter "/usr/bin/spamc -t 30 [bold]"\n')
    code, out, err = cli_run("budget", "--maildroprc", str(rc))
    assert code in (0, 1), err
    assert_text(out, "[link=evil]etc\\x1b[31m[bold]")


def test_history_shows_index_text_as_text() -> None:
    from spamdrill.history import IndexEntry, ScenarioLine
    from spamdrill.vocab import Finding, Verdict

    line = ScenarioLine(name=SHOWN, verdict=Verdict.CONFIRMED, finding=Finding.WITHIN,
                        messages=1, scanned=1, unscanned=0, lost=0, p50_s=None, p99_s=None,
                        max_s=None)
    runs = [IndexEntry(run=SHOWN, started=0, kind=SHOWN, exit_status=0, scenarios=[line],
                       config={"x": SHOWN})]
    assert_text(shown(lambda c: c.print(compare.history_table(runs))), AS_TEXT)


def test_compare_shows_document_text_as_text() -> None:
    a = runmodel.from_document(hostile_doc(SHOWN))
    b = runmodel.from_document(hostile_doc(SHOWN + "2"))
    out = shown(lambda c: compare.print_compare(c, compare.compare(a, b)))
    assert_text(out, AS_TEXT)


@given(text=hostile_text)
@example(text="\\[")  # rich read it as an escaped bracket: shown as "["
@example(text="a\\\\[b]\\[")
@settings(max_examples=30, deadline=None)
def test_any_text_is_shown_as_itself(text: str) -> None:
    """Whatever the text, set between markup as the renderers set it, what is printed is
    its ``plain`` form, character for character: nothing read as markup, nothing lost."""
    out = shown(lambda c: c.print(f"[dim]<{term.safe(text)}[/dim]>", end="",
                                  highlight=False))
    assert out == f"<{term.plain(text)}>"


def test_junit_of_a_hostile_document_is_well_formed_xml() -> None:
    """Control bytes from a log line or a reason cannot be written in XML 1.0 at all: the
    JUnit report shows them as \\xNN, and CI tools can still read it."""
    import xml.etree.ElementTree as ET

    from spamdrill.render import junit

    text = SHOWN + "\x00\x07\x0b\ufffe"
    xml = junit.render(runmodel.from_document(hostile_doc(text)))
    root = ET.fromstring(xml)  # well-formed, or this raises
    assert "\\x1b[31mred" in xml.decode() and "\\x00\\x07\\x0b" in xml.decode()
    assert root.tag == "testsuites"
