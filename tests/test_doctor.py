"""spamdrill doctor: the logs' diagnosis joined to the budget, the diffs, and the budget
after them (unit tier: the wrapper is not run, its worst assumed; the field-report
example and the logs fixtures)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from spamdrill.doctor import diagnose as dg
from spamdrill.doctor import host
from spamdrill.doctor import propose as pr
from spamdrill.errors import SpamdrillError
from spamdrill.logs.reader import Filters
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Options

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"
INCIDENT = FIELD / "incident/mail.log"
FIXTURE = ROOT / "tests/data/logs/mail.log"


def logs(path: Path) -> dict[str, Any]:
    return analyze([str(path)], Filters(None, None, frozenset(), 2026, UTC, None),
                   Options(tz=UTC))


@pytest.fixture(scope="module")
def incident() -> dict[str, Any]:
    return logs(INCIDENT)


@pytest.fixture(scope="module")
def field() -> host.Budget:
    return host.budget(FIELD, measure=False)


@pytest.mark.unit
def test_incident_log_is_what_the_generator_writes(tmp_path: Path) -> None:
    """The committed incident is the generator's output from the real fixture lines."""
    before = INCIDENT.read_text()
    subprocess.run(["python3", str(FIELD / "make_incident.py")], check=True,
                   capture_output=True)
    assert INCIDENT.read_text() == before


@pytest.mark.unit
def test_field_report_chain_from_full_accept_queue_to_bounce(
        incident: dict[str, Any], field: host.Budget) -> None:
    d = dg.diagnose(incident, field.doc)
    worst = d.whys[0]
    assert worst.observed.chain == ("wrapper-bounced-transient", "maildrop-timeout",
                                    "spamd-silent")
    assert worst.observed.fates == {"bounced": 1}
    assert worst.observed.pipe_s == 302
    # the log cannot tell silent from a full accept queue; the budget's numbers can
    assert worst.mode == "spamd-accept-queue-full"
    assert worst.prediction is not None and worst.prediction["worst_s"] == 302
    assert "3 tries" in worst.prediction["why"] and "2 sleep" in worst.prediction["why"]
    assert worst.agree is True
    assert "maildrop global timeout" in worst.said and "302 s" in worst.said
    assert "Debian's maildrop" in worst.limit_source
    assert "status 100" in worst.wrapper


@pytest.mark.unit
def test_field_report_cascade_names_its_origin(incident: dict[str, Any]) -> None:
    ep = incident["episodes"][0]
    assert ep["started_by"][0]["queue_id"] == "456C020CA16"
    assert ep["started_by"][0]["message_id"].startswith("<ham-7008-")
    assert ep["fates"] == {"delivered unscanned": 5}


@pytest.mark.unit
def test_field_report_diff_brings_every_diagnosed_mode_within_budget(
        incident: dict[str, Any], field: host.Budget, tmp_path: Path) -> None:
    """Apply the diff to a copy with patch(1) and rerun the budget on it."""
    d = dg.diagnose(incident, field.doc)
    changes = pr.propose(d, field.config)
    assert {c.path for c in changes} == {"/etc/maildroprc", "/etc/postfix/master.cf"}
    mrc = next(c for c in changes if c.path == "/etc/maildroprc")
    assert "+    xfilter \"/usr/bin/spamc -d spamd2-pn -t 100 -n 89 -u $LOGNAME\"" in mrc.diff
    assert "30 s below maildrop's 300 s" in mrc.why
    copy = tmp_path / "root"
    shutil.copytree(FIELD, copy)
    subprocess.run(["patch", "-p1", "-d", str(copy)], input=pr.patch(changes).encode(),
                   check=True, capture_output=True)
    after = host.budget(copy, measure=False)
    assert after.config.wrapper_kind == "spamdrill-deliver"
    rows = {r["mode"]: r for r in after.doc["modes"]}
    diagnosed = {w.mode for w in d.whys if w.mode}
    assert diagnosed >= {"spamd-accept-queue-full", "spamd-overloaded"}
    for mode in diagnosed:
        assert not rows[mode]["violations"], mode
        assert rows[mode]["outcome"] not in ("bounced", "lost"), mode
    assert rows["spamd-accept-queue-full"]["worst_s"] == 3 * 89 + 2  # 31 s under 300
    # and before: the same modes were over a limit
    assert field.doc["modes"][1]["violations"]


@pytest.mark.unit
def test_document_and_after_on_the_field_report(incident: dict[str, Any],
                                                field: host.Budget) -> None:
    d = dg.diagnose(incident, field.doc)
    changes = pr.propose(d, field.config)
    after = host.after(FIELD, field, changes, measure=False)
    doc = host.document(FIELD, [str(INCIDENT)], incident, field.doc, d, changes, after)
    assert doc["schema"] == "spamdrill.doctor/1"
    assert doc["sure"]["within_budget_after"] is True
    margins = {a["mode"]: a["margin_s"] for a in doc["after"]}
    assert margins["spamd-accept-queue-full"] == 31
    assert host.exit_status(doc, incident) == 1


