"""A scan held by a slow rule and a dead nameserver, sans-IO: the lab's slow rule, and
rspamd's budget for both (the ``dns`` section of options.inc read as rspamd layers it, and
each mode's worst case and fate from ``task_timeout`` and ``dns.timeout`` x
``dns.retransmits``); the drills that measured them: tests/test_rspamd_slow.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.budget import inputs
from spamdrill.budget.rspamd import DNS_CHAIN, Prediction, RspamdSetup, predict
from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.system import reader
from spamdrill.system import rspamd as conf
from spamdrill.vocab import Fate, Mode

pytestmark = pytest.mark.unit
TREES = Path(__file__).parent / "data" / "rspamd-etc"
SHIPPED = "dns {\n    timeout = 1s;\n    sockets = 16;\n    retransmits = 5;\n}\n"


def test_the_slow_rule_asks_the_lab_dns_only_when_a_lab_wants_it() -> None:
    import re

    from dnslib import DNSRecord

    paths = rspamd_lab.Paths(Path("/tmp/spamdrill-test/lab"))
    ports = rspamd_lab.Ports("127.0.0.1", 40001, 40002, 40003, 40004)
    plain = rspamd_lab.render(paths, lab_config.RspamdSettings(), ports, "127.53.1.2:53")
    assert "SPAMDRILL_SLOW_RULE" not in plain["conf/local.d/rspamd.lua"]
    lua = rspamd_lab.render(paths, lab_config.RspamdSettings(slow_rule=True), ports,
                            "127.53.1.2:5353")["conf/local.d/rspamd.lua"]
    assert "SPAMDRILL_SLEEP" in lua and "rspamd_tcp.request" in lua
    assert 'host = "127.53.1.2", port = 5353' in lua
    assert f"timeout = {rspamd_lab.SLOW_RULE_TIMEOUT_S}" in lua
    assert "os.execute" not in lua.split("SPAMDRILL_SLOW_RULE")[1]  # it waits, never blocks
    # the bytes it sends: one DNS-over-TCP query for the slow rule's name, nothing else
    [literal] = re.findall(r'data = "((?:\\\d{3})+)"', lua)
    wire = bytes(int(d) for d in re.findall(r"\\(\d{3})", literal))
    assert int.from_bytes(wire[:2], "big") == len(wire) - 2
    q = DNSRecord.parse(wire[2:])
    assert str(q.q.qname).rstrip(".") == rspamd_lab.SLOW_RULE_NAME
    assert rspamd_lab.SLOW_RULE_NAME.endswith(".lab.test")  # the lab DNS's own zone
    # the resolver's own timeouts, when a lab sets them (Debian's otherwise), beside the
    # lab DNS as its only nameserver
    assert "dns { nameserver = [\"127.53.1.2:53\"]; }" in plain["conf/override.d/options.inc"]
    tuned = rspamd_lab.render(paths, lab_config.RspamdSettings(dns_timeout=0.5,
                                                               dns_retransmits=2),
                              ports, "127.53.1.2:53")["conf/override.d/options.inc"]
    assert 'dns { nameserver = ["127.53.1.2:53"]; timeout = 0.5s; retransmits = 2; }' in tuned


def test_the_dns_section_is_layered_like_any_value() -> None:
    c = conf.parse({"options.inc": SHIPPED + "task_timeout = 8s;\n",
                    "local.d/options.inc": "dns { timeout = 2s; retransmits = 3; }\n",
                    "override.d/options.inc": "# a nested section's timeout is not dns's\n"
                                              "dns {\n  upstream { timeout = 9s; }\n"
                                              "  retransmits = 2;\n}\n"}, "/r")
    assert (c.dns_timeout.value, c.dns_timeout.source) == (2.0, "/r/local.d/options.inc:1")
    assert (c.dns_retransmits.value, c.dns_retransmits.source) == (
        2, "/r/override.d/options.inc:4")
    assert c.task_timeout.value == 8.0  # a top-level key, not the section's
    bare = conf.parse({"options.inc": "task_timeout = 8s;\nx { dns { timeout = 7s; } }\n"})
    assert (bare.dns_timeout.value, bare.dns_retransmits.value) == (1.0, 5)
    assert bare.dns_timeout.source.startswith("default")
    with pytest.raises(SpamdrillError, match=r"^/r/local.d/options.inc:1: "):
        conf.parse({"local.d/options.inc": "dns { retransmits = many; }"}, "/r")


def test_budget_reads_debians_shipped_dns_section() -> None:
    system = reader.read(TREES / "rspamc-xfilter")
    s = inputs.rspamd_setup(system)
    assert s is not None and (s.dns_timeout, s.dns_retransmits) == (1.0, 5)
    assert system.rspamd is not None
    assert system.rspamd.dns_retransmits.source.endswith("etc/rspamd/options.inc:36")


def by(ps: list[Prediction], mode: Mode, via: str) -> Prediction:
    [p] = [p for p in ps if p.mode == mode and p.via == via]
    return p


def test_a_slow_rule_is_answered_at_task_timeout() -> None:
    """Redis healthy: nothing adds to task_timeout (measured 8.01-8.09 s at 8 s)."""
    p = by(predict(RspamdSetup(rspamc_t=10.0)), Mode.RSPAMD_SLOW_RULE, "rspamc")
    assert (p.worst_s, p.fate, p.edge) == (8.0, Fate.DELIVERED, False)
    assert "partial verdict" in p.why
    soft = by(predict(RspamdSetup(rspamc_t=10.0, soft_reject=True)),
              Mode.RSPAMD_SLOW_RULE, "rspamc")
    assert soft.fate == Fate.DELIVERED and "soft reject" in soft.why  # exit 0 through rspamc
    edge = by(predict(RspamdSetup(rspamc_t=8.5)), Mode.RSPAMD_SLOW_RULE, "rspamc")
    assert edge.edge and edge.worst_s == 8.5 and edge.fate == Fate.DELIVERED_UNSCANNED
    short = by(predict(RspamdSetup(rspamc_t=5.0, in_exception=False)),
               Mode.RSPAMD_SLOW_RULE, "rspamc")
    assert (short.worst_s, short.fate, short.edge) == (5.0, Fate.DEFERRED, False)
    milter = predict(RspamdSetup(rspamc_t=None, milter_action="accept", soft_reject=True))
    assert by(milter, Mode.RSPAMD_SLOW_RULE, "milter").fate == Fate.DEFERRED
    late = by(predict(RspamdSetup(rspamc_t=None, milter_action="accept", task_timeout=60,
                                  milter_content_timeout=30)), Mode.RSPAMD_SLOW_RULE, "milter")
    assert (late.worst_s, late.fate) == (30.0, Fate.DELIVERED_UNSCANNED)


@pytest.mark.parametrize("task,timeout,retransmits,worst,timed_out", [
    (8.0, 1.0, 5, 8.0, True),  # Debian's: 3 x 5 s would be 15 s, task_timeout ends it
    (8.0, 1.0, 2, 6.0, False),  # the lookups give up first: no task timeout (6.04-6.25)
    (20.0, 1.0, 5, 15.0, False),  # measured 15.07-15.14 s
    (12.0, 2.0, 2, 12.0, True),  # exactly task_timeout: rspamd's timer
])
def test_a_dead_nameserver_costs_the_shorter_of_its_lookups_and_task_timeout(
        task: float, timeout: float, retransmits: int, worst: float,
        timed_out: bool) -> None:
    s = RspamdSetup(task_timeout=task, dns_timeout=timeout, dns_retransmits=retransmits,
                    rspamc_t=60.0, soft_reject=True, milter_action="accept")
    assert DNS_CHAIN == 3 and s.dns_dead_s == worst and s.dns_dead_timed_out == timed_out
    ps = predict(s)
    p = by(ps, Mode.RSPAMD_DNS_DEAD, "rspamc")
    assert (p.worst_s, p.fate) == (worst, Fate.DELIVERED)
    # only a scan task_timeout ended is a soft reject: the milter defers only then
    assert by(ps, Mode.RSPAMD_DNS_DEAD, "milter").fate == (
        Fate.DEFERRED if timed_out else Fate.DELIVERED)
    assert ("soft reject" in p.why) == timed_out
