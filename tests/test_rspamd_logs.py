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


def test_a_dead_nameserver_is_told_from_a_task_timeout() -> None:
    """rspamd-dns-dead: each ham's lookups timed out and task_timeout ended the scan with
    the resolver's own wait pending (``subsystem: rspamd dns``); GTUBE asked no DNS."""
    d = diagnose(lines("dns-dead.rspamd.log"))
    assert d.counts() == {"rspamd-dns-dead": 4}
    assert all(i.fate == Fate.DELIVERED and "partial verdict" in i.why and "DNS" in i.why
               for i in d.items)
    assert d.unread == []


def test_lookups_timing_out_without_a_task_timeout_are_a_dead_nameserver_too() -> None:
    """Under a task_timeout longer than the lookups (benchmarks/rspamd_dns_dead.py), the
    scan is answered without their results: two names timed out is the nameserver; one
    name alone is that zone's servers, not diagnosed."""
    timed_out = [ln for ln in lines("dns-dead.rspamd.log")
                 if "rspamd_task_timeout" not in ln and "rspamd_session_cleanup" not in ln]
    d = diagnose(timed_out)
    assert d.counts() == {"rspamd-dns-dead": 4}
    assert all("lookups timed out" in i.why for i in d.items)
    one = [ln for ln in timed_out if "list.dnswl.org" not in ln and "mailspike" not in ln]
    assert diagnose(one).items == []


def test_a_slow_rule_is_named_by_what_task_timeout_cut_short() -> None:
    """rspamd-slow-rule: the pending event is the rule's own TCP request, named by its
    symbol (``scheduled from: SPAMDRILL_SLOW_RULE``): a slow rule, not Redis nor DNS."""
    d = diagnose(lines("slow-rule.rspamd.log"))
    assert d.counts() == {"rspamd-slow-rule": 4}
    assert all("SPAMDRILL_SLOW_RULE" in i.why and i.fate == Fate.DELIVERED
               for i in d.items)
    # without those lines nothing tells what held the scan: a task timeout, as before
    bare = [ln for ln in lines("slow-rule.rspamd.log") if "rspamd_session_cleanup" not in ln]
    assert diagnose(bare).counts() == {"rspamd-task-timeout": 4}


def test_a_dropped_redis_is_a_task_timeout_held_by_redis() -> None:
    d = diagnose(lines("redis-dropped.rspamd.log"))
    assert d.counts() == {"rspamd-task-timeout": 4}
    assert all("held by Redis" in i.why for i in d.items)


def test_redis_past_its_timeout_without_a_task_timeout_is_redis_slow() -> None:
    """redis-slow-past-timeout: each request waited out the 1 s timeout, each scan was
    answered at about 4-5 s without Redis; task_timeout never fired."""
    d = diagnose(lines("redis-slow-past-timeout.rspamd.log"))
    assert d.counts() == {"redis-slow": 4}
    assert all(i.fate == Fate.DELIVERED and "timed out" in i.evidence for i in d.items)
    # below its timeout (redis-slow) a slow Redis logs nothing to tell it by
    assert diagnose(lines("redis-slow.rspamd.log")).items == []


def test_rspamd_stopping_names_the_stop_and_the_scan_it_finished() -> None:
    """rspamd-stopping: SIGTERM to every process; the one scan a worker held finished
    after its own ``terminating`` line, scanned; the stop itself is a finding (mail that
    arrives meanwhile is not in rspamd's log at all)."""
    d = diagnose(lines("stopping.rspamd.log"))
    assert d.counts() == {"rspamd-stopping": 2}
    stop = next(i for i in d.items if i.key.startswith("rspamd stopped"))
    assert stop.key == "rspamd stopped 2026-12-07 06:30:40"
    assert stop.fate == Fate.DELIVERED_UNSCANNED and "16 s for 5 processes" in stop.why
    assert "1 scan(s) in flight" in stop.why
    scan = next(i for i in d.items if i is not stop)
    assert scan.key.startswith("<ham-8985762000004-") and scan.fate == Fate.DELIVERED
    # the scans answered before the stop are not findings
    assert sum(1 for s in d.scans.values() if s.stop >= 0) == 1


