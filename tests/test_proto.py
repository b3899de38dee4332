"""Sans-IO cores: the SPAMD wire format, spamd's log, the DNS policy, the lab config."""

from __future__ import annotations

import pytest
from dnslib import DNSRecord

from spamdrill.errors import SpamdrillError
from spamdrill.lab.config import from_dict
from spamdrill.proto.dns_policy import Rule, Zone, decide, rule_for
from spamdrill.proto.spamd_log import describe_states, last_child_states
from spamdrill.proto.spamd_wire import (
    ProtocolError,
    build_reply,
    build_request,
    parse_reply,
    ping_request,
    request_complete,
)

pytestmark = pytest.mark.unit


def test_ping_request_is_what_spamc_sends() -> None:
    assert ping_request() == b"PING SPAMC/1.5\r\n\r\n"


def test_request_with_body_has_content_length() -> None:
    req = build_request("CHECK", {"User": "alice"}, b"abc")
    assert req == b"CHECK SPAMC/1.5\r\nUser: alice\r\nContent-length: 3\r\n\r\nabc"


def test_parse_pong_and_partial() -> None:
    assert parse_reply(b"SPAMD/1.5 0 PO") is None
    reply = parse_reply(b"SPAMD/1.5 0 PONG\r\n")
    assert reply is not None and reply.ok and reply.message == "PONG"


def test_a_request_is_complete_with_its_whole_body() -> None:
    req = build_request("PROCESS", {"User": "alice"}, b"Subject: x\r\n\r\nhello\r\n")
    assert request_complete(req)
    assert not request_complete(req[:-1])
    assert request_complete(req[:-1], body=False)  # the headers are in
    assert not request_complete(req[:10], body=False)
    assert request_complete(ping_request())


def test_a_built_reply_parses_back_and_states_an_empty_length() -> None:
    data = build_reply(0, "EX_OK", {"Spam": "False ; 0.0 / 5.0"})
    reply = parse_reply(data)
    assert reply is not None and reply.ok and reply.body == b""
    assert reply.headers == {"content-length": "0", "spam": "False ; 0.0 / 5.0"}
    error = parse_reply(build_reply(76, "Bad header", body=b"x"))
    assert error is not None and not error.ok and error.body == b"x"


def test_parse_reply_with_headers_and_error_code() -> None:
    reply = parse_reply(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nbody")
    assert reply is not None and reply.headers["spam"] == "True ; 1000.0 / 5.0"
    assert reply.body == b"body"
    bad = parse_reply(b"SPAMD/1.0 76 Bad header line: x\r\n")
    assert bad is not None and not bad.ok and bad.code == 76


@pytest.mark.parametrize("junk", [b"HTTP/1.1 200 OK\r\n", b"SPAMD/1.5 x y\r\n", b"x" * 600])
def test_parse_reply_rejects_non_spamd(junk: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(junk)


def test_child_states_from_log() -> None:
    log = ("... prefork: child states: S\n... prefork: child states: BI\n"
           "... spamd: connection from localhost\n")
    assert last_child_states(log) == "BI"
    assert describe_states("BIIK") == "1 busy, 2 idle, 1 killed"
    assert last_child_states("nothing here") is None


ZONE = Zone(hosts={"db.lab.test": "127.0.0.1"}, dnsbl_zones=("zen.spamhaus.org",))


def ask(name: str, rules: dict[str, Rule] | None = None, qtype: str = "A"):  # type: ignore[no-untyped-def]
    return decide(DNSRecord.question(name, qtype).pack(), ZONE, rules or {})


def test_dns_policy_answers_and_nxdomain() -> None:
    d = ask("db.lab.test")
    assert d.action == "answer" and d.reply is not None
    assert [str(r.rdata) for r in DNSRecord.parse(d.reply).rr] == ["127.0.0.1"]
    assert DNSRecord.parse(ask("www.example.com").reply).header.rcode == 3
    listed = DNSRecord.parse(ask("2.0.0.127.zen.spamhaus.org").reply)
    assert [str(r.rdata) for r in listed.rr] == ["127.0.0.2"]


def test_dns_rules_match_exact_then_zone_then_star() -> None:
    rules = {"zen.spamhaus.org": Rule("drop"), "*": Rule("servfail"),
             "db.lab.test": Rule("delay", 2.0)}
    assert rule_for("2.0.0.127.zen.spamhaus.org", rules).mode == "drop"
    assert rule_for("db.lab.test", rules).mode == "delay"
    assert rule_for("other.test", rules).mode == "servfail"
    assert ask("2.0.0.127.zen.spamhaus.org", rules).reply is None
    delayed = ask("db.lab.test", rules)
    assert delayed.delay == 2.0 and delayed.reply is not None
    assert ask("garbage", {}).action == "answer"
    assert decide(b"\x00\x01", ZONE, {}).action == "garbage"


def test_config_rejects_nonsense_and_builds_flags() -> None:
    cfg = from_dict({"spamd": {"max_children": 1, "max-conn-per-child": 1}})
    assert "--max-children=1" in cfg.spamd.flags()
    assert "--max-conn-per-child=1" in cfg.spamd.flags()
    for bad in ({"spamd": {"max_children": 0}}, {"spamd": {"max_children": True}},
                {"users": {"a b": 1}}, {"spamd": {"extra_args": "x"}},
                {"database": {"port": -1}}, {"topology": {"spamd_syncookies": 0}},
                {"topology": {"spamd_syncookies": "sometimes"}}):
        with pytest.raises(SpamdrillError):
            from_dict(bad)
    assert from_dict({"topology": {"spamd_syncookies": "off"}}).topology.spamd_syncookies \
        == "off"


def test_spamd_verdicts_by_message_id_in_both_log_forms() -> None:
    from spamdrill.proto.spamd_log import verdicts_by_message_id

    own_file = (  # spamd -s FILE, as the lab runs it (lines copied from a lab run)
        "Sun Nov 29 16:43:41 2026 [29490] info: spamd: processing message <gtube-1@x> for "
        "alice:104\n"
        "Sun Nov 29 16:43:41 2026 [29491] info: spamd: processing message <ham-1@x> for "
        "alice:104\n"
        "Sun Nov 29 16:43:41 2026 [29490] info: spamd: identified spam (1000.0/5.0) for "
        "alice:104 in 0.3 seconds, 506 bytes.\n"
        "Sun Nov 29 16:43:42 2026 [29491] info: spamd: clean message (0.0/5.0) for "
        "alice:104 in 0.5 seconds, 827 bytes.\n")
    assert verdicts_by_message_id(own_file) == {
        "<gtube-1@x>": "identified spam (1000.0/5.0) for alice:104 in 0.3 seconds",
        "<ham-1@x>": "clean message (0.0/5.0) for alice:104 in 0.5 seconds"}
    syslog = ("Sep 28 09:25:48 spamd3 spamd[9643]: spamd: processing message "
              "<GTUBE1.1010101@example.net> for micah:65534\n"
              "Sep 28 09:25:49 spamd3 spamd[9643]: spamd: identified spam (1003.6/8.0) for "
              "micah:65534 in 1.1 seconds, 799 bytes.\n")  # the field report's own lines
    assert verdicts_by_message_id(syslog) == {
        "<GTUBE1.1010101@example.net>":
            "identified spam (1003.6/8.0) for micah:65534 in 1.1 seconds"}
