"""The lab's rspamd configuration, sans-IO: what it overrides of Debian's, and nothing that
could reach outside the lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.lab import rspamd as rspamd_lab

pytestmark = pytest.mark.unit

PATHS = rspamd_lab.Paths(Path("/tmp/spamdrill-test/lab"))
PORTS = rspamd_lab.Ports("127.0.0.1", 40001, 40002, 40003, 40004)


def test_only_the_lab_dns_redis_and_loopback_ports() -> None:
    files = rspamd_lab.render(PATHS, lab_config.RspamdSettings(), PORTS, "127.53.1.2:53")
    options = files["conf/override.d/options.inc"]
    assert 'nameserver = ["127.53.1.2:53"]' in options
    assert 'servers = "127.0.0.1:40004"' in files["conf/override.d/redis.conf"]
    for worker, port in (("normal", 40001), ("controller", 40002), ("proxy", 40003)):
        assert f'bind_socket = "127.0.0.1:{port}"' in files[f"conf/override.d/worker-{worker}.inc"]
    proxy = files["conf/override.d/worker-proxy.inc"]
    assert "milter = yes" in proxy and 'hosts = "127.0.0.1:40001"' in proxy
    # Debian's defaults kept unless the lab config names a value
    assert "task_timeout" not in options and "count" not in files[
        "conf/override.d/worker-normal.inc"]
    for module in ("fuzzy_check", "rspamd_update", "phishing", "url_redirector"):
        assert files[f"conf/override.d/{module}.conf"] == "enabled = false;\n"
    assert "SPAMDRILL_SLEEP" in files["conf/local.d/rspamd.lua"]  # slow:S messages
    assert files["rspamd.conf"].rstrip().endswith('.include "$CONFDIR/rspamd.conf"')
    assert all(str(PATHS.dir) in files[f"conf/override.d/{f}"] for f in ("logging.inc",
                                                                         "options.inc"))


def test_settings_from_a_lab_config() -> None:
    cfg = lab_config.from_dict({"rspamd": {"enabled": True, "workers": 2,
                                           "task_timeout": 3, "redis_timeout": 0.5,
                                           "soft_reject_on_timeout": True}})
    files = rspamd_lab.render(PATHS, cfg.rspamd, PORTS, "127.0.0.1:5353")
    assert "count = 2;" in files["conf/override.d/worker-normal.inc"]
    assert "task_timeout = 3.0s;" in files["conf/override.d/options.inc"]
    assert "soft_reject_on_timeout = true;" in files["conf/override.d/options.inc"]
    assert "timeout = 0.5s;" in files["conf/override.d/redis.conf"]
    with pytest.raises(SpamdrillError, match=r"rspamd\.nope"):
        lab_config.from_dict({"rspamd": {"nope": 1}})


def test_rspamd_reaches_redis_through_the_fault_proxy_when_asked() -> None:
    """The Redis link faults need rspamd's redis.servers on the proxy, never on Redis."""
    ports = rspamd_lab.Ports("127.0.0.1", 40001, 40002, 40003, 40004, redis_proxy=40005)
    files = rspamd_lab.render(PATHS, lab_config.RspamdSettings(redis_proxy=True), ports,
                              "127.53.1.2:53")
    assert files["conf/override.d/redis.conf"].startswith('servers = "127.0.0.1:40005";')
    cfg = lab_config.from_dict({"rspamd": {"enabled": True, "redis_proxy": True}})
    assert cfg.rspamd.redis_proxy


def test_a_path_that_would_break_out_of_a_ucl_string_is_refused() -> None:
    bad = rspamd_lab.Paths(Path('/tmp/x"; .include "/etc/passwd'))
    with pytest.raises(SpamdrillError):
        rspamd_lab.render(bad, lab_config.RspamdSettings(), PORTS, "127.0.0.1:53")