@pytest.mark.unit
def test_disagreement_is_said_with_both_numbers(incident: dict[str, Any]) -> None:
    """The incident's log read against the fixed configs (-n 30, -t 100): the budget
    predicts spamc gives up first (at 100 s at worst), the log shows maildrop's timer
    after 302 s: disagrees."""
    fixed = host.budget(ROOT / "examples/fixed", measure=False)
    d = dg.diagnose(incident, fixed.doc, "maildrop")
    w = d.whys[0]
    assert w.observed.chain[-1] == "spamd-silent"
    assert w.agree is False
    assert "spamc fires first at 100 s" in w.said
    assert "maildrop global timeout fired, pipe(8) ran 302 s: disagrees" in w.said


@pytest.mark.unit
def test_other_transports_are_not_joined(field: host.Budget) -> None:
    """The fixture's lab had transports the field report's host has not (deliver, slow):
    their chains are listed, not joined to this config's budget, and change nothing."""
    d = dg.diagnose(logs(FIXTURE), field.doc, "maildrop")
    slow = next(w for w in d.whys if w.observed.relay == "slow")
    assert slow.mode is None and "transport slow" in slow.said
    joined = {w.observed.relay for w in d.whys if w.mode is not None}
    assert joined == {"maildrop"}


@pytest.mark.unit
def test_permanent_failures_need_no_change(field: host.Budget) -> None:
    doc = {"totals": {"deliveries": 1, "fates": {"bounced": 1}},
           "deliveries": [{"modes": ["unknown-user"], "fate": "bounced",
                           "delays": {"transmission": 0.1}, "text": "user unknown"}]}
    d = dg.diagnose(doc, field.doc)
    assert d.whys == []
    assert pr.propose(d, field.config) == []


@pytest.mark.unit
def test_set_flag_replaces_or_inserts() -> None:
    assert pr.set_flag('xfilter "spamc -t 100 -u x"', "-n", "89") == \
        'xfilter "spamc -t 100 -n 89 -u x"'
    assert pr.set_flag('xfilter "spamc -n 200 -u x"', "-n", "89") == \
        'xfilter "spamc -n 89 -u x"'
    assert pr.set_flag('xfilter "$SPAMC -u x"', "-t", "80") == 'xfilter "$SPAMC -t 80 -u x"'
    assert pr.set_flag('xfilter "cat"', "-t", "80") is None
    assert pr.spamc_flag("spamc -n 89 (connect timeout; -t stays 100)") == ("-n", "89")


