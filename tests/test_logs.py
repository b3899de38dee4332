"""``spamdrill logs`` on logs the real programs wrote (tests/data/logs, made by
make_fixtures.py: a lab's spamd and maildrop, a private Postfix, one fault per phase; the
other formats derived by convert.py). ``raw/manifest.json`` records what each phase sent;
the expectations below are the faults each phase injected, in the vocabulary's words."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import spamdrill_here

from spamdrill.errors import SpamdrillError
from spamdrill.logs import formats
from spamdrill.logs.diagnose import Thresholds
from spamdrill.logs.formats import Entry, Skip, YearClock, zone
from spamdrill.logs.join import Settings
from spamdrill.logs.reader import Filters
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Options

DATA = Path(__file__).parent / "data" / "logs"
RAW = DATA / "raw"
MANIFEST: dict[str, list[dict[str, str]]] = json.loads((RAW / "manifest.json").read_text())
UTC = zone("UTC")
FORMATS = ["mail.log", "mail.rfc5424.log", "mail.journal.json", "mail.short-iso.log"]


def options() -> Options:
    # the fixtures ran compressed: spamc -t 3, a 6 s slow message, phases seconds apart
    return Options(Thresholds(slow=5, slow_scan=4), Settings(late_window=60, horizon=600),
                   episode_gap=4, bucket=60, tz=UTC)


def doc_of(*paths: Path | str, **filters: Any) -> dict[str, Any]:
    return analyze([str(p) for p in paths], Filters(year=2026, tz=UTC, **filters), options())


def records(doc: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["queue_id"], r["attempt"]): r for r in doc["deliveries"]}


def first_try(doc: dict[str, Any], phase: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    recs = records(doc)
    return [(m, recs[(m["queue_id"], 1)]) for m in MANIFEST[phase]]


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    return doc_of(DATA / "mail.log")


# -- each fault, named ---------------------------------------------------------------------

@pytest.mark.unit
def test_normal_mail_is_not_in_trouble(merged: dict[str, Any]) -> None:
    recs = records(merged)
    for m in MANIFEST["normal"]:
        assert (m["queue_id"], 1) not in recs, m
    assert merged["totals"]["scanned"]["scanned"] >= len(MANIFEST["normal"])


@pytest.mark.unit
def test_slow_first_message_starts_its_episode(merged: dict[str, Any]) -> None:
    tries = first_try(merged, "slow-first")
    (slow_msg, slow_rec), rest = tries[0], tries[1:]
    assert "spamd-slow-scan" in slow_rec["modes"]
    for _, rec in rest:
        assert rec["modes"][0] == "spamd-overloaded", rec
        assert rec["fate"] == "delivered unscanned" and rec["scanned"] == "late"
    episode = next(e for e in merged["episodes"] if slow_rec["queue_id"] in e["queue_ids"])
    culprit = episode["started_by"][0]
    assert culprit["message_id"] == f"<{slow_msg['message_id'].strip('<>')}>"
    assert culprit["queue_id"] == slow_msg["queue_id"]
    assert culprit["recipient"] == slow_msg["to"] and culprit["scan_s"] >= 5
    assert culprit["followed"] >= len(rest)


@pytest.mark.unit
def test_scan_past_its_time_limit(merged: dict[str, Any]) -> None:
    [(_, rec)] = first_try(merged, "child-timeout")
    assert "spamd-child-timeout" in rec["modes"]
    assert rec["scans"][0]["time_limit"] and rec["scans"][0]["joined_by"] == "message-id"


@pytest.mark.unit
def test_maildrop_timeout_per_transport(merged: dict[str, Any]) -> None:
    expect = {"maildrop": ("deferred", "maildrop-timeout"),
              "wrapped": ("bounced", "wrapper-bounced-transient"),
              "deliver": ("deferred", "maildrop-timeout"),
              "slow": ("bounced", "postfix-time-limit")}
    for m, rec in first_try(merged, "maildrop-timeout"):
        fate, outer = expect[m["transport"]]
        assert (rec["fate"], rec["modes"][0]) == (fate, outer), rec
        assert "spamd-silent" in rec["modes"], rec  # spamd was SIGSTOPped
    bounced = {r["queue_id"] for r in merged["wrapper_bounced"]}
    wrapped = [m for m in MANIFEST["maildrop-timeout"] if m["transport"] == "wrapped"]
    assert wrapped[0]["queue_id"] in bounced


@pytest.mark.unit
def test_dead_dns_for_the_database(merged: dict[str, Any]) -> None:
    tries = first_try(merged, "dns-dead")
    assert all("dns-dead" in rec["modes"] for _, rec in tries), tries
    # the one queued behind the failing scan: overloaded, because of that scan
    assert any(rec["modes"][:2] == ["spamd-overloaded", "dns-dead"] for _, rec in tries)


@pytest.mark.unit
def test_quota_and_unknown_user(merged: dict[str, Any]) -> None:
    for m, rec in first_try(merged, "quota-and-users"):
        if m["transport"] == "nouser":
            assert (rec["fate"], rec["modes"]) == ("bounced", ["unknown-user"])
        elif m["transport"] == "wrapped":
            assert rec["fate"] == "bounced"
            assert rec["modes"][:2] == ["wrapper-bounced-transient", "over-quota"]
        else:
            assert (rec["fate"], rec["modes"][0]) == ("deferred", "over-quota")


@pytest.mark.unit
def test_database_down_then_spamd_down(merged: dict[str, Any]) -> None:
    for _, rec in first_try(merged, "db-down"):
        assert rec["modes"] == ["db-refused"] and rec["scanned"] == "unscanned"
    for _, rec in first_try(merged, "spamd-down"):
        assert rec["modes"] == ["spamd-refused"]
        assert rec["fate"] == "delivered unscanned"
    # deferred mail retried after spamd stopped: delivered on the retry, unscanned
    retried = [r for r in merged["deliveries"] if r["attempt"] == 2]
    assert retried and all("spamd-refused" in r["modes"] for r in retried)


@pytest.mark.unit
def test_every_problem_has_evidence_and_an_explanation(merged: dict[str, Any]) -> None:
    assert merged["deliveries_total"] == len(merged["deliveries"]) > 10
    for rec in merged["deliveries"]:
        assert rec["evidence"] and rec["evidence"][0]["text"].endswith(f"({rec['text']})")
        assert rec["explained"], rec
    assert merged["unexplained_total"] == 0
    assert merged["still_queued"]  # over quota: still deferred at the end of the log


# -- the same lines in every format -------------------------------------------------------

def _essence(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((r["queue_id"], r["attempt"], r["fate"], r["scanned"], tuple(r["modes"]))
                  for r in doc["deliveries"])


@pytest.mark.unit
@pytest.mark.parametrize("name", FORMATS[1:])
def test_each_format_gives_the_same_diagnosis(merged: dict[str, Any], name: str) -> None:
    doc = doc_of(DATA / name)
    assert doc["inputs"][0]["format"] == formats.sniff(
        (DATA / name).read_text().splitlines()[:50])
    assert _essence(doc) == _essence(merged)
    assert [e["started_by"][:1] for e in doc["episodes"]] == \
        [e["started_by"][:1] for e in merged["episodes"]]


@pytest.mark.unit
def test_raw_files_read_together_match_the_merged_log(merged: dict[str, Any]) -> None:
    doc = doc_of(RAW / "postfix.log", RAW / "spamd.log", RAW / "syslog.log",
                 RAW / "maildrop.log")
    assert [i["format"] for i in doc["inputs"]] == ["classic", "spamd-file", "classic",
                                                    "maildrop-file"]
    assert all(not i["skipped"] for i in doc["inputs"])
    assert _essence(doc) == _essence(merged)


@pytest.mark.unit
def test_rotated_and_gzipped_files(tmp_path: Path, merged: dict[str, Any]) -> None:
    lines = (DATA / "mail.log").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    with gzip.open(tmp_path / "mail.log.2.gz", "wb") as fh:
        fh.writelines(lines[: half // 2])
    (tmp_path / "mail.log.1").write_bytes(b"".join(lines[half // 2: half]))
    (tmp_path / "mail.log").write_bytes(b"".join(lines[half:]))
    doc = doc_of(tmp_path / "mail.log", tmp_path / "mail.log.1", tmp_path / "mail.log.2.gz")
    assert _essence(doc) == _essence(merged)
    assert sum(i["lines"] for i in doc["inputs"]) == len(lines)


@pytest.mark.unit
def test_stdin_and_json_to_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "spamdrill", "logs", "--tz", "UTC", "--year", "2026",
         "--slow", "5", "--slow-scan", "4", "--late-window", "60", "--episode-gap", "4",
         "--json", "-", "-"], input=(DATA / "mail.log").read_bytes(), capture_output=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == "spamdrill.logs/1" and doc["inputs"][0]["path"] == "-"
    assert doc["totals"]["deliveries"] > 30


@pytest.mark.unit
def test_terminal_summary_names_modes_and_suspects() -> None:
    done = _here("--tz", "UTC", "--year", "2026", "--slow", "5", "--slow-scan", "4",
                 "--late-window", "60", "--episode-gap", "4", str(DATA / "mail.log"))
    assert done.returncode == 0, done.stderr
    slow_qid = MANIFEST["slow-first"][0]["queue_id"]  # named first in its episode
    for text in ("wrapper-bounced-transient", "spamd-overloaded", "dns-dead",
                 f"1. {slow_qid}", "bounced by a wrapper that Postfix would have retried"):
        assert text in done.stdout, text


# -- filters ----------------------------------------------------------------------------

@pytest.mark.unit
def test_since_and_until(merged: dict[str, Any]) -> None:
    recs = sorted(merged["deliveries"], key=lambda r: r["time"])
    middle = recs[len(recs) // 2]["time"]
    early = doc_of(DATA / "mail.log", until=formats.IsoClock()(middle))
    late = doc_of(DATA / "mail.log", since=formats.IsoClock()(middle))
    assert all(r["time"] <= middle for r in early["deliveries"])
    assert all(r["time"] >= middle for r in late["deliveries"])
    assert early["totals"]["deliveries"] + late["totals"]["deliveries"] >= \
        merged["totals"]["deliveries"]


@pytest.mark.unit
def test_host_filter_leaves_out_spamd(merged: dict[str, Any]) -> None:
    doc = doc_of(DATA / "mail.log", hosts=frozenset({"mx1"}))
    assert doc["totals"]["scans"] == 0
    assert set(doc["totals"]["scanned"]) <= {"unknown", "n/a"}
    assert doc["totals"]["deliveries"] == merged["totals"]["deliveries"]


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.unit
def test_malformed_lines_are_counted_and_skipped() -> None:
    expected = [line.split(" ", 1) for line in
                (DATA / "malformed.expected").read_text().splitlines()]
    doc = doc_of(DATA / "malformed.log")
    skipped = doc["inputs"][0]["skipped"]
    want: dict[str, int] = {}
    for _, reason in expected:
        want[reason] = want.get(reason, 0) + 1
    assert skipped == want
    assert doc["skipped"]["total"] == len(expected)
    seen = {(e["line"], e["reason"]) for e in doc["skipped"]["examples"]}
    assert seen == {(int(n), reason) for n, reason in expected}


@pytest.mark.unit
def test_year_rollover_and_wrong_years() -> None:
    clock = YearClock(2025, UTC)
    dec, jan = clock("Dec 31 23:59:58"), clock("Jan 1 00:00:03")
    assert dec is not None and jan is not None and jan - dec == 5
    assert clock("Dec 31 23:59:59") is None  # after the rollover: a year ahead, refused
    assert clock("Nov 30 12:00:00") is None  # a month back: refused
    assert clock("Jan 1 00:00:04") == jan + 1  # and the clock carries on
    assert clock("Mar 1 00:00:00") is not None  # months later, forward: a quiet host


@pytest.mark.unit
def test_rfc5424_structured_data_and_bom() -> None:
    parse = formats.Rfc5424Parser()
    line = ('<22>1 2026-11-29T15:58:40.5+01:00 mx1 postfix/qmgr 7 - '
            '[meta x="a\\]b" y="c\\"d"][origin ip="127.0.0.1"] \ufeffABC123: removed')
    entry = parse(line)
    assert isinstance(entry, Entry)
    assert (entry.host, entry.prog, entry.pid, entry.msg) == ("mx1", "postfix/qmgr", "7",
                                                              "ABC123: removed")
    assert entry.ts == 1795967920.5 - 3600
    assert isinstance(parse(line[:60]), Skip)


@pytest.mark.unit
def test_empty_and_nul_lines(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    lines = (DATA / "mail.log").read_bytes().splitlines(keepends=True)[:120]
    nul = tmp_path / "nul.log"
    i = next(n for n, ln in enumerate(lines) if b"client=" in ln)
    nul.write_bytes(b"".join(lines[:i]) + lines[i].replace(b"client=", b"cli\x00nt=")
                    + b"".join(lines[i + 1:]))
    doc = doc_of(empty, nul)
    assert doc["inputs"][0]["format"] == "empty" and doc["inputs"][0]["lines"] == 0
    assert doc["inputs"][1]["skipped"] == {"garbled": 1}
    assert doc["inputs"][1]["entries"] == len(lines) - 1


@pytest.mark.unit
def test_journal_message_as_bytes() -> None:
    line = json.dumps({"__REALTIME_TIMESTAMP": "1795967920000000", "_HOSTNAME": "mx1",
                       "SYSLOG_IDENTIFIER": "postfix/pipe", "_PID": "7",
                       "MESSAGE": list("caf\xe9 ok".encode("latin-1"))})
    entry = formats.journal_json(line)
    assert isinstance(entry, Entry) and entry.msg == "caf\ufffd ok" and entry.pid == "7"
    assert isinstance(formats.journal_json(line[:40]), Skip)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spamdrill", "logs", *args],
                          capture_output=True, text=True, timeout=60)


def _here(*args: str) -> subprocess.CompletedProcess[str]:
    return spamdrill_here("logs", *args)


@pytest.mark.parametrize("args,message", [
    (["/nonexistent/mail.log"], "cannot read /nonexistent/mail.log"),
    (["--since", "yesterday-ish", str(DATA / "mail.log")], "--since 'yesterday-ish'"),
    (["--tz", "Mars/Olympus", str(DATA / "mail.log")], "unknown zone"),
    (["-", "-"], "stdin"),
])
@pytest.mark.unit
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = _here(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.unit
def test_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 50)
    done = _here(str(junk))
    assert done.returncode == 2 and "not a log format" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(SpamdrillError, match="not a log format"):
        doc_of(junk)


# -- privacy and the contract --------------------------------------------------------------

@pytest.mark.unit
def test_anonymize_hashes_people_consistently() -> None:
    doc = analyze([str(DATA / "mail.log")], Filters(year=2026, tz=UTC), options(),
                  anonymized=True)
    text = json.dumps(doc)
    for phase in MANIFEST.values():
        for m in phase:
            assert m["to"] not in text and m["message_id"] not in text
    for secret in ("alice", "carol", "nobody@sender.lab.test", "lab.test>"):
        assert secret not in text, secret
    assert doc["anonymized"] is True
    by_qid: dict[str, set[str]] = {}
    for r in doc["deliveries"]:
        by_qid.setdefault(r["queue_id"], set()).add(r["to"])
    assert all(len(v) == 1 for v in by_qid.values())  # one address, one token
    assert "spamd-overloaded" in text and "postfix/pipe" in text  # the words stay


@pytest.mark.unit
def test_json_contract_shape(merged: dict[str, Any]) -> None:
    assert merged["schema"] == "spamdrill.logs/1"
    for key in ("settings", "inputs", "totals", "modes", "per_hour", "episodes",
                "deliveries", "wrapper_bounced", "unscanned", "scanned_late", "unexplained",
                "still_queued", "skipped", "plot"):
        assert key in merged, key
    point = merged["plot"]["stage_delays"][0]
    assert set(point) >= {"t", "deliveries", "before_queue_manager", "in_queue_manager",
                          "connection", "transmission", "scan"}
    hours = merged["plot"]["outcomes_per_hour"]
    assert sum(h.get("bounced", 0) for h in hours) == merged["totals"]["fates"]["bounced"]
    for m in merged["modes"]:
        assert m["deliveries"] >= m["root_cause"] and m["layer"]



# -- never silently empty ---------------------------------------------------------------------

KERNEL = "Nov 29 16:10:28 mx1 kernel: [1.0] eth0: link up\n"


@pytest.mark.parametrize("make,args,cause", [
    (lambda p: p.write_bytes(b""), [], "empty input"),
    (lambda p: p.write_bytes((DATA / "mail.log").read_bytes()),
     ["--format", "journal-json"], "no line recognised"),
    (lambda p: p.write_bytes((DATA / "mail.log").read_bytes()),
     ["--since", "2027-01-01"], "nothing in the time window"),
    (lambda p: p.write_text(KERNEL * 3), [], "no delivery or scan"),
])
@pytest.mark.lab  # the command line, in subprocesses
def test_nothing_to_diagnose_is_a_warning_and_its_own_exit(tmp_path: Path, make: Any,
                                                         args: list[str], cause: str) -> None:
    """An empty input, a --format that reads none of 410 lines, a --since past the log's
    end, a log without mail: each names its cause and exits 4, never 'no failure mode'."""
    log = tmp_path / "mail.log"
    make(log)
    done = _cli("--tz", "UTC", "--year", "2026", *args, str(log))
    assert done.returncode == 4, done.stderr
    assert f"warning: nothing to diagnose ({cause})" in done.stderr
    assert "no failure mode found" not in done.stdout
    assert "not a log without trouble" in done.stdout
    as_json = _cli("--tz", "UTC", "--year", "2026", *args, "--json", "-", str(log))
    assert as_json.returncode == 4
    assert json.loads(as_json.stdout)["empty"]["cause"] == cause


@pytest.mark.unit
@pytest.mark.parametrize("text,filters,cause", [
    ("", {}, "empty input"),
    (None, {"format": "journal-json"}, "no line recognised"),
    (None, {"hosts": frozenset({"elsewhere"})}, "no line from these hosts"),
    (KERNEL * 3, {}, "no delivery or scan"),
])
def test_each_silence_has_its_cause(tmp_path: Path, text: str | None,
                                    filters: dict[str, Any], cause: str) -> None:
    log = tmp_path / "mail.log"
    if text is None:
        log.write_bytes((DATA / "mail.log").read_bytes())
    else:
        log.write_text(text)
    doc = doc_of(log, **filters)
    assert doc["empty"] is not None and doc["empty"]["cause"] == cause
    if cause == "no line recognised":
        assert "--format journal-json recognised none of the 410 line(s)" in \
            doc["empty"]["why"]


@pytest.mark.unit
def test_since_past_the_end_names_the_logs_span() -> None:
    doc = doc_of(DATA / "mail.log", since=formats.IsoClock()("2026-12-01T00:00:00+00:00"))
    assert doc["empty"]["cause"] == "nothing in the time window"
    assert "2026-11-29T16:09:16+00:00" in doc["empty"]["why"]
    assert doc_of(DATA / "mail.log")["empty"] is None


# -- a wrapper's silent bounce at maildrop's timeout ---------------------------------------------

WRAPPED = """\
Nov 29 16:05:28 mx1 postfix/smtpd[19310]: 4CE0F20CC80: client=unknown[127.0.0.1]
Nov 29 16:05:28 mx1 postfix/cleanup[19321]: 4CE0F20CC80: message-id=<m1@example.test>
Nov 29 16:05:28 mx1 postfix/qmgr[19307]: 4CE0F20CC80: from=<a@example.test>, size=992, \
nrcpt=1 (queue active)
Nov 29 16:10:30 mx1 postfix/pipe[19333]: 4CE0F20CC80: to=<bob@example.test>, \
relay=maildrop, delay=302, delays=0/0/0/{d}, dsn=5.3.0, status=bounced (Command died with \
status {status}: "/usr/local/bin/maildrop_wrapper"{output})
Nov 29 16:10:30 mx1 postfix/qmgr[19307]: 4CE0F20CC80: removed
"""


def _wrapped(tmp_path: Path, d: float, status: int = 100, output: str = "") -> dict[str, Any]:
    log = tmp_path / "wrapped.log"
    log.write_text(WRAPPED.format(d=d, status=status, output=output))
    doc = analyze([str(log)], Filters(year=2026, tz=UTC), Options(tz=UTC))
    (rec,) = doc["deliveries"]
    return rec


@pytest.mark.unit
def test_a_silent_bounce_at_maildrops_timeout_is_named(tmp_path: Path) -> None:
    """The field report's Perl wrappers exit 100 on maildrop's 75 and pass none of its
    words on: the pipe time at maildrop's 300 s is what tells."""
    rec = _wrapped(tmp_path, 301.2)
    assert rec["modes"] == ["wrapper-bounced-transient", "maildrop-timeout"]
    assert "probably maildrop's timeout turned into a bounce by the wrapper" in \
        rec["notes"][0]
    assert "301.2 s" in rec["notes"][0] and "exited 100" in rec["notes"][0]
    assert "delays=0/0/0/301.2" in rec["evidence"][0]["text"]
    assert "postcat -q 4CE0F20CC80" in rec["next"]
    for d, status in ((200.0, 100), (301.2, 75), (310.0, 100)):
        other = _wrapped(tmp_path, d, status)
        assert "maildrop-timeout" not in other["modes"], (d, status)
    spoken = _wrapped(tmp_path, 301.2, output=". Command output: maildrop: Timeout quota "
                                              "exceeded. ")
    assert spoken["modes"][:2] == ["wrapper-bounced-transient", "maildrop-timeout"]
    assert not any("probably" in n for n in spoken["notes"])