# rspamc 3.4 --mime's real output (the lab's), shortened
MSG = b"From: a@example.org\nSubject: t\n\nhello\n"
HAM = (b"From: a@example.org\nSubject: t\nX-Spam-Scanner: rspamc 3.4\nX-Spam-Scan-Time: 0.02\n"
       b"X-Spam-Action: no action\nX-Spam-Score: 3.50 / 15.00\nX-Spam-Level: ***\n\nhello\n")
SPAM = (b"From: a@example.org\nSubject: t\nX-Spam-Scanner: rspamc 3.4\nX-Spam: yes\n"
        b"X-Spam-Action: reject\nX-Spam-Score: 15.00 / 15.00\n\nhello\n")
REFUSED = (b"From: a@example.org\nSubject: t\nX-Spam-Scanner: rspamc 3.4\n"
           b"X-Spam-Scan-Time: 0.000\nX-Spam-Error: IO write error: Connection refused\n\nhello\n")
TIMEOUT = REFUSED.replace(b"IO write error: Connection refused", b"IO timeout")
# measured (rspamd-stopping): sent while rspamd shut down, queued and reset as it exited
RESET = REFUSED.replace(b"IO write error: Connection refused",
                        b"HTTP IO read error: Connection reset by peer")
# measured (redis-frozen-soft-reject): a ham held past task_timeout, exit 0
SOFT = (b"From: a@example.org\nSubject: t\nX-Spam-Scanner: rspamc 3.4\nX-Spam: yes\n"
        b"X-Spam-Action: soft reject\nX-Spam-Score: 0.00 / 15.00\n\nhello\n")


@pytest.mark.parametrize("stdout,code,outcome,reason,score", [
    (HAM, 0, "ham", "", 3.5), (SPAM, 0, "spam", "", 15.0),
    (SOFT, 0, "spam", "soft reject", 0.0),
    (REFUSED, 1, "unscanned", "refused", None), (TIMEOUT, 1, "unscanned", "read-timeout", None),
    (RESET, 1, "unscanned", "reset", None),
    (b"", 1, "error", "exit 1", None), (MSG, 0, "unscanned", "returned unchanged", None),
    # a verdict header in the body is not a verdict
    (MSG + b"X-Spam-Action: reject\n", 0, "error", "exit 0", None),
])
def test_rspamc_outcomes(stdout: bytes, code: int, outcome: str, reason: str,
                         score: float | None) -> None:
    from spamdrill.proto.rspamc_result import classify

    got = classify(MSG, stdout, "", code)
    assert (got.outcome, got.reason, got.score) == (outcome, reason, score)
    assert classify(MSG, stdout, "", None).outcome == "lost"


def test_every_message_scanned_through_the_milter_is_marked() -> None:
    """milter_headers adds X-Spamd-Result for local senders too (Debian's module skips
    them), so a delivered message shows whether rspamd scanned it."""
    files = rspamd_lab.render(PATHS, lab_config.RspamdSettings(), PORTS, "127.53.1.2:53")
    text = files["conf/local.d/milter_headers.conf"]
    assert 'use = ["x-spamd-result"];' in text and "skip_local = false;" in text
    from spamdrill.proto.mailfile import parse_delivered

    assert parse_delivered(b"X-Spamd-Result: default: False [2.10 / 15.00];\n\nhi\n").scanned
    assert not parse_delivered(b"Subject: x\n\nhi\n").scanned
    # maildrop's xfilter "rspamc --mime": its verdict headers mark a scan; on failure it
    # writes X-Spam-Error and maildrop keeps the message as it was, unmarked
    assert parse_delivered(HAM).scanned
    assert not parse_delivered(MSG).scanned


