"""What ``spamdrill lab status`` shows: each component of a lab, probed as readiness was
(a DNS query, ``SELECT 1``, spamd's PING, an SMTP greeting), with what it is doing."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spamdrill.lab import dns, mariadb, netns, postfix, redis, spamd
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.layout import Layout
from spamdrill.lab.placement import state_proc
from spamdrill.lab.state import Endpoint, LabState
from spamdrill.proto.spamd_log import describe_states, last_child_states


@dataclass
class Component:
    name: str
    up: bool
    pid: int | None
    host: str | None
    port: int | None
    since: float | None = None
    detail: str = ""

    def public(self) -> dict[str, object]:
        return {"name": self.name, "up": self.up, "pid": self.pid, "host": self.host,
                "port": self.port, "uptime_s": round(time.time() - self.since, 1)
                if self.up and self.since else None, "detail": self.detail}


def status(run_dir: Path) -> tuple[LabState | None, list[Component]]:
    if not os.path.lexists(run_dir):
        return None, []
    layout = Layout(run_dir)
    state = LabState.load(layout)
    if state is None:
        return None, []

    def proc_up(name: str) -> tuple[bool, int | None]:
        proc = state_proc(state, name)
        return (proc is not None and proc.alive()), proc.pid if proc else None

    comps: list[Component] = []
    net = state.network
    if net is not None:
        comps.append(Component(
            "hosts", all(netns.exists(ns) for ns in net.namespaces()), None, net.cidr, None,
            state.started, f"{net.cidr}: " + ", ".join(f"{r} {net.host(r).ns} {net.ip(r)}"
                                                       for r in net.roles)))
    services: list[tuple[str, Endpoint | None, Callable[[Endpoint], bool], str]] = [
        ("dns", state.dns, lambda e: dns.probe(e.host, e.port), _dns_detail(layout)),
        ("dns2", state.dns2, lambda e: dns.probe(e.host, e.port),
         "secondary: drills never break it"),
        ("mariadb", state.db, lambda e: mariadb.probe(layout),
         f"spamd's DSN host: {state.db_name}"),
        ("dbproxy", state.db_proxy, lambda e: mariadb.tcp_probe(e.host, e.port),
         "fault proxy between spamd and MariaDB"),
        ("spamd", state.spamd, lambda e: spamd.ping(e.host, e.port), _spamd_detail(layout)),
    ]
    if state.rspamd is not None:
        ref = state.rspamd
        services += [
            ("redis", ref.redis, lambda e: redis.ping(e.host, e.port), "rspamd's Redis"),
            ("redisproxy", ref.redis_proxy, lambda e: redis.ping(e.host, e.port),
             "fault proxy between rspamd and Redis"),
            ("rspamd", ref.normal, lambda e: rspamd_lab.stat(ref.controller.host,
                                                             ref.controller.port),
             f"controller {ref.controller}, milter proxy {ref.proxy}"),
        ]
    for name, ep, probe, detail in services:
        if ep is None:
            continue
        alive, pid = proc_up(name)
        comps.append(Component(name, alive and probe(ep), pid, ep.host, ep.port,
                               state.started, detail))
    pf, greets = postfix.status(layout.root)
    if pf is not None:
        comps.append(Component("postfix", greets, pf.pid, pf.address, pf.port, state.started,
                               f"private Postfix, {len(pf.transports)} transport(s)"))
    has_rc = layout.maildroprc.exists()
    comps.append(Component("maildrop", has_rc and shutil.which("maildrop") is not None, None,
                           None, None, state.started, str(layout.maildroprc)))
    return state, comps


def _spamd_detail(layout: Layout) -> str:
    try:
        text = layout.spamd_log.read_text(errors="replace")
    except OSError:
        return "no log yet"
    states = last_child_states(text)
    return f"children: {states} ({describe_states(states)})" if states else "no child states"


def _dns_detail(layout: Layout) -> str:
    rules = dns.read_rules(layout)
    if not rules:
        return "all names answer"
    return "; ".join(f"{name}: {r.get('mode')}" for name, r in sorted(rules.items()))
