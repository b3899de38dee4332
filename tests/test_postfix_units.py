"""The sans-IO parts of the end-to-end lab: Postfix's config, its log, its queue, the
delivered messages and DSNs it leaves, each message's fate, and SMTP framing. The data
in tests/data/postfix/ is what a real run left (the final wrapper with its stderr fix
bouncing a transient failure; a GTUBE delivered to .Spam)."""

from __future__ import annotations

import json
import socketserver
import threading
from pathlib import Path

import pytest

from spamdrill import corpus
from spamdrill.fates import Found, Injected, judge, judge_one, tally
from spamdrill.lab import postfix as pf
from spamdrill.lab.wrappers import reachable
from spamdrill.load.smtp import Job, frame, inject_waves, queue_id
from spamdrill.proto import postfix_log, postqueue
from spamdrill.proto.mailfile import (
    Delivered,
    NotADsn,
    body,
    intact,
    message_id,
    parse_delivered,
    parse_dsn,
)
from spamdrill.vocab import Fate

pytestmark = pytest.mark.unit
DATA = Path(__file__).parent / "data" / "postfix"
HAM_QID, SPAM_QID, DSN_QID = "D398420D101", "D678C20D111", "9DEF720C4C0"


def settings(**kw: object) -> pf.Settings:
    t = pf.maildrop_transport(Path("/run/x/maildroprc"), wrapper=("/w/wrap.pl",))
    return pf.Settings(transports=(t,), **kw)  # type: ignore[arg-type]


def test_main_cf_is_private_and_quick_to_retry() -> None:
    paths = pf.Paths(Path("/tmp/r/postfix"))
    text = pf.render_main_cf(paths, settings(address="198.18.4.2"), 65534, 65534)
    conf = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert conf["queue_directory"] == "/tmp/r/postfix/queue"
    assert conf["maillog_file"] == "/tmp/r/postfix/maillog"
    assert conf["maillog_file_prefixes"] == "/tmp/r/postfix"
    assert conf["inet_interfaces"] == "198.18.4.2"
    assert conf["maildrop_destination_recipient_limit"] == "1"
    assert (conf["queue_run_delay"], conf["minimal_backoff_time"],
            conf["maximal_backoff_time"]) == ("1s", "1s", "4s")
    assert conf["transport_maps"] == "inline:{ lab.test=maildrop: }"
    assert "/etc" not in "".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert "SPAMDRILL_LAB SPAMDRILL_POSTFIX" in conf["export_environment"]


def test_master_cf_runs_the_wrapper_unprivileged_on_the_lab_address() -> None:
    text = pf.render_master_cf(settings(address="127.0.0.1"), 2525)
    assert text.splitlines()[1] == "127.0.0.1:2525 inet n - n - - smtpd"
    assert "  flags=DRXhu user=nobody argv=/w/wrap.pl /run/x/maildroprc ${user}" in text
    assert "postlogd" in text


def test_transport_forms() -> None:
    rc = Path("/rc")
    assert pf.maildrop_transport(rc).argv == ("/usr/bin/maildrop", "/rc", "${user}")
    deliver = pf.deliver_transport(rc, "/bin/sd")
    assert deliver.argv[-4:] == ("--", "/usr/bin/maildrop", "/rc", "${user}")
    assert "--queue-id=${queue_id}" in deliver.argv


@pytest.mark.parametrize("kw", [{"name": "Bad Name"}, {"name": "virtual"}, {"domain": "x y"},
                                {"argv": ("/bin/a b",)}, {"argv": ()}])
def test_bad_transports_are_refused(kw: dict[str, object]) -> None:
    base: dict[str, object] = {"name": "maildrop", "argv": ("/bin/true",)}
    with pytest.raises(pf.ConfigError):
        pf.Transport(**{**base, **kw})  # type: ignore[arg-type]