def test_postfix_milter_settings() -> None:
    from spamdrill.lab import postfix as pf

    t = pf.maildrop_transport(Path("/run/x/maildroprc"))
    plain = pf.render_main_cf(pf.Paths(Path("/tmp/r/postfix")), pf.Settings(transports=(t,)),
                              1, 1)
    assert "milter" not in plain
    s = pf.Settings(transports=(t,), milter="inet:127.0.0.1:11332",
                    milter_default_action="accept")
    text = pf.render_main_cf(pf.Paths(Path("/tmp/r/postfix")), s, 1, 1)
    conf = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert conf["smtpd_milters"] == conf["non_smtpd_milters"] == "inet:127.0.0.1:11332"
    assert conf["milter_default_action"] == "accept"
    assert conf["milter_protocol"] == "6"
    assert "xclient" not in text
    xc = pf.render_main_cf(pf.Paths(Path("/tmp/r/postfix")),
                           pf.Settings(transports=(t,), xclient=True), 1, 1)
    assert "smtpd_authorized_xclient_hosts = 127.0.0.1/32\n" in xc
    for bad in ({"milter": "inet:example.org:11332"}, {"milter": "unix:/x"},
                {"milter": "inet:127.0.0.1:1\nsmtpd_milters = x"},
                {"milter_default_action": "reject"}):
        with pytest.raises(SpamdrillError):
            pf.Settings(transports=(t,), **bad)  # type: ignore[arg-type]


def test_no_xfilter_when_the_milter_scans(tmp_path: Path) -> None:
    from spamdrill.lab import maildrop
    from spamdrill.lab.layout import Layout, secure_dir

    config = lab_config.LabConfig(maildrop=lab_config.MaildropSettings(client="none"))
    assert maildrop.spamc_command(config, "127.0.0.1", 783) == []
    layout = Layout(secure_dir(tmp_path / "lab"))
    text = maildrop.render_filter(layout, config, [])
    assert "xfilter \"" not in text and 'to "$DEFAULT/"' in text
    spamc = maildrop.render_filter(layout, lab_config.LabConfig(), ["/usr/bin/spamc"])
    assert "xfilter \"" in spamc


def test_a_sender_refused_with_a_4xx_then_delivered() -> None:
    from spamdrill.checks import SenderRetried
    from spamdrill.checks.delivery import SENDER_GOT
    from spamdrill.drills.e2e import _enhanced
    from spamdrill.evidence import Evidence
    from spamdrill.history import History, MessageRecord
    from spamdrill.vocab import Fate, Outcome

    def rec(i: int, reason: str, fate: Fate | None) -> MessageRecord:
        return MessageRecord(id=f"m{i}", kind="ham", size=1, start_ns=0, end_ns=1,
                             outcome=Outcome.HAM, exit_code=None, reason=reason, spamc_args=[],
                             fate=fate)

    retried = f"{SENDER_GOT}451 4.7.1 Service unavailable - try again later; sent again: ok"
    check = SenderRetried(status="4.7.1")

    def judge(*ms: MessageRecord) -> str:
        return check.judge(Evidence(History(list(ms)), 1.0, 0.0, "", None, (), None, 1)).status

    assert judge(rec(1, retried, Fate.DELIVERED), rec(2, retried, Fate.DELIVERED)) == "pass"
    assert judge(rec(1, retried, Fate.DELIVERED), rec(2, "in the inbox", Fate.DELIVERED)) \
        == "fail"  # one went straight through: the milter answered it
    assert judge(rec(1, retried, Fate.DEFERRED)) == "fail"  # the retry did not get through
    assert judge(rec(1, retried.replace("4.7.1", "4.3.0"), Fate.DELIVERED)) == "fail"
    assert judge() == "fail"
    assert _enhanced("451 4.7.1 Service unavailable - try again later") == "4.7.1"
    assert _enhanced("503 5.5.1 Error: need MAIL command") == "5.5.1"
    assert _enhanced("SMTPServerDisconnected: gone") == ""


