"""Where each lab process runs and how (sans-IO apart from the hosts' set-up): the
endpoints of a loopback lab or of the multi-host topology, a process's argv placed on its
host, its output file, and the environment it starts with."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from spamdrill.lab import netns
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.config import SYNCOOKIES, LabConfig
from spamdrill.lab.journal import NetnsRecord
from spamdrill.lab.layout import Layout
from spamdrill.lab.net import claim_port, free_loopback_53
from spamdrill.lab.procs import Proc
from spamdrill.lab.state import LOOPBACK, Endpoint, LabState, NetRef, RspamdRef

# which host of the multi-host topology each lab process runs on
ROLE = {"spamd": "spamd", "mariadb": "db", "dbproxy": "db", "dns": "dns", "dns2": "dns"}
# the well-known ports, free in a namespace of the lab's own
HOST_PORTS = {"spamd": 783, "mariadb": 3306, "dbproxy": 3307}

Progress = Callable[[str], None]


def path_env() -> dict[str, str]:
    # mariadbd and spamd live in /usr/sbin, which an ordinary user's PATH may lack
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": path + ":/usr/sbin:/sbin"} if "/usr/sbin" not in path else {}


def plan_loopback(state: LabState, config: LabConfig) -> None:
    """Everything on 127.0.0.1; ports claimed first, so a taken one fails before anything
    runs."""
    state.spamd = Endpoint(LOOPBACK, claim_port(LOOPBACK, config.spamd.port, "spamd"))
    state.db = Endpoint(LOOPBACK, claim_port(LOOPBACK, config.database.port, "MariaDB"))
    if config.database.proxy:
        state.db_proxy = Endpoint(LOOPBACK, claim_port(LOOPBACK, 0, "the database proxy"))
    if state.private_resolver:
        # libc needs port 53: a private 127.53.x.y of our own, used only by spamd's namespace
        state.dns = Endpoint(free_loopback_53(), 53)
    else:
        state.dns = Endpoint(LOOPBACK, claim_port(LOOPBACK, config.dns.port, "lab DNS",
                                                  udp=True))
    if config.dns.secondary:
        state.dns2 = Endpoint(free_loopback_53(), 53) if state.private_resolver else \
            Endpoint(LOOPBACK, claim_port(LOOPBACK, 0, "lab DNS (secondary)", udp=True))
    r = config.rspamd
    if r.enabled:
        normal, controller, proxy, redis = (
            Endpoint(LOOPBACK, claim_port(LOOPBACK, port, what))
            for port, what in ((r.port, "rspamd"), (r.controller_port, "rspamd controller"),
                               (r.proxy_port, "rspamd proxy"), (r.redis_port, "Redis")))
        redis_proxy = Endpoint(LOOPBACK, claim_port(LOOPBACK, 0, "the Redis proxy")) \
            if r.redis_proxy else None
        state.rspamd = RspamdRef(normal, controller, proxy, redis,
                                 milter_default_action=r.milter_default_action,
                                 milter_content_timeout=r.milter_content_timeout,
                                 redis_proxy=redis_proxy)


def plan_hosts(state: LabState, config: LabConfig, progress: Progress) -> None:
    """Client, spamd, database and DNS hosts in namespaces of their own (root only)."""
    net = netns.plan(state.marker, config.topology.clients)
    state.net = NetRef(net.tag, net.prefix, net.clients)
    state.save()  # the tag that the journal's namespace records must carry
    journal = state.journal
    for ns in net.namespaces():  # journaled before they exist: lab down finds them all
        journal.record(NetnsRecord(ns=ns, host_if=net.control_if if ns == net.switch
                                   else ""))
    progress(f"hosts: {', '.join(f'{r} {net.ip(r)}' for r in net.roles)} on {net.cidr}")
    netns.create(net)
    topo = config.topology
    for roles, value in ((("spamd",), topo.spamd_somaxconn),
                         (netns.client_roles(net.clients), topo.client_somaxconn),
                         (("db",), topo.db_somaxconn)):
        for role in roles if value else ():
            netns.set_sysctl(net.host(role), "net.core.somaxconn", value)
    cookies = SYNCOOKIES[topo.spamd_syncookies]
    if cookies is not None:
        netns.set_sysctl(net.host("spamd"), "net.ipv4.tcp_syncookies", cookies)
    state.spamd = Endpoint(net.ip("spamd"), config.spamd.port or HOST_PORTS["spamd"])
    state.db = Endpoint(net.ip("db"), config.database.port or HOST_PORTS["mariadb"])
    if config.database.proxy:
        state.db_proxy = Endpoint(net.ip("db"), HOST_PORTS["dbproxy"])
    state.dns = Endpoint(net.ip("dns"), 53)
    if config.dns.secondary:
        state.dns2 = Endpoint(net.ip("dns2"), 53)


def state_proc(state: LabState, name: str) -> Proc | None:
    """The process lab.json records under ``name``, if any."""
    ref = state.pids.get(name)
    if ref is None:
        return None
    return Proc(name, ref.pid, ref.ticks, output_log(state.layout, name))


def output_log(layout: Layout, name: str) -> Path:
    """Where a lab process's stdout and stderr go."""
    return {"spamd": layout.spamd_out, "mariadb": layout.db_log.with_suffix(".out"),
            "dbproxy": layout.db_proxy_out, "dns": layout.dns_out,
            "dns2": layout.dns_out.with_name("server-secondary.out"),
            "rspamd": rspamd_lab.Paths(layout.root).out,
            "redis": rspamd_lab.Paths(layout.root).redis_out,
            "redisproxy": rspamd_lab.Paths(layout.root).redis_proxy_out}[name]


def placed(state: LabState, name: str, argv: list[str]) -> list[str]:
    """``argv`` on its host (multi-host topology); spamd, as root, with the lab's
    resolv.conf in a private mount namespace, so the DSN's host name is resolved by the
    lab DNS and the machine's file is untouched."""
    resolv = state.layout.resolv_conf if name in ("spamd", "rspamd") and \
        state.private_resolver else None
    net = state.network
    if net is not None:
        return net.host(ROLE[name]).exec(argv, resolv)
    return netns.with_resolv(argv, resolv) if resolv is not None else argv