def test_bad_settings_are_refused() -> None:
    t = pf.Transport("maildrop", ("/bin/true",))
    with pytest.raises(pf.ConfigError):
        pf.Settings(transports=(t, pf.Transport("maildrop", ("/bin/true",), "b.test")))
    with pytest.raises(pf.ConfigError):
        pf.Settings(transports=(t,), minimal_backoff=5, maximal_backoff=2)
    with pytest.raises(pf.ConfigError):
        pf.Settings(transports=(pf.Transport("x", ("/bin/true",), pf.SENDER_DOMAIN),))


def test_log_lines_and_delays() -> None:
    text = (DATA / "maillog").read_text()
    stories = postfix_log.stories(text)
    assert list(stories) == [HAM_QID, SPAM_QID, DSN_QID]
    ham = stories[HAM_QID]
    assert ham.message_id == "<ham-11-tok00000011x73cf256d@spamdrill.lab.test>"
    assert ham.sender == pf.SENDER and ham.client == "unknown[127.0.0.1]" and ham.removed
    assert ham.notice_queue_id == DSN_QID
    last = ham.last
    assert last is not None and (last.status, last.dsn, last.relay) == \
        ("bounced", "5.3.0", "maildrop")
    assert last.delays == postfix_log.Delays(0.059, 0.022, 0.0, 0.74)
    assert last.delay == 0.82 and last.to == "bob@lab.test"
    assert last.detail.startswith('Command died with status 100: "')
    assert stories[SPAM_QID].deliveries[0].status == "sent"
    assert postfix_log.problems(text) == []


def test_log_parser_ignores_what_is_not_a_story() -> None:
    lines = ("garbage\n"
             "Nov 29 15:46:20 mx postfix/trivial-rewrite[1]: warning: do not list domain\n"
             "Nov 29 15:46:20 mx postfix/smtpd[2]: NOQUEUE: reject: RCPT from x\n"
             "Nov 29 15:46:20 mx postfix/pipe[3]: ABCDEF123: to=<a@b>, relay=maildrop, "
             "delay=x, delays=1/2, dsn=4.3.0, status=deferred\n")
    stories = postfix_log.stories(lines)
    assert list(stories) == ["ABCDEF123"]
    d = stories["ABCDEF123"].deliveries[0]
    assert (d.delay, d.delays, d.status, d.detail) == (None, None, "deferred", "")
    assert postfix_log.problems(lines) == ["postfix/trivial-rewrite: warning: do not list "
                                           "domain"]
    # the machine's clock, not the configuration (Postfix's mail_stream.c, under load)
    clock = ("Dec  7 04:40:01 mx postfix/cleanup[4]: warning: file system clock is 1 seconds "
             "ahead of local clock\n"
             "Dec  7 04:40:01 mx postfix/cleanup[4]: warning: resetting file time stamps - "
             "this hurts performance\n")
    assert postfix_log.problems(clock + lines) == postfix_log.problems(lines)


QUEUE = json.dumps({
    "queue_name": "deferred", "queue_id": "B755920C4B2", "arrival_time": 1795967180,
    "message_size": 2206, "forced_expire": False, "sender": "sender@senders.test",
    "recipients": [{"address": "carol@lab.test", "delay_reason":
                    "temporary failure. Command output: tempfail"}]})


def test_postqueue_json() -> None:
    entry, = postqueue.parse(QUEUE + "\n\n")
    assert (entry.queue_id, entry.queue_name, entry.size) == ("B755920C4B2", "deferred", 2206)
    assert entry.reason == "temporary failure. Command output: tempfail"
    assert postqueue.parse("") == []


@pytest.mark.parametrize("bad", ["{not json", "[1]", '{"queue_id": "A"}'])
def test_postqueue_garbage_is_an_error(bad: str) -> None:
    with pytest.raises(postqueue.QueueFormatError):
        postqueue.parse(bad)