def test_rspamd_drills_are_judged_in_the_shared_vocabulary() -> None:
    """Each rspamd drill stands for a failure mode, with its layer and its fix; a rspamc
    that failed is delivered unscanned (maildrop's exception), and a milter's tempfail is
    a deferral by the sender."""
    from spamdrill import fixes
    from spamdrill.checks.delivery import SENDER_GOT
    from spamdrill.drills.findings import Budgets, case_finding
    from spamdrill.drills.scenario import load_all
    from spamdrill.history import MessageRecord
    from spamdrill.vocab import Fate, Finding, Layer, Mode, Outcome

    modes = {name: sc.failure_mode() for name, sc in load_all().items()
             if "rspamd" in name or "redis" in name}
    assert modes == {"rspamd-down": Mode.RSPAMD_REFUSED, "redis-down": Mode.REDIS_DOWN,
                     "rspamd-stopping": Mode.RSPAMD_STOPPING,
                     "e2e-rspamd-stopping": Mode.RSPAMD_STOPPING,
                     "e2e-rspamd-milter-stopping": Mode.RSPAMD_STOPPING,
                     "redis-dropped": Mode.RSPAMD_TASK_TIMEOUT,
                     "redis-slow": Mode.REDIS_SLOW, "redis-slow-past-timeout": Mode.REDIS_SLOW,
                     "redis-frozen": Mode.RSPAMD_TASK_TIMEOUT,
                     "redis-frozen-soft-reject": Mode.RSPAMD_TASK_TIMEOUT,
                     "rspamd-overloaded": Mode.RSPAMD_OVERLOADED,
                     "rspamd-slow-rule": Mode.RSPAMD_SLOW_RULE,
                     "rspamd-slow-rule-soft-reject": Mode.RSPAMD_SLOW_RULE,
                     "rspamd-dns-dead": Mode.RSPAMD_DNS_DEAD,
                     "e2e-rspamd-slow-rule": Mode.RSPAMD_SLOW_RULE,
                     "e2e-rspamd-slow-rule-soft-reject": Mode.RSPAMD_SLOW_RULE,
                     "e2e-rspamd-milter": None,
                     "e2e-rspamd-milter-accept": Mode.MILTER_UNAVAILABLE,
                     "e2e-rspamd-milter-soft-reject": Mode.RSPAMD_TASK_TIMEOUT,
                     "e2e-rspamd-milter-tempfail": Mode.MILTER_UNAVAILABLE,
                     "e2e-rspamd-milter-timeout": Mode.MILTER_UNAVAILABLE}
    assert Mode.RSPAMD_TASK_TIMEOUT.info.layer == Layer.RSPAMD
    assert Mode.REDIS_DOWN.info.layer == Layer.REDIS
    assert "soft_reject_on_timeout" in fixes.fix(Mode.RSPAMD_TASK_TIMEOUT)

    b = Budgets(maildrop_s=300.0, postfix_s=1000.0, wrapper="bounce-on-75", deadline_s=600.0)

    def rec(**kw: object) -> MessageRecord:
        base: dict[str, object] = dict(id="m", kind="ham", size=1, start_ns=0, end_ns=10**9,
                                       outcome=Outcome.UNSCANNED, exit_code=1,
                                       reason="refused", spamc_args=[], peer="rspamd")
        return MessageRecord(**{**base, **kw})  # type: ignore[arg-type]

    row = case_finding("", [rec()], Mode.RSPAMD_REFUSED, b)
    assert (row.mode, row.finding, row.fate) == (Mode.RSPAMD_REFUSED,
                                                 Finding.DELIVERS_UNSCANNED,
                                                 Fate.DELIVERED_UNSCANNED)
    assert "rspamc failed" in row.why
    retried = rec(outcome=Outcome.HAM, peer="postfix", fate=Fate.DELIVERED, deferrals=1,
                  reason=f"{SENDER_GOT}451 4.7.1 Service unavailable; sent again: ok")
    row = case_finding("", [retried], Mode.MILTER_UNAVAILABLE, b)
    assert (row.finding, row.fate) == (Finding.DEFERS, Fate.DEFERRED)
    assert row.why.startswith("refused at SMTP (451 4.7.1") and not row.finding.crosses_budget