@pytest.mark.unit
def test_bad_input_is_one_line(tmp_path: Path) -> None:
    from conftest import spamdrill_here

    r = spamdrill_here("doctor", "--etc", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith("spamdrill: error: no mail log found")
    assert "Traceback" not in r.stderr


@pytest.mark.unit
def test_finds_debians_log_and_its_rotations(tmp_path: Path) -> None:
    import gzip

    log = tmp_path / "var/log"
    log.mkdir(parents=True)
    for name in ("mail.log", "mail.log.1", "mail.err", "mail.log.bak"):
        (log / name).write_text("")
    with gzip.open(log / "mail.log.2.gz", "wt") as fh:
        fh.write("")
    assert [p.name for p in host.find_logs(tmp_path)] == ["mail.log", "mail.log.1",
                                                          "mail.log.2.gz"]


@pytest.mark.unit
def test_journald_when_no_file_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """journalctl's output is read through a pipe (a stand-in prints the fixture's
    journal): the same diagnosis as the file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "journalctl"
    fake.write_text(f"#!/bin/sh\nexec cat {ROOT / 'tests/data/logs/mail.journal.json'}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(host, "journal_readable", lambda: True)
    filters = Filters(None, None, frozenset(), 2026, UTC, None)
    with host.log_sources(tmp_path, [], "yesterday", journal=True) as (paths, shown):
        assert shown[0].startswith("journalctl -o json --no-pager --since yesterday "
                                   "-u postfix@-.service -u spamd.service")
        doc = analyze(paths, filters, Options(tz=UTC))
    assert doc["totals"]["deliveries"] == logs(FIXTURE)["totals"]["deliveries"] == 32
    with pytest.raises(Exception, match="no mail log found"), \
            host.log_sources(tmp_path, [], "yesterday", journal=False):
        pass


@pytest.mark.unit
def test_a_user_who_cannot_read_the_journal_is_told_not_shown_a_quiet_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sudo user outside adm and systemd-journal: journalctl would print nothing and
    exit 0 (only the user's own messages), which read as a host with no trouble. It is a
    one-line error saying what to do, and journalctl is never started."""
    import grp

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "journalctl-started"
    fake = bin_dir / "journalctl"
    fake.write_text(f"#!/bin/sh\ntouch {started}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(host.os, "getegid", lambda: 1000)
    groups = {1000: "alice", 27: "sudo", 4: "adm", 101: "systemd-journal"}
    monkeypatch.setattr(host.grp, "getgrgid", lambda gid: grp.struct_group(
        (groups[gid], "x", gid, [])) if gid in groups else (_ for _ in ()).throw(
            KeyError(gid)))
    monkeypatch.setattr(host.os, "getgroups", lambda: [1000, 27, 5000])
    assert not host.journal_readable()
    with pytest.raises(SpamdrillError) as raised, \
            host.log_sources(tmp_path, [], "yesterday", journal=True):
        pass
    line = raised.value.one_line()
    assert "cannot read the system's journal" in line and "sudo" in line
    assert "\n" not in line and not started.exists()
    for member in (4, 101):  # adm, systemd-journal
        monkeypatch.setattr(host.os, "getgroups", lambda m=member: [1000, 27, m])
        assert host.journal_readable()


@pytest.mark.unit
def test_deliver_gets_a_deadline_under_postfixs_limit_and_one_recipient(
        incident: dict[str, Any], tmp_path: Path) -> None:
    """A time limit at or under spamdrill-deliver's 600 s and no recipient limit of 1:
    the change sets --deadline below the limit and adds the recipient limit in main.cf,
    and the budget after the patch accepts both."""
    copy = tmp_path / "root"
    shutil.copytree(FIELD, copy)
    main = copy / "etc/postfix/main.cf"
    main.write_text("\n".join(
        "maildrop_time_limit = 400s" if ln.startswith("maildrop_time_limit") else ln
        for ln in main.read_text().splitlines()
        if not ln.startswith("maildrop_destination_recipient_limit")) + "\n")
    before = host.budget(copy, measure=False)
    assert before.config.time_limit == 400
    d = dg.diagnose(incident, before.doc)
    changes = pr.propose(d, before.config)
    master = next(c for c in changes if c.path == "/etc/postfix/master.cf")
    assert "--deadline=360" in master.diff
    limit = next(c for c in changes if c.path == "/etc/postfix/main.cf")
    assert "+maildrop_destination_recipient_limit = 1" in limit.diff
    subprocess.run(["patch", "-p1", "-d", str(copy)], input=pr.patch(changes).encode(),
                   check=True, capture_output=True)
    after = host.budget(copy, measure=False)
    assert after.config.recipient_limit == "1"
    limits = {r["layer"]: r for r in after.doc["limits"]}
    assert limits["spamdrill-deliver deadline (defers)"]["seconds"] == 360
    rows = {r["mode"]: r for r in after.doc["modes"]}
    for mode in {w.mode for w in d.whys if w.mode}:
        assert not rows[mode]["violations"], mode


@pytest.mark.unit
def test_a_change_that_breaks_another_mode_is_not_called_within_budget() -> None:
    before = {"modes": [{"mode": "spamd-silent", "outcome": "delivered unscanned",
                         "violations": []},
                        {"mode": "dns-dead", "outcome": "n/a", "violations": []}]}
    after = {"modes": [{"mode": "spamd-silent", "outcome": "bounced",
                        "violations": [{"inner": "a", "outer": "b", "fix": "c"}]},
                       {"mode": "dns-dead", "outcome": "bounced", "violations": []}]}
    assert host.worse_after(before, after) == ["spamd-silent: delivered unscanned -> "
                                               "bounced"]
    assert host.worse_after(before, before) == []


@pytest.mark.unit
def test_a_fix_that_breaks_another_mode_is_drafted_again() -> None:
    """Debian's stock configs (spamc without flags) and the fixture's log: the budget's
    -t 270 for spamd-silent alone lengthens every connect try, and a full accept queue
    would then bounce; the next round adds that mode's -n, and nothing is worse."""
    stock = host.budget(ROOT / "examples/debian-stock", measure=False)
    d = dg.diagnose(logs(FIXTURE), stock.doc, "maildrop")
    first = pr.propose(d, stock.config)
    alone = host.after(ROOT / "examples/debian-stock", stock, first, measure=False)
    assert any(w.startswith("spamd-accept-queue-full")
               for w in host.worse_after(stock.doc, alone))
    changes, after = host.settle(ROOT / "examples/debian-stock", stock, d, measure=False)
    assert '+xfilter "/usr/bin/spamc -t 270 -n 44"' in changes[0].diff
    assert host.worse_after(stock.doc, after) == []