def test_dsn_of_a_real_bounce() -> None:
    dsn, = parse_dsn((DATA / "dsn-status-100.eml").read_bytes())
    assert (dsn.queue_id, dsn.recipient, dsn.action, dsn.status) == \
        (HAM_QID, "bob@lab.test", "failed", "5.3.0")
    assert dsn.text.startswith("<bob@lab.test>: Command died with status 100: "
                               '"/tmp/pfx-t1/lab/postfix/bin/maildrop_wrapper_final_stderr.pl"')
    assert "Unable to create a dot-lock" in dsn.text
    assert dsn.diagnostic.startswith("x-unix; /usr/bin/maildrop: Unable to create")
    assert dsn.original_message_id == "<ham-11-tok00000011x73cf256d@spamdrill.lab.test>"


def test_a_delivered_message_is_not_a_dsn() -> None:
    with pytest.raises(NotADsn):
        parse_dsn((DATA / "spam-delivered.eml").read_bytes())


def test_delivered_spam_is_scanned_and_intact_under_report_safe() -> None:
    sent = (DATA / "spam-12.sent.eml").read_bytes()
    got = (DATA / "spam-delivered.eml").read_bytes()
    msg = parse_delivered(got)
    assert msg.scanned and msg.spam and msg.message_id == message_id(sent)
    assert intact(sent, got)
    assert not intact(sent, got.replace(corpus.GTUBE.encode(), b"x"))
    assert not intact(sent, b"Subject: x\n\n")


def test_unscanned_and_bodies() -> None:
    raw = b"Message-ID: <a@b>\r\nSubject: x\r\n\r\nline\r\n"
    msg = parse_delivered(raw)
    assert not msg.scanned and not msg.spam and msg.message_id == "<a@b>"
    assert body(raw) == b"line\n" and body(b"no body") == b""


def sent(qid: str | None, n: int = 1) -> Injected:
    data = corpus.ham(n)
    return Injected(f"ham-{n}", message_id(data), "alice@lab.test", data, qid,
                    f"250 2.0.0 Ok: queued as {qid}" if qid else "554 5.7.1 no")


def found(s: Injected, folder: str = "", scanned: bool = True) -> Found:
    return Found(f"/m/{folder}/x", folder, Delivered(s.message_id, scanned, False, None),
                 True)


def story(qid: str, *statuses: str) -> postfix_log.QueueStory:
    st = postfix_log.QueueStory(qid)
    for s in statuses:
        st.deliveries.append(postfix_log.Delivery("t", "postfix/pipe", qid, "a@b", "r", 0.5,
                                                  None, "2.0.0", s, "detail"))
    return st


def test_every_fate() -> None:
    a, b, c, d, e, f, g = (sent(q, i) for i, q in enumerate(
        ["A1A1A1", "B2B2B2", "C3C3C3", "D4D4D4", "E5E5E5", "F6F6F6", None]))
    dsn, = parse_dsn((DATA / "dsn-status-100.eml").read_bytes())
    dsn = type(dsn)(**{**dsn.__dict__, "queue_id": "D4D4D4"})
    entry, = postqueue.parse(QUEUE.replace("B755920C4B2", "C3C3C3"))
    outcomes = judge(
        [a, b, c, d, e, f, g],
        {a.message_id or "": [found(a)], b.message_id or "": [found(b, scanned=False)],
         f.message_id or "": [found(f), found(f, ".Spam")]},
        [entry], [dsn], {"E5E5E5": story("E5E5E5", "sent")})
    fates = [o.fate for o in outcomes]
    assert fates == [Fate.DELIVERED, Fate.DELIVERED_UNSCANNED, Fate.DEFERRED, Fate.BOUNCED,
                     Fate.LOST, Fate.DUPLICATED, None]
    assert outcomes[2].reason.startswith("temporary failure")
    assert outcomes[3].dsn_status == "5.3.0" and "status 100" in outcomes[3].reason
    assert "status=sent" in outcomes[4].reason and outcomes[4].seconds == 0.5
    assert outcomes[5].copies == 2 and outcomes[5].folders == ["", ".Spam"]
    assert outcomes[6].reason == "not accepted: 554 5.7.1 no"
    counts = tally(outcomes)
    assert counts["lost"] == 1 and counts["not accepted"] == 1 and sum(counts.values()) == 7


