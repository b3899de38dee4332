"""The resolver's settings and the hosts file (sans-IO).

- resolv.conf(5), glibc: up to 3 ``nameserver`` lines are used; ``options timeout:N``
  (capped at 30, RES_MAXRETRANS) and ``attempts:N`` (capped at 5, RES_MAXRETRY).
- ``search``/``domain`` and ``options ndots:N``: ``res_search()`` (glibc
  ``resolv/res_query.c``) tries a name as it is and with the first search domain (in the
  order ndots decides); with the resolver dead each try is a whole dead lookup, and a
  TRY_AGAIN stops the search list after its first domain, so a list costs one lookup more.
  ``rotate`` changes which server is asked first, not what all of them dead costs.
- hosts(5): a name listed there is answered without DNS only when nsswitch.conf's
  ``hosts:`` line puts ``files`` before ``dns`` (Debian's ``hosts: files dns``); without
  an nsswitch.conf glibc asks ``dns [!UNAVAIL=return] files``.
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
            _options(words[1:], at(path, n), out)
        elif words[0] in ("search", "domain"):  # the last of the two wins
            out["resolv_search"] = Sourced(float(len(words) - 1), at(path, n))
    return out


CAPS = {"timeout": 30, "attempts": 5, "ndots": 15}  # RES_MAXRETRANS, RES_MAXRETRY, RES_MAXNDOTS


def _options(opts: list[str], where: str, out: dict[str, Sourced[float]]) -> None:
    for opt in opts:
        name, _, value = opt.partition(":")
        if name in CAPS and value.isdigit():
            out[f"resolv_{name}"] = Sourced(float(min(int(value), CAPS[name])), where)
        elif name == "rotate":
            out["resolv_rotate"] = Sourced(1.0, where)


def hosts_files_first(nsswitch: str | None) -> bool:
    """Whether nsswitch.conf's ``hosts:`` asks the hosts file before DNS."""
    order = ["dns", "files"]  # glibc's built-in default without the file
    if nsswitch is not None:
        for line in nsswitch.splitlines():
            words = line.split("#", 1)[0].split()
            if words and words[0] == "hosts:":
                order = [w for w in words[1:] if not w.startswith("[")]
    known = [w for w in order if w in ("files", "dns")]
    return bool(known) and known[0] == "files"


def hosts_names(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1:
            names.update(w.lower() for w in words[1:])
    return names


def needs_dns(host: str, hosts: set[str], files_first: bool = True) -> bool:
    """Whether looking ``host`` up asks DNS: not an address, and not answered by the
    hosts file first."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        if not files_first:
            return True
        return host.lower() not in hosts and host.lower() != "localhost"


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False