# -- one catalog of fixes, the next commands, the evidence ------------------------------------

@pytest.mark.unit
def test_every_mode_carries_budgets_fix_and_next_commands(merged: dict[str, Any]) -> None:
    from spamdrill import fixes
    from spamdrill.vocab import Mode

    assert merged["modes"]
    for m in merged["modes"]:
        assert m["fix"] == fixes.fix(m["mode"]) and m["next"], m
    for r in merged["deliveries"]:
        assert [f["mode"] for f in r["fixes"]] == r["modes"]
        assert all(f["fix"] == fixes.fix(f["mode"]) for f in r["fixes"])
        assert r["next"] and all("QID" not in c for c in r["next"])
    assert set(fixes.CATALOG) == set(Mode)


@pytest.mark.unit
def test_budget_fixes_come_from_the_catalog() -> None:
    """What budget suggests is the catalog's text with its numbers filled in."""
    import re

    from spamdrill import fixes
    from spamdrill.budget import inputs, model
    from spamdrill.system import reader

    examples = Path(__file__).parent.parent / "examples"
    seen = 0
    for example in ("field-report", "debian-stock"):
        system = reader.read(examples / example, reader.Overrides())
        for setup in inputs.setups(system, inputs.WhatIf(None, None, 1200.0, None)):
            for r in model.evaluate(setup):
                texts = [fixes.CATALOG[fixes.Mode(r.mode)].text, fixes.UNBOUNDED,
                         fixes.CONNECT_RETRIES, fixes.SPAMC_T]
                shapes = [re.escape(t).replace(r"\{firewall\}", ".*")
                          for t in texts]
                shapes = [re.sub(r"\\\{\w+\\\}", r"\\S+", s) for s in shapes]
                # the budget states its margin below the limit after the catalog's words
                shapes = [s + r"(?: \([^()]* below maildrop's [^()]*\))?" for s in shapes]
                for v in r.violations:
                    if v.inner.startswith("spamc worst case"):
                        seen += 1
                        assert any(re.fullmatch(s, v.fix) for s in shapes), v.fix
                    else:  # the wrapper's and Postfix's limits: the catalog's words too
                        assert v.fix in (fixes.DELIVER, fixes.DEFERS, fixes.WRAPPER, fixes.CATALOG[
                            fixes.Mode.FILTER_FAILED].text), v.fix
    assert seen