def test_delivered_beats_a_stale_queue_entry_and_lost_without_log() -> None:
    a = sent("A1A1A1")
    entry, = postqueue.parse(QUEUE.replace("B755920C4B2", "A1A1A1"))
    assert judge_one(a, [found(a)], entry, None, None).fate is Fate.DELIVERED
    lost = judge_one(a, [], None, None, None)
    assert lost.fate is Fate.LOST and "no delivery" in lost.reason


def test_smtp_framing() -> None:
    assert frame(b"a\n.b\r\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert frame(b"x\r\n") == b"x\r\n.\r\n"
    assert queue_id("2.0.0 Ok: queued as 3375620C7E2") == "3375620C7E2"
    assert queue_id("4.3.0 try later") is None


def test_reachable() -> None:
    assert reachable(Path("/bin/sh"))
    assert not reachable(Path("/nonexistent/python"))
    assert not reachable(DATA / "maillog")  # not executable


class _HeldServer(socketserver.ThreadingTCPServer):
    """An SMTP server that answers the first message's final dot only once a second
    message has arrived (as Postfix answers behind a milter: after the scan), or after
    ``HOLD_S``: what a closed-loop sender, waiting for the answer, never sends."""

    daemon_threads = allow_reuse_address = True
    HOLD_S = 30.0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HeldSession)
        self.second = threading.Event()
        self.lock = threading.Lock()
        self.messages = 0


class _HeldSession(socketserver.StreamRequestHandler):
    server: _HeldServer

    def handle(self) -> None:
        self.wfile.write(b"220 held.test ESMTP\r\n")
        data = False
        for raw in self.rfile:
            line = raw.rstrip(b"\r\n")
            if data:
                if line == b".":
                    data = False
                    with self.server.lock:
                        self.server.messages += 1
                        n = self.server.messages
                    if n == 1:
                        self.server.second.wait(self.server.HOLD_S)
                    else:
                        self.server.second.set()
                    self.wfile.write(b"250 2.0.0 Ok: queued as HELD%d\r\n" % n)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_waves_are_released_on_schedule_not_after_the_answers() -> None:
    """Open loop: the second wave goes at its offset while the server still holds its
    answer to the first (behind a milter, until the scan ends); a sender that waited for
    each answer would send it only after the hold."""
    server = _HeldServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        jobs = [Job(corpus.make("ham", 900 + i), "a@lab.test") for i in range(2)]
        clock: list[float] = []
        first, second = inject_waves(*server.server_address[:2],  # type: ignore[misc]
                                     [(0.2, [jobs[1]]), (0.0, [jobs[0]])],
                                     timeout=60, started=clock.append)
    finally:
        server.shutdown()
        server.server_close()
    assert len(clock) == 1
    assert first.id == jobs[0].message.id and second.id == jobs[1].message.id
    assert first.queue_id == "HELD1" and second.queue_id == "HELD2"
    assert second.start_ns < first.end_ns  # sent while the first waited for its answer


def test_a_wave_that_raises_is_raised_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not lost in its thread: a wave's messages missing from the results would read as
    mail never sent."""
    from spamdrill.load import smtp

    def inject(host: str, port: int, jobs: list[Job], **kw: object) -> object:
        if jobs[0].recipient == "boom@lab.test":
            raise RuntimeError("boom")
        kw["started"](0.0)  # type: ignore[operator]
        return [], 0

    monkeypatch.setattr(smtp, "inject", inject)
    jobs = [Job(corpus.make("ham", 910), "a@lab.test"),
            Job(corpus.make("ham", 911), "boom@lab.test")]
    with pytest.raises(RuntimeError, match="boom"):
        inject_waves("127.0.0.1", 9, [(0.0, [jobs[0]]), (0.05, [jobs[1]])])
