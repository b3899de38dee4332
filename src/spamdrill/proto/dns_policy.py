"""What the lab DNS server answers, sans-IO: query bytes + zone + rules -> a decision.

The lab DNS is authoritative for every name so nothing is ever forwarded outside: lab host
names get A records, DNSBL zones list test addresses (``2.0.0.127.<zone>`` as DNSBLs do by
convention), everything else is NXDOMAIN. Per-name rules switch a name (or a whole zone, or
``*``) to a failure mode at run time, which is how drills break DNS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dnslib import DNSRecord

MODES = ("answer", "nxdomain", "servfail", "drop", "delay")
Mode = Literal["answer", "nxdomain", "servfail", "drop", "delay"]


@dataclass(frozen=True)
class Rule:
    mode: Mode = "answer"
    delay: float = 0.0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Rule:
        mode = raw.get("mode", "answer")
        if mode not in MODES:
            raise ValueError(f"unknown DNS mode {mode!r} (known: {', '.join(MODES)})")
        delay = float(raw.get("delay", 0.0))
        if delay < 0:
            raise ValueError("delay must not be negative")
        return cls(mode=mode, delay=delay)


@dataclass(frozen=True)
class Zone:
    hosts: dict[str, str]
    dnsbl_zones: tuple[str, ...]
    listed: frozenset[str] = frozenset({"127.0.0.2"})

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Zone:
        return cls(
            hosts={_norm(k): v for k, v in raw.get("hosts", {}).items()},
            dnsbl_zones=tuple(_norm(z) for z in raw.get("dnsbl_zones", ())),
            listed=frozenset(raw.get("listed", ["127.0.0.2"])),
        )


@dataclass(frozen=True)
class Decision:
    """``reply`` is None for a query that is never answered; otherwise send it after ``delay``."""

    qname: str
    qtype: str
    action: str
    reply: bytes | None
    delay: float = 0.0


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def rule_for(qname: str, rules: dict[str, Rule]) -> Rule:
    """Exact name first, then the closest enclosing zone, then ``*``."""
    labels = qname.split(".")
    for i in range(len(labels)):
        rule = rules.get(".".join(labels[i:]))
        if rule is not None:
            return rule
    return rules.get("*", Rule())


def _answer(query: DNSRecord, qname: str, qtype: str, zone: Zone) -> DNSRecord:
    from dnslib import QTYPE, RCODE, RR, TXT, A

    reply = query.reply()  # sets QR, AA; keeps id and question
    reply.header.ra = 1
    if qname in zone.hosts:
        if qtype in ("A", "ANY"):
            reply.add_answer(RR(qname, QTYPE.A, rdata=A(zone.hosts[qname]), ttl=5))
        return reply
    for bl in zone.dnsbl_zones:
        if qname.endswith("." + bl):
            octets = qname[: -len(bl) - 1].split(".")
            addr = ".".join(reversed(octets))
            if addr in zone.listed and len(octets) == 4:
                if qtype in ("A", "ANY"):
                    reply.add_answer(RR(qname, QTYPE.A, rdata=A("127.0.0.2"), ttl=5))
                if qtype in ("TXT", "ANY"):
                    reply.add_answer(
                        RR(qname, QTYPE.TXT, rdata=TXT(f"listed by the spamdrill lab ({bl})"))
                    )
                return reply
            break
    if qname not in zone.dnsbl_zones:
        reply.header.rcode = RCODE.NXDOMAIN
    return reply


def decide(data: bytes, zone: Zone, rules: dict[str, Rule]) -> Decision:
    """Decide the fate of one query datagram. Unparseable input is dropped."""
    # dnslib here, not at the top: the lab's extra, and ``spamdrill lab``'s options read
    # MODES on a mail host that has no lab
    from dnslib import QTYPE, RCODE, DNSRecord

    try:
        query = DNSRecord.parse(data)
    except Exception:  # dnslib raises several types for garbage
        return Decision(qname="", qtype="", action="garbage", reply=None)
    if not query.questions:
        return Decision(qname="", qtype="", action="garbage", reply=None)
    qname = _norm(str(query.q.qname))
    qtype = QTYPE.get(query.q.qtype, str(query.q.qtype))
    rule = rule_for(qname, rules)
    if rule.mode == "drop":
        return Decision(qname, qtype, "drop", None)
    if rule.mode in ("nxdomain", "servfail"):
        reply = query.reply()
        reply.header.rcode = RCODE.NXDOMAIN if rule.mode == "nxdomain" else RCODE.SERVFAIL
        return Decision(qname, qtype, rule.mode, reply.pack())
    reply = _answer(query, qname, qtype, zone)
    action = "answer" if rule.mode == "answer" else f"delay {rule.delay:g}s"
    delay = rule.delay if rule.mode == "delay" else 0.0
    return Decision(qname, qtype, action, reply.pack(), delay)


def parse_rules(raw: dict[str, Any]) -> dict[str, Rule]:
    return {_norm(name) if name != "*" else "*": Rule.from_json(r) for name, r in raw.items()}
