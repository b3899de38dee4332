"""Faults on the way between the hosts: packets (nftables), the lab DNS's answers, and the
TCP fault proxy on the spamc-spamd or spamd-MariaDB link. Each reads its own counter as
evidence: the nft rule's, the DNS query log's actions, the proxy's."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from spamdrill.drills.control import Host, LabControl, PacketAction, Proxy, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec
from spamdrill.drills.timing import Scale
from spamdrill.evidence import FaultReport
from spamdrill.lab.proxy import Counters
from spamdrill.lab.toxics import MODES, AnyToxic, Shape, mode_shape
from spamdrill.proto.dns_policy import MODES as DNS_MODES
from spamdrill.vocab import Mode

PACKET_MODE = {("spamd", "drop"): Mode.SPAMD_ACCEPT_QUEUE_FULL,
               ("spamd", "icmp"): Mode.SPAMD_REJECTED,
               ("spamd", "reset"): Mode.SPAMD_REFUSED,
               ("db", "drop"): Mode.DB_UNREACHABLE, ("db", "icmp"): Mode.DB_REFUSED,
               ("db", "reset"): Mode.DB_REFUSED}


class PacketsSpec(FaultSpec, tag="packets", frozen=True):
    """nftables on a host of the multi-host topology, for TCP to its service's port
    (spamd's or MariaDB's): dropped, reset, or answered with ICMP port unreachable; new
    connections only, or established ones too."""

    host: Host = "db"
    action: PacketAction = "drop"
    established: bool = False

    def failure_mode(self) -> Mode:
        return PACKET_MODE[(self.host, self.action)]

    @property
    def needs_hosts(self) -> bool:
        return True

    def build(self, scale: Scale) -> Fault:
        return PacketFault(self.host, self.action, self.established)


class PacketFault(Fault):
    def __init__(self, host: Host, action: PacketAction, established: bool) -> None:
        self.name = f"packets-{host}-{action}"
        self.host, self.action, self.established = host, action, established
        self._undo: Undo | None = None
        self.matched: int | None = None

    def inject(self, ctl: LabControl) -> str:
        self._undo = ctl.packet_rule(self.host, self.action, self.established)
        which = "all" if self.established else "new"
        return f"nftables on the {self.host} host: {self.action} {which} connections"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "no rule"
        self.matched = ctl.packet_count(self.host)  # the counter goes with the rule
        self._undo.heal()
        self._undo = None
        return "packet rule removed"

    def evidence(self, ctl: LabControl) -> FaultReport:
        got = self.matched
        return self.report(bool(got), f"the rule matched {got} packet(s)" if got is not None
                           else "the rule's counter could not be read")


class DnsRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    mode: str
    delay: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # production seconds, for "delay"

    def __post_init__(self) -> None:
        if self.mode not in DNS_MODES:
            raise ValueError(f"unknown DNS mode {self.mode!r} (known: {', '.join(DNS_MODES)})")


DNS_ACTION = {"drop": "drop", "servfail": "servfail", "nxdomain": "nxdomain",
              "delay": "delay"}


class DnsSpec(FaultSpec, tag="dns", frozen=True):
    """The lab DNS switched per name (a host, a zone, or ``*``)."""

    rules: tuple[DnsRule, ...]

    def failure_mode(self) -> Mode:
        modes = {r.mode for r in self.rules}
        if modes == {"servfail"}:
            return Mode.DNS_DB_SERVFAIL
        if modes == {"nxdomain"}:
            return Mode.DNS_DB_NXDOMAIN
        return Mode.DNS_DEAD

    def build(self, scale: Scale) -> Fault:
        return DnsFault([(r.name, r.mode, scale.seconds(r.delay)) for r in self.rules])


class DnsFault(Fault):
    name = "dns"

    def __init__(self, rules: list[tuple[str, str, float]]) -> None:
        self.rules = rules
        self._undo: Undo | None = None
        self._mark = 0
        self.actions: dict[str, int] = {}

    def inject(self, ctl: LabControl) -> str:
        self._mark = ctl.dns_mark()
        self._undo = ctl.dns_rules(self.rules)
        return ", ".join(f"{n}: {m}" + (f" {d:g} s" if m == "delay" else "")
                         for n, m, d in self.rules)

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "no rules"
        self.actions = ctl.dns_actions_since(self._mark)
        self._undo.heal()
        self._undo = None
        return "DNS answers again"

    def evidence(self, ctl: LabControl) -> FaultReport:
        wanted = {DNS_ACTION[m] for _n, m, _d in self.rules if m in DNS_ACTION}
        # the log says "delay 2.7s": the action is its first word
        hit = sum(n for action, n in self.actions.items() if action.split()[0] in wanted)
        shown = ", ".join(f"{n} {a}" for a, n in sorted(self.actions.items())) or "none"
        return self.report(hit > 0, f"the lab DNS logged {hit} quer(ies) answered by the "
                           f"rule (all actions: {shown})")


class Toxics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Toxic chains per direction, as in a scenario file."""

    upstream: tuple[AnyToxic, ...] = ()
    downstream: tuple[AnyToxic, ...] = ()


