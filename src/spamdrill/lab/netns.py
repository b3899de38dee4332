"""The multi-host lab: the field report's hosts as network namespaces of the lab's own.

Client (cormorant; more client hosts for a distributed load), spamd (heron), database
(loon) and the lab DNS each get a namespace
with one ``eth0`` on a bridge that lives in a further "switch" namespace, so hosts talk at
layer 2 and nothing is routed or forwarded by the machine. One veth pair joins the switch
to this namespace (the control link), so the runner can still reach every host. Addresses
are a free /24 in 198.18.0.0/15 (the benchmarking range). Each host has its own
``net.core.somaxconn`` (a per-namespace sysctl) and, for what runs in it, its own
``/etc/resolv.conf`` bind-mounted in a private mount namespace; the machine's files and
settings are never touched.

Root only. Every namespace is recorded in the lab's journal before it is created, so
``lab down`` removes it even after a crash; deleting a namespace takes its veth ends and
nftables rules with it.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.proto import netstat

RANGE = ipaddress.ip_network("198.18.0.0/15")
ROLES = ("client", "spamd", "db", "dns")
MAX_CLIENTS = 8  # client, client2 .. client8: 198.18.x.10-17
# last octet of each address in the lab's /24; dns2 is a second address of the DNS host
OCTET = {"control": 1, "client": 10, "spamd": 20, "db": 30, "dns": 53, "dns2": 54,
         **{f"client{k}": 10 + k - 1 for k in range(2, MAX_CLIENTS + 1)}}


def client_roles(clients: int) -> tuple[str, ...]:
    """The client hosts: ``client``, then ``client2``... (one per local load worker)."""
    return ("client", *(f"client{k}" for k in range(2, clients + 1)))
# with ``ip netns exec`` already in a mount namespace of its own (propagation slave), so the
# bind mount is seen by the command alone
_BIND_RESOLV = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'


@dataclass(frozen=True)
class Host:
    ns: str
    ip: str

    def exec(self, argv: list[str], resolv: Path | None = None) -> list[str]:
        """``argv`` run inside this host, seeing ``resolv`` as /etc/resolv.conf."""
        return ["ip", "netns", "exec", self.ns, *_with_resolv(argv, resolv, private=False)]


def _with_resolv(argv: list[str], resolv: Path | None, *, private: bool) -> list[str]:
    if resolv is None:
        return argv
    unshare = ["unshare", "--mount", "--propagation", "private"] if private else []
    return [*unshare, "sh", "-c", _BIND_RESOLV, str(resolv), *argv]


def with_resolv(argv: list[str], resolv: Path) -> list[str]:
    """``argv`` in a private mount namespace of this host, seeing ``resolv`` (root only)."""
    return _with_resolv(argv, resolv, private=True)


@dataclass(frozen=True)
class Net:
    """One lab's hosts: a /24, the switch namespace and the control link's name here;
    ``clients`` client hosts (more than one gives each local load worker its own)."""

    tag: str
    prefix: str  # "198.18.7" for 198.18.7.0/24
    clients: int = 1

    @property
    def roles(self) -> tuple[str, ...]:
        return (*client_roles(self.clients), *ROLES[1:])

    @property
    def switch(self) -> str:
        return f"spamdrill-{self.tag}-sw"

    @property
    def control_if(self) -> str:
        return f"sd{self.tag}c"

    def ip(self, role: str) -> str:
        return f"{self.prefix}.{OCTET[role]}"

    def host(self, role: str) -> Host:
        return Host(f"spamdrill-{self.tag}-{role}", self.ip(role))

    @property
    def cidr(self) -> str:
        return f"{self.prefix}.0/24"

    def namespaces(self) -> list[str]:
        return [self.switch, *(self.host(r).ns for r in self.roles)]


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise SpamdrillError(f"{what} needs root (network namespaces, nftables)",
                             "run as root, or use the loopback topology")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise SpamdrillError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _used_nets() -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = _ip("-4", "-o", "addr", "show").stdout
    nets = set()
    for line in out.splitlines():
        for word in line.split():
            if "/" in word and word[0].isdigit():
                nets.add(ipaddress.ip_interface(word).network)
    return nets


def plan(tag: str, clients: int = 1) -> Net:
    """Names and a free /24 for a new lab network (nothing created yet)."""
    used = _used_nets()
    rng = random.SystemRandom()
    for _ in range(200):
        base = int(RANGE.network_address) + 256 * rng.randrange(RANGE.num_addresses // 256)
        net = ipaddress.ip_network(f"{ipaddress.ip_address(base)}/24")
        if not any(net.overlaps(u) for u in used):
            return Net(tag=tag[:6], prefix=str(net.network_address).rsplit(".", 1)[0],
                       clients=clients)
    raise SpamdrillError("no free /24 in 198.18.0.0/15 for the lab's hosts")


def create(net: Net) -> None:
    """The switch, the control link and one host per role (journal the names first)."""
    require_root("the multi-host topology")
    sw = net.switch
    _ip("netns", "add", sw)
    _ip("-n", sw, "link", "add", "br0", "type", "bridge")
    _ip("-n", sw, "link", "set", "br0", "up")
    _ip("link", "add", net.control_if, "type", "veth", "peer", "name", "ctl", "netns", sw)
    _ip("addr", "add", f"{net.ip('control')}/24", "dev", net.control_if)
    _ip("link", "set", net.control_if, "up")
    _plug(sw, "ctl")
    for role in net.roles:
        host = net.host(role)
        _ip("netns", "add", host.ns)
        _ip("-n", sw, "link", "add", role, "type", "veth", "peer", "name", "eth0", "netns",
            host.ns)
        _plug(sw, role)
        addrs = [host.ip, net.ip("dns2")] if role == "dns" else [host.ip]
        for addr in addrs:
            _ip("-n", host.ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        _ip("-n", host.ns, "link", "set", "eth0", "up")
        _ip("-n", host.ns, "link", "set", "lo", "up")


def _plug(switch: str, port: str) -> None:
    _ip("-n", switch, "link", "set", port, "master", "br0")
    _ip("-n", switch, "link", "set", port, "up")


def set_sysctl(host: Host, key: str, value: int) -> None:
    """One of the host's own network settings (``net.core.somaxconn``, the accept-queue
    cap; ``net.ipv4.tcp_syncookies``): per namespace, the machine's stay as they are."""
    done = subprocess.run(["ip", "netns", "exec", host.ns, "sysctl", "-q", "-w",
                           f"{key}={value}"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SpamdrillError(f"{key} in {host.ns}: {done.stderr.strip()}")


def somaxconn(host: Host) -> int:
    done = subprocess.run(["ip", "netns", "exec", host.ns, "sysctl", "-n",
                           "net.core.somaxconn"], capture_output=True, text=True, timeout=30)
    return int(done.stdout.strip())


def tcp_counters(host: Host) -> dict[str, int]:
    """The host's own TCP counters (its namespace's /proc/net/netstat and snmp)."""
    done = subprocess.run(host.exec(["cat", "/proc/net/netstat", "/proc/net/snmp"]),
                          capture_output=True, text=True, timeout=30)
    return netstat.parse(done.stdout)


def delete(ns: str, host_if: str = "") -> None:
    """Remove a namespace (its veth ends and rules go with it) and our veth end, if any.
    The kernel frees a namespace's devices asynchronously: delete our end ourselves."""
    _ip("netns", "del", ns, check=False)
    if host_if:
        _ip("link", "del", host_if, check=False)


def exists(ns: str) -> bool:
    return ns in _ip("netns", "list", check=False).stdout.split()


def nft(ns: str, script: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script,
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SpamdrillError(f"nft in {ns} failed: {done.stderr.strip()}")


PACKET_ACTIONS = {"drop": "drop", "reset": "reject with tcp reset",
                  "icmp": "reject with icmpx type port-unreachable"}


def packet_rule(port: int, action: str, established_too: bool = False) -> str:
    """An nftables table on the namespace's input for TCP to ``port``: ``drop`` (silence),
    ``reset`` (a TCP RST) or ``icmp`` (ICMP port unreachable); new connections only, or
    established ones too."""
    verdict = PACKET_ACTIONS[action]
    # a new connection is a SYN without ACK: not "ct state new", which also matches the
    # first packet conntrack sees of a connection opened before the rule existed (the
    # namespace's conntrack starts with the first rule), and so silenced old ones too
    match = "" if established_too else "tcp flags & (syn | ack) == syn "
    return (f"table inet spamdrill {{\n chain input {{\n  type filter hook input priority 0;"
            f"\n  tcp dport {port} {match}counter {verdict}\n }}\n}}\n")


def rule_packets(ns: str) -> int | None:
    """Packets the lab's rule in ``ns`` matched so far (its nftables counter): the
    evidence that a packet fault took effect. None without the table."""
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet",
                           "spamdrill"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return None
    found = re.search(r"counter packets (\d+)", done.stdout)
    return int(found.group(1)) if found else None


def clear_rules(ns: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet",
                    "spamdrill"], capture_output=True, timeout=30)