@pytest.mark.unit
def test_json_holds_every_field_docs_logs_md_promises(merged: dict[str, Any]) -> None:
    """The DELIVERY record of docs/LOGS.md, evidence included, in every list."""
    import re

    text = (Path(__file__).parent.parent / "docs" / "LOGS.md").read_text()
    block = text.split("`DELIVERY`:", 1)[1].split("```jsonc", 1)[1].split("```", 1)[0]
    block = re.sub(r"//[^\n]*", "", block)
    inner = re.sub(r"\{[^{}]*\}", "", block[block.index("{") + 1:])  # nested objects out
    promised = set(re.findall(r'"(\w+)"', inner))
    assert {"evidence", "fixes", "next", "delays", "scans"} <= promised
    lists = ("deliveries", "wrapper_bounced", "unscanned", "scanned_late", "unexplained")
    checked = 0
    for name in lists:
        for rec in merged[name]:
            assert promised <= set(rec), (name, promised - set(rec))
            assert rec["evidence"] and rec["evidence"][0]["text"], name
            checked += 1
    assert checked > len(merged["deliveries"])
    assert "empty" in merged and "outside_window" in merged["inputs"][0]


@pytest.mark.unit
def test_evidence_shows_the_lines_behind_every_diagnosis(merged: dict[str, Any]) -> None:
    import io

    from rich.console import Console

    from spamdrill.logs import render

    def shown(evidence: bool) -> str:
        buf = io.StringIO()
        render.render(Console(file=buf, width=400, color_system=None), merged, evidence)
        return buf.getvalue()

    plain, full = shown(False), shown(True)
    for r in merged["deliveries"]:
        for ev in r["evidence"]:
            assert f"{ev['input']}:{ev['line']} {ev['text']}" in full, ev
        for f in r["fixes"]:
            assert f"fix ({f['mode']}): {f['fix']}" in full
    assert "fix (" not in plain


