"""A host of the lab's own in a network namespace, joined to this one by a veth pair and
addressed in 198.18.0.0/15 (the benchmarking range). Root only. What it creates is named
after the lab and recorded in the lab's journal first, so ``lab down`` removes it even
after a crash; deleting the namespace takes its veth end and nftables rules with it."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
from dataclasses import dataclass

from spamdrill.errors import SpamdrillError

RANGE = ipaddress.ip_network("198.18.0.0/15")


@dataclass(frozen=True)
class Host:
    ns: str
    host_if: str
    host_ip: str  # this side
    ns_ip: str  # the namespace's side

    def exec(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]


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


def plan(tag: str) -> Host:
    """Names and a free /30 for a new host (nothing created yet)."""
    used = _used_nets()
    rng = random.SystemRandom()
    for _ in range(200):
        base = int(RANGE.network_address) + 4 * rng.randrange(RANGE.num_addresses // 4)
        net = ipaddress.ip_network(f"{ipaddress.ip_address(base)}/30")
        if not any(net.overlaps(u) for u in used):
            a, b = list(net.hosts())
            return Host(ns=f"spamdrill-{tag}", host_if=f"sd{tag[:8]}h", host_ip=str(a),
                        ns_ip=str(b))
    raise SpamdrillError("no free /30 in 198.18.0.0/15 for the lab's namespace")


def create(h: Host) -> None:
    require_root("the netns topology")
    peer = h.host_if[:-1] + "n"
    _ip("netns", "add", h.ns)
    _ip("link", "add", h.host_if, "type", "veth", "peer", "name", peer)
    _ip("link", "set", peer, "netns", h.ns)
    _ip("addr", "add", f"{h.host_ip}/30", "dev", h.host_if)
    _ip("link", "set", h.host_if, "up")
    _ip("netns", "exec", h.ns, "ip", "addr", "add", f"{h.ns_ip}/30", "dev", peer)
    _ip("netns", "exec", h.ns, "ip", "link", "set", peer, "up")
    _ip("netns", "exec", h.ns, "ip", "link", "set", "lo", "up")


def delete(ns: str, host_if: str) -> None:
    """Remove the namespace (its veth end and rules go with it) and our veth end."""
    _ip("netns", "del", ns, check=False)
    _ip("link", "del", host_if, check=False)


def exists(ns: str) -> bool:
    return ns in _ip("netns", "list", check=False).stdout.split()


def nft(h: Host, script: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", h.ns, "nft", "-f", "-"], input=script,
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SpamdrillError(f"nft in {h.ns} failed: {done.stderr.strip()}")


def packet_rule(port: int, action: str, established_too: bool = False) -> str:
    """An nftables table dropping or rejecting TCP to ``port`` on the namespace's input."""
    verdict = {"drop": "drop", "reject": "reject with tcp reset"}[action]
    match = "" if established_too else "ct state new "
    return (f"table inet spamdrill {{\n chain input {{\n  type filter hook input priority 0;"
            f"\n  tcp dport {port} {match}{verdict}\n }}\n}}\n")


def clear_rules(h: Host) -> None:
    subprocess.run(["ip", "netns", "exec", h.ns, "nft", "delete", "table", "inet",
                    "spamdrill"], capture_output=True, timeout=30)
