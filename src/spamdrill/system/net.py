"""The resolver's settings and the hosts file (sans-IO).

- resolv.conf(5), glibc: up to 3 ``nameserver`` lines are used; ``options timeout:N``
  (capped at 30, RES_MAXRETRANS) and ``attempts:N`` (capped at 5, RES_MAXRETRY).
- hosts(5): a name listed there is answered without DNS (``hosts: files dns``, Debian's
  nsswitch.conf default), so a dead resolver costs it nothing.
"""

from __future__ import annotations

import ipaddress

from spamdrill.system.values import Sourced, at


def resolv_conf(text: str, path: str) -> dict[str, Sourced[float]]:
    """``resolv_servers``, ``resolv_timeout``, ``resolv_attempts``, each with its line."""
    out: dict[str, Sourced[float]] = {}
    servers = 0
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers += 1
            out["resolv_servers"] = Sourced(float(min(servers, 3)), at(path, n))
        elif words[0] == "options":
            for opt in words[1:]:
                name, _, value = opt.partition(":")
                if name == "timeout" and value.isdigit():
                    out["resolv_timeout"] = Sourced(float(min(int(value), 30)), at(path, n))
                elif name == "attempts" and value.isdigit():
                    out["resolv_attempts"] = Sourced(float(min(int(value), 5)), at(path, n))
    return out


def hosts_names(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1:
            names.update(w.lower() for w in words[1:])
    return names


def needs_dns(host: str, hosts: set[str]) -> bool:
    """Whether looking ``host`` up asks DNS: not an address, not in the hosts file."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        return host.lower() not in hosts and host.lower() != "localhost"
