"""rspamd's log lines and Postfix's milter lines, diagnosed in the shared vocabulary, on
what the lab's real programs wrote during the rspamd drills (tests/data/rspamd-logs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.logs.rspamd import diagnose
from spamdrill.vocab import Fate, Mode

pytestmark = pytest.mark.unit
DATA = Path(__file__).parent / "data" / "rspamd-logs"


def lines(*names: str) -> list[str]:
    return [ln for n in names for ln in (DATA / n).read_text().splitlines()]


def test_a_healthy_milter_finds_nothing() -> None:
    d = diagnose(lines("milter.postfix.log", "milter.rspamd.log"))
    assert d.items == [] and d.lines > 0
    # each scan joined to Postfix's queue id by rspamd's qid:
    assert sum(1 for s in d.scans.values() if s.qid) == 3


def test_accept_lets_each_message_in_unscanned() -> None:
    d = diagnose(lines("milter-accept.postfix.log"))
    assert d.counts() == {"milter-unavailable": 3}
    assert all(i.fate == Fate.DELIVERED_UNSCANNED and "accept" in i.why
               and "Connection refused" in i.evidence for i in d.items)
    assert all(len(i.key) == 11 for i in d.items)  # Postfix's queue ids


def test_tempfail_refuses_each_session_once() -> None:
    """The three messages' first sessions and the lab's own greeting probe were refused
    (451 4.7.1, logged from CONNECT on); the retries, scanned, are not findings."""
    d = diagnose(lines("milter-tempfail.postfix.log", "milter-tempfail.rspamd.log"))
    assert d.counts() == {"milter-unavailable": 4}
    assert all(i.fate == Fate.DEFERRED and i.key.startswith("NOQUEUE smtpd[")
               and "451 4.7.1" in i.why and "EHLO" in i.why for i in d.items)


def test_a_frozen_redis_is_a_task_timeout_with_a_partial_verdict() -> None:
    d = diagnose(lines("redis-frozen.rspamd.log"))
    assert d.counts() == {"rspamd-task-timeout": 4}
    assert all(i.fate == Fate.DELIVERED and "partial verdict" in i.why
               and i.key.startswith("<ham-") for i in d.items)
    # rspamd's own time is task_timeout + one Redis timeout (8.5 s); rspamc waited 9.0 s
    assert all(s.ms is not None and 8400 < s.ms < 8700 for s in d.scans.values()
               if s.timed_out)


def test_redis_errors_without_a_timeout_are_redis_down_and_soft_reject_defers_by_milter() -> None:
    t = "2026-12-07 03:32:32 #1(normal) <{tag}>; {mod}; {fn}: {text}"
    log = [t.format(tag="aa11bb", mod="lua", fn="lua_redis_cb",
                    text="got error connection refused when talking to redis"),
           t.format(tag="aa11bb", mod="task", fn="rspamd_task_write_log",
                    text="id: <m1@x>, qid: <ABC123>, ip: 1.2.3.4, (default: F (no action): "
                         "[1.00/15.00] []), len: 9, time: 12.0ms, dns req: 0"),
           t.format(tag="cc22dd", mod="task", fn="rspamd_task_timeout",
                    text="processing of task time out: 8.0s spent; 8.0s limit; forced"),
           t.format(tag="cc22dd", mod="task", fn="rspamd_task_write_log",
                    text="id: <m2@x>, ip: 1.2.3.4, (default: T (soft reject): [0.00/15.00] "
                         "[]), len: 9, time: 8000.1ms, forced: soft reject \"timeout\""),
           t.format(tag="ee33ff", mod="task", fn="rspamd_task_timeout",
                    text="processing of task time out: 8.0s spent; 8.0s limit; forced"),
           t.format(tag="ee33ff", mod="task", fn="rspamd_task_write_log",
                    text="id: <m3@x>, qid: <GHI789>, ip: 1.2.3.4, (default: T (soft reject): "
                         "[0.00/15.00] []), len: 9, time: 8000.1ms, forced: soft reject"),
           "Dec 07 03:32:31 mx postfix/cleanup[7]: DEF456: message-id=<m2@x>"]
    d = diagnose(log)
    by = {i.key: i for i in d.items}
    assert by["ABC123"].mode == Mode.REDIS_DOWN and by["ABC123"].fate == Fate.DELIVERED
    # joined to its queue id by the Message-ID Postfix's cleanup logged; no qid: not a
    # milter's scan, and rspamc delivers a soft reject (redis-frozen-soft-reject)
    assert by["DEF456"].mode == Mode.RSPAMD_TASK_TIMEOUT
    assert by["DEF456"].fate == Fate.DELIVERED and "X-Spam: yes" in by["DEF456"].why
    # a milter's scan (its qid): the soft reject is a 4xx, the sender tries again
    assert by["GHI789"].fate == Fate.DEFERRED and "soft reject" in by["GHI789"].why


def test_other_lines_and_outside_text_are_data() -> None:
    d = diagnose(["random text", "Dec 07 mx postfix/smtpd[1]: warning: milter "
                  "inet:x: [red]boom[/red]", "<zz>; task; rspamd_task_write_log: id: ",
                  "\x00\x1b[31m"])
    assert d.items == []  # a warning with no session and no refusal says nothing yet


def test_logs_reads_rspamds_own_log_beside_postfixs() -> None:
    """``spamdrill logs FILES --rspamd-log FILE``: the table and the JSON's ``rspamd``; a
    log with rspamd's findings and no spamd scan is not "nothing to diagnose" (exit 4)."""
    import json

    from click.testing import CliRunner

    from spamdrill.cli import cli

    postfix_log = str(DATA / "milter-accept.postfix.log")
    done = CliRunner().invoke(cli, ["logs", postfix_log, "--rspamd-log",
                                    str(DATA / "milter.rspamd.log"), "--json", "-"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["rspamd"]["modes"] == {"milter-unavailable": 3}
    assert {i["fate"] for i in doc["rspamd"]["items"]} == {"delivered unscanned"}
    missing = CliRunner().invoke(cli, ["logs", postfix_log, "--rspamd-log", "/nonexistent"])
    # the one-line error main() prints (CliRunner stops before main's handler)
    assert str(missing.exception) == "cannot read /nonexistent: No such file or directory"


def test_a_milter_that_outlasts_postfixs_timeout_is_cleanups_to_log() -> None:
    """e2e-rspamd-milter-timeout: the scan held 8 s, milter_content_timeout 4 s; cleanup
    logs the timeout for the message it holds, which accept then queues unscanned."""
    d = diagnose(lines("milter-timeout.postfix.log"))
    assert d.counts() == {"milter-unavailable": 2}
    assert all(i.fate == Fate.DELIVERED_UNSCANNED and "SMFIC_BODYEOB" in i.evidence
               and len(i.key) == 11 for i in d.items)
    refused = [*lines("milter-timeout.postfix.log"),
               "Dec 07 03:48:48 mx postfix/cleanup[16334]: DD604224C08: milter-reject: "
               "END-OF-MESSAGE from unknown[127.0.0.1]: 4.7.1 Service unavailable - try "
               "again later; from=<s@x> to=<a@y> proto=ESMTP helo=<h>"]
    by = {i.key: i for i in diagnose(refused).items}
    assert by["DD604224C08"].fate == Fate.DEFERRED  # tempfail: the sender keeps it
    assert by["DE6B6225FC4"].fate == Fate.DELIVERED_UNSCANNED


def test_anonymize_hashes_rspamds_message_ids_too() -> None:
    import json

    from click.testing import CliRunner

    from spamdrill.cli import cli

    done = CliRunner().invoke(cli, ["logs", str(DATA / "milter.postfix.log"), "--rspamd-log",
                                    str(DATA / "redis-frozen.rspamd.log"), "--anonymize",
                                    "--json", "-"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["anonymized"] and doc["rspamd"]["modes"] == {"rspamd-task-timeout": 4}
    assert "spamdrill.lab.test" not in json.dumps(doc["rspamd"])