def test_the_milter_content_timeout_reaches_main_cf() -> None:
    from spamdrill.lab import postfix as pf

    t = pf.maildrop_transport(Path("/run/x/maildroprc"))
    s = pf.Settings(transports=(t,), milter="inet:127.0.0.1:11332", milter_content_timeout=4)
    assert "milter_content_timeout = 4s\n" in pf.render_main_cf(
        pf.Paths(Path("/tmp/r/postfix")), s, 1, 1)
    default = pf.Settings(transports=(t,), milter="inet:127.0.0.1:11332")
    assert "milter_content_timeout" not in pf.render_main_cf(
        pf.Paths(Path("/tmp/r/postfix")), default, 1, 1)
    with pytest.raises(SpamdrillError):
        pf.Settings(transports=(t,), milter_content_timeout=-1)


def test_a_reason_seen_condition_counts_the_answer_the_drill_is_about() -> None:
    """The soft-reject drill's condition: without rspamd's soft reject on enough messages
    (soft_reject_on_timeout not in effect), the drill proves nothing."""
    from spamdrill import checks
    from spamdrill.evidence import Evidence
    from spamdrill.history import History, MessageRecord

    def rec(i: int, reason: str) -> MessageRecord:
        return MessageRecord(f"m{i}", "ham", 1, 0, 10**9, "spam", 0, reason, [])

    spec = checks.ReasonSeen(pattern="^soft reject$", min=2)
    soft = Evidence(History([rec(0, "soft reject"), rec(1, "soft reject")]), 1.0, 300.0)
    assert spec.judge(soft).ok
    partial = Evidence(History([rec(0, "soft reject"), rec(1, "")]), 1.0, 300.0)
    assert not spec.judge(partial).ok
    assert checks.CHECKS["reason_seen"] is checks.ReasonSeen


@pytest.mark.parametrize("addr", ["93.184.216.34", "not-an-address", "1.2.3.4\nX"])
def test_the_postfix_targets_client_addr_is_an_ipv4_address(addr: str) -> None:
    """XCLIENT's ADDR goes on the SMTP command line: only an address, never text."""
    import msgspec

    from spamdrill.drills.e2e import PostfixTarget

    if addr == "93.184.216.34":
        assert msgspec.convert({"kind": "postfix", "client_addr": addr},
                               PostfixTarget).client_addr == addr
        return
    with pytest.raises(msgspec.ValidationError, match="not an IPv4 address"):
        msgspec.convert({"kind": "postfix", "client_addr": addr}, PostfixTarget)


def test_a_scan_counts_as_in_flight_at_the_stop_only_when_finished_after_it() -> None:
    """rspamd-stopping's evidence: a scan its worker logged after that worker's own
    SIGTERM line; a scan before it, or another worker's, proves nothing."""
    from spamdrill.drills.nemesis.rspamd import finished_after_term

    term = ("2026-12-07 06:10:26 #1646(normal) <06b166>; main; rspamd_worker_term_handler: "
            "terminating after receiving signal Terminated")

    def scan(pid: int, mid: str) -> str:
        return (f"2026-12-07 06:10:26 #{pid}(normal) <238f7f>; task; rspamd_task_write_log: "
                f"id: <{mid}>, ip: 93.184.216.34, (default: F (no action): [2.10/15.00]")

    assert finished_after_term("\n".join([scan(1646, "a@x"), term, scan(1646, "b@x"),
                                           scan(1645, "c@x")])) == ["b@x"]
    assert finished_after_term("\n".join([scan(1646, "a@x"), term])) == []
    # the controller's or the proxy's termination is not a scanner's
    assert finished_after_term("\n".join([term.replace("(normal)", "(controller)"),
                                           scan(1646, "a@x")])) == []