def test_two_stops_are_two_findings() -> None:
    log = lines("stopping.rspamd.log")
    # a second run: the same lines (the same tags: the same scans), a second stop
    d = diagnose([*log, *log])
    assert sum(1 for i in d.items if i.key.startswith("rspamd stopped")) == 2


def test_trouble_it_cannot_read_is_said_never_a_clean_log() -> None:
    t = "2026-12-07 03:32:32 #1(normal) <aa11bb>; {mod}; {fn}: {text}"
    d = diagnose([t.format(mod="lua", fn="fuzzy_check_cb", text="fuzzy check error: "
                           "connection refused"),
                  t.format(mod="task", fn="rspamd_task_write_log", text="a format of "
                           "its own")])
    assert d.items == [] and len(d.unread) == 2


def test_logs_says_what_it_did_not_understand() -> None:
    """``spamdrill logs --rspamd-log``: a line of trouble it did not read is counted and
    quoted, and a log without a scan is said to be no all-clear."""
    import json

    from click.testing import CliRunner

    from spamdrill.cli import cli

    postfix_log = str(DATA / "milter.postfix.log")
    done = CliRunner().invoke(cli, ["logs", postfix_log, "--rspamd-log",
                                    str(DATA / "dns-dead.rspamd.log"), "--json", "-"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["rspamd"]["modes"] == {"rspamd-dns-dead": 4} and doc["rspamd"]["unread"] == 0
    odd = DATA / "milter-accept.postfix.log"  # Postfix's only: no scan of rspamd's
    shown = CliRunner().invoke(cli, ["logs", postfix_log, "--rspamd-log", str(odd)])
    assert "no scan of rspamd's found" in shown.output and "not a sign" in shown.output


def test_a_stop_behind_the_milter_takes_the_fate_postfixs_lines_show() -> None:
    """rspamd's log cannot show the mail that arrived while it was stopped: with Postfix's
    lines (tempfail), the stop's fate is theirs, deferred, not rspamc's unscanned."""
    d = diagnose(lines("milter-tempfail.postfix.log", "stopping.rspamd.log"))
    [stop] = [i for i in d.items if i.key.startswith("rspamd stopped")]
    assert stop.fate == Fate.DEFERRED and "milter_default_action" in stop.why


def test_a_stop_behind_the_milter_defers_even_the_scan_it_finished() -> None:
    """e2e-rspamd-milter-stopping (tempfail): a normal worker finished the scan in flight
    after its stop line, but the proxy had gone: cleanup read "Application error" and the
    sender got 451 4.7.1; one finding for that message (Postfix's), the sessions refused
    after it, and the stop, deferred as Postfix's lines show."""
    d = diagnose(lines("milter-stopping.postfix.log", "milter-stopping.rspamd.log"))
    by = {i.key: i for i in d.items}
    inflight = by["5BF63241D77"]
    assert inflight.mode == Mode.MILTER_UNAVAILABLE and inflight.fate == Fate.DEFERRED
    assert "Application error" in inflight.why and "in time" not in inflight.why
    assert sum(1 for i in d.items if i.key == "5BF63241D77") == 1
    assert by["rspamd stopped 2026-12-07 06:52:08"].fate == Fate.DEFERRED
    assert d.counts()["milter-unavailable"] == 5
    # rspamd's log alone: the finished scan carries Postfix's qid, and the verdict never
    # reached Postfix: not "scanned"
    alone = diagnose(lines("milter-stopping.rspamd.log"))
    [scan] = [i for i in alone.items if i.key == "5BF63241D77"]
    assert scan.mode == Mode.RSPAMD_STOPPING and scan.fate == Fate.DEFERRED