class ProxySpec(FaultSpec, tag="proxy", frozen=True):
    """The TCP fault proxy on one link: ``spamc-spamd`` (a proxy in the runner, which spamc
    is pointed at) or ``spamd-db`` (the lab's own proxy process, through which spamd's DSN
    goes when ``[lab.database] proxy = true``). Shaped either by one word for both
    directions (``mode`` with its numbers) or by ``toxics`` per direction. Time values in
    production seconds, rates in bytes per production second."""

    link: Literal["spamc-spamd", "spamd-db"] = "spamc-spamd"
    mode: str = ""
    latency: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    jitter: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    rate: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    slice: Annotated[int, msgspec.Meta(ge=1)] = 1
    interval: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    after: Annotated[int, msgspec.Meta(ge=0)] = 0
    toxics: Toxics | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.mode) == (self.toxics is not None):
            raise ValueError("give either 'mode' or 'toxics'")
        if self.mode and self.mode not in MODES:
            raise ValueError(f"unknown proxy mode {self.mode!r} (known: {', '.join(MODES)})")
        if self.mode == "bandwidth" and self.rate <= 0:
            raise ValueError("mode 'bandwidth' needs a positive 'rate'")

    def failure_mode(self) -> Mode:
        return Mode.NET_SLOW if self.link == "spamc-spamd" else Mode.DB_UNREACHABLE

    def shape(self, scale: Scale) -> Shape:
        if self.toxics is not None:
            return Shape(upstream=tuple(_scaled(t, scale) for t in self.toxics.upstream),
                         downstream=tuple(_scaled(t, scale) for t in self.toxics.downstream))
        return mode_shape(self.mode, latency=scale.seconds(self.latency),
                          jitter=scale.seconds(self.jitter), rate=scale.rate(self.rate),
                          slice_=self.slice, interval=scale.seconds(self.interval),
                          after=self.after)

    def build(self, scale: Scale) -> Fault:
        return ProxyFault(self.link, self.shape(scale))


def _scaled(t: AnyToxic, scale: Scale) -> AnyToxic:
    """A toxic's production seconds in drill seconds; its rates per drill second."""
    changes: dict[str, float] = {}
    for name in ("latency", "jitter", "interval"):
        if hasattr(t, name):
            changes[name] = scale.seconds(getattr(t, name))
    if hasattr(t, "rate"):
        changes["rate"] = scale.rate(t.rate)
    return msgspec.structs.replace(t, **changes)


class ProxyFault(Fault):
    def __init__(self, link: str, shape: Shape) -> None:
        self.name = f"proxy-{link}"
        self.link = link
        self.shape = shape
        self._proxy: Proxy | None = None
        self._counters: Counters | None = None  # the in-process proxy's, kept past close
        self._undo: Undo | None = None
        self._shaped = False

    def setup(self, ctl: LabControl) -> None:
        if self.link == "spamc-spamd" and self._proxy is None:
            self._proxy = ctl.proxy_before_spamd()
            self._counters = self._proxy.counters

    def inject(self, ctl: LabControl) -> str:
        if self._proxy is not None:
            self._proxy.set_shape(self.shape)
        else:
            self._undo = ctl.shape_db_link(self.shape)
        self._shaped = True
        return f"proxy {self.link}: {self.shape.describe()}"

    def lift(self, ctl: LabControl) -> str:
        if not self._shaped:
            return "not shaped"
        self._shaped = False
        if self._proxy is not None:
            self._proxy.set_shape(Shape())
        if self._undo is not None:
            self._undo.heal()
            self._undo = None
        return f"proxy {self.link} passes traffic untouched"

    def evidence(self, ctl: LabControl) -> FaultReport:
        c = self._counters if self.link == "spamc-spamd" else ctl.db_link_counters()
        if c is None:
            return self.report(False, "the proxy's counters could not be read")
        took = c.shaped_chunks > 0 or c.down_spells > 0
        return self.report(took, f"{c.connections} connection(s), {c.shaped_chunks} "
                           f"chunk(s) shaped, {c.upstream_bytes} B up, "
                           f"{c.downstream_bytes} B down")

    def teardown(self, ctl: LabControl) -> None:
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