def test_the_budget_bounds_a_stopping_rspamd_and_a_slow_redis() -> None:
    """rspamd-stopping: a message arriving meanwhile waits at most rspamd's shutdown wait
    (max(10 s, 2 x task_timeout)) or -t; redis-slow: never longer than a frozen Redis."""
    from spamdrill.budget.rspamd import RspamdSetup, predict
    from spamdrill.vocab import Fate, Mode

    def by(ps: list, mode: Mode):  # type: ignore[no-untyped-def,type-arg]
        [p] = [p for p in ps if p.mode == mode]
        return p

    stop = by(predict(RspamdSetup(rspamc_t=20.0)), Mode.RSPAMD_STOPPING)
    assert (stop.worst_s, stop.fate) == (16.0, Fate.DELIVERED_UNSCANNED)
    assert by(predict(RspamdSetup(rspamc_t=10.0)), Mode.RSPAMD_STOPPING).worst_s == 10.0
    assert by(predict(RspamdSetup(rspamc_t=60.0, task_timeout=3.0)),
              Mode.RSPAMD_STOPPING).worst_s == 10.0  # SOFT_SHUTDOWN_TIME at least
    slow = by(predict(RspamdSetup(rspamc_t=20.0)), Mode.REDIS_SLOW)
    assert (slow.worst_s, slow.fate, slow.edge) == (10.0, Fate.DELIVERED, False)
    edge = by(predict(RspamdSetup(rspamc_t=10.0)), Mode.REDIS_SLOW)
    assert edge.edge and edge.fate == Fate.DELIVERED_UNSCANNED


def test_a_scan_is_in_flight_from_its_loaded_message_to_its_answer() -> None:
    """What rspamd-stopping waits for before its SIGTERM (rspamd's own lines, the lab's)."""
    from spamdrill.drills.nemesis.rspamd import in_flight

    def loaded(pid: int, mid: str) -> str:
        return (f"2026-12-07 13:05:44 #{pid}(normal) <6f76f9>; task; rspamd_message_parse: "
                f"loaded message; id: <{mid}>; queue-id: <undef>; size: 1030")

    def answered(pid: int, mid: str) -> str:
        return (f"2026-12-07 13:05:45 #{pid}(normal) <6f76f9>; task; rspamd_task_write_log: "
                f"id: <{mid}>, ip: 127.0.0.1, (default: F (no action): [1.10/15.00]")

    assert in_flight("") == 0
    assert in_flight(loaded(7, "a@x")) == 1
    assert in_flight("\n".join([loaded(7, "a@x"), answered(7, "a@x")])) == 0
    assert in_flight("\n".join([loaded(7, "a@x"), loaded(8, "b@x"), answered(7, "a@x")])) == 1
    assert in_flight(answered(9, "c@x")) == 0  # answered before the log's window: no debt
    assert in_flight(loaded(7, "a@x").replace("(normal)", "(rspamd_proxy)")) == 0


def test_a_scan_held_at_the_stop_is_one_begun_and_not_answered_before_the_term_line() -> None:
    """The milter's stop: its proxy exits at once and a held scan may end unlogged, so the
    evidence is a scan in flight when the first normal worker logged its SIGTERM."""
    from spamdrill.drills.nemesis.rspamd import held_at_term

    loaded = ("2026-12-07 17:10:16 #1673(normal) <6dd0df>; task; rspamd_message_parse: "
              "loaded message; id: <a@x>; queue-id: <AE4AF234>; size: 812")
    answered = ("2026-12-07 17:10:17 #1673(normal) <6dd0df>; task; rspamd_task_write_log: "
                "id: <a@x>, ip: 127.0.0.1, (default: F (no action): [1.40/15.00]")
    term = ("2026-12-07 17:10:18 #1672(normal) <39e3b0>; main; rspamd_worker_term_handler: "
            "terminating after receiving signal Terminated")
    assert held_at_term("\n".join([loaded, term])) == 1
    assert held_at_term("\n".join([loaded, answered, term])) == 0
    assert held_at_term(loaded) == 0  # no worker told to stop
    text = "\n".join([loaded, term, loaded.replace("a@x", "b@x"), term])
    assert held_at_term(text, text.index(term) + len(term)) == 2  # the term line after start