# -- spamd stopped, then started again while deliveries still ran -------------------------

OUTAGE = DATA / "outage"


def _outage_doc(spamd_log: Path, logs: Path = OUTAGE) -> list[dict[str, Any]]:
    """The e2e-spamd-outage drill's real logs (Postfix's times are whole seconds); the
    first tries of the wrappers that failed it: w1-w4 bounced or lost every message."""
    doc = analyze([str(logs / "postfix.log"), str(spamd_log), str(logs / "maildrop.log")],
                  Filters(year=2026, tz=UTC), Options(Thresholds(slow=1, slow_scan=1)))
    return [r for r in doc["deliveries"] if r["relay"] in ("w1", "w2", "w3", "w4")
            and r["attempt"] == 1]


@pytest.mark.unit
def test_a_stopped_spamd_is_named_refused() -> None:
    failed = _outage_doc(OUTAGE / "spamd.log")
    assert len(failed) == 12
    assert all(r["modes"][-1] == "spamd-refused" for r in failed), failed


@pytest.mark.unit
def test_a_restart_during_the_deliveries_is_not_an_overload(tmp_path: Path) -> None:
    """spamc connected while spamd was down: refused, although spamd was back (its first
    children starting, 'child states: BS') before the deliveries ended -- not 'every child
    was busy' from the states of a server that came up after spamc gave up."""
    lines = (OUTAGE / "spamd.log").read_text().splitlines(keepends=True)
    restart = next(i for i, ln in enumerate(lines) if i and "server started on" in ln)
    end = next(i for i in range(restart, len(lines)) if "child states" in lines[i])
    t_restart = lines[restart][11:19]
    for i in range(restart, end + 1):  # back two seconds sooner: within the deliveries
        lines[i] = lines[i].replace(t_restart, "12:20:58")
    (tmp_path / "spamd.log").write_text("".join(lines))
    failed = _outage_doc(tmp_path / "spamd.log")
    assert len(failed) == 12
    for r in failed:
        assert "spamd-refused" in r["modes"] and "spamd-overloaded" not in r["modes"], r


@pytest.mark.unit
def test_a_restart_with_no_stop_logged_before_it_is_not_an_overload() -> None:
    """A loaded CI run's drill: spamd stopped two children into its start-up without its
    'server killed' line, the last words of that server 'child states: BBS'; started
    again six seconds later. Its deliveries failed at once: refused, said as unsure."""
    logs = DATA / "outage-unlogged"
    failed = _outage_doc(logs / "spamd.log", logs)
    assert len(failed) == 12
    for r in failed:
        assert r["modes"][-1] == "spamd-refused" and "spamd-overloaded" not in r["modes"], r
        assert any("without logging it" in n for n in r["notes"]), r["notes"]
