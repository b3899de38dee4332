"""Faults on the way between the hosts: packets (nftables), the lab DNS's answers, and
the TCP fault proxy on the spamc-spamd or spamd-MariaDB link."""

from __future__ import annotations

from dataclasses import dataclass, field

from spamdrill.drills.nemesis.base import Fault
from spamdrill.errors import SpamdrillError
from spamdrill.lab import faults as lab_faults
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.procs import Journal
from spamdrill.lab.proxy import FaultProxy, Shape
from spamdrill.load.spamc import Action

PACKET_HOSTS = ("spamd", "db")


@dataclass
class PacketFault(Fault):
    """nftables on a host of the multi-host topology, for TCP to its service's port
    (spamd's or MariaDB's): dropped, reset, or answered with ICMP port unreachable; new
    connections only or established ones too. Journaled; the rules also die with the
    namespace."""

    state: lab_ops.LabState | None = None
    host: str = "db"
    action: str = "drop"
    established: bool = False
    at: float = 0.0
    duration: float = 0.0
    _ns: str = ""
    _fid: str = ""

    def before_load(self) -> None:
        st = self.state
        assert st is not None
        net = st.network
        if net is None:
            raise SpamdrillError(f"packet faults need the {self.host} on a host of its own",
                                 'set [lab.topology] kind = "hosts" (root only)')
        self._ns = net.host(self.host).ns
        if self.at <= 0:
            self._inject()

    def actions(self) -> list[Action]:
        acts = [] if self.at <= 0 else [Action(self.at, f"packets-{self.action}",
                                               self._inject)]
        if self.duration:
            acts.append(Action(self.at + self.duration, "packets-lifted", self._lift))
        return acts

    def _inject(self) -> str:
        st = self.state
        assert st is not None
        port = st.spamd_port if self.host == "spamd" else st.db_port
        self._fid = lab_faults.packet_rule(Journal(st.layout.journal), self._ns, port,
                                           self.action, self.established)
        which = "all" if self.established else "new"
        detail = f"nftables in {self._ns}: {self.action} {which} connections to :{port}"
        self._open(detail)
        return detail

    def _lift(self) -> str:
        if self._fid and self.state is not None:
            lab_faults.clear_packet_rule(Journal(self.state.layout.journal), self._ns,
                                         self._fid)
            self._fid = ""
        self._close_all()
        return "packet rule removed"

    def heal(self) -> None:
        self._lift()


@dataclass
class DnsFault(Fault):
    """The lab DNS switched per name: ``rules`` of (name, mode, delay drill s)."""

    state: lab_ops.LabState | None = None
    rules: list[tuple[str, str, float]] = field(default_factory=list)
    at: float = 0.0
    _fid: str = ""

    def before_load(self) -> None:
        if self.at <= 0:
            self._apply()

    def actions(self) -> list[Action]:
        return [] if self.at <= 0 else [Action(self.at, "dns", lambda: self._apply())]

    def _apply(self) -> str:
        assert self.state is not None
        self._fid = lab_faults.dns_rules(Journal(self.state.layout.journal),
                                         self.state.layout, self.rules)
        detail = ", ".join(f"{n}: {m}" + (f" {d:g}s" if m == "delay" else "")
                           for n, m, d in self.rules)
        self._open(f"DNS {detail}")
        return detail

    def heal(self) -> None:
        if self.state is not None and self._fid:
            lab_faults.clear_dns(Journal(self.state.layout.journal), self.state.layout,
                                 self._fid)
            self._fid = ""
        self._close_all()


PROXY_LINKS = ("spamc-spamd", "spamd-db")


@dataclass
class ProxyFault(Fault):
    """The TCP fault proxy on one link, shaped from ``at`` to the end of the load.

    ``spamc-spamd``: a proxy in this process, which spamc is pointed at instead of spamd
    (on the control link's address when the clients live on a host of their own).
    ``spamd-db``: the lab's own proxy process, through which spamd's DSN always goes when
    ``[lab.database] proxy = true``; its shape is switched through a journaled file.
    """

    state: lab_ops.LabState | None = None
    shape: Shape = field(default_factory=Shape)
    link: str = "spamc-spamd"
    at: float = 0.0
    proxy: FaultProxy | None = None
    _fid: str = ""

    def start(self) -> tuple[str, int] | None:
        """Where spamc must connect instead of spamd, if this proxy sits in front of it."""
        st = self.state
        assert st is not None
        if self.link == "spamd-db":
            if not st.db_proxy_port:
                raise SpamdrillError("a spamd-db proxy fault needs the lab's database proxy",
                                     "set [lab.database] proxy = true in the scenario")
            return None
        net = st.network
        here = net.ip("control") if net is not None else "127.0.0.1"
        self.proxy = FaultProxy((st.spamd_host, st.spamd_port), listen=(here, 0))
        return here, self.proxy.port

    def before_load(self) -> None:
        if self.at <= 0:
            self._apply()

    def actions(self) -> list[Action]:
        return [] if self.at <= 0 else [Action(self.at, f"proxy-{self.shape.mode}",
                                               self._apply)]

    def _apply(self) -> str:
        st = self.state
        assert st is not None
        sh = self.shape
        if self.proxy is not None:
            self.proxy.set_shape(sh)
        else:
            self._fid = lab_faults.proxy_shape(Journal(st.layout.journal),
                                               st.layout.db_proxy_shape, sh)
        detail = (f"proxy {self.link} {sh.mode}: latency {sh.latency:g} s "
                  f"(jitter {sh.jitter:g} s), rate "
                  f"{sh.rate:g} B/s, slice {sh.slice} every {sh.interval:g} s, "
                  f"after {sh.after} B")
        self._open(detail)
        return detail

    def heal(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self._fid and self.state is not None:
            lab_faults.clear_proxy(Journal(self.state.layout.journal),
                                   self.state.layout.db_proxy_shape, self._fid)
            self._fid = ""
        self._close_all()
