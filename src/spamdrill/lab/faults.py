"""Faults on the lab's components that must survive the death of whoever injected them.

Each injection is written to the lab's journal *before* it takes effect, and its healing
after; ``heal_journaled`` (run by ``lab down`` and before any teardown) undoes what a
SIGKILLed drill left: a SIGSTOPped mariadbd gets SIGCONT, changed server variables are
restored, DNS failure rules and nftables rules are cleared, the database proxy forwards
untouched again. Locks need no journal: they belong to a
connection, and MariaDB releases them when the holder dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

import pymysql

from spamdrill.lab import dns, mariadb, netns
from spamdrill.lab.layout import Layout
from spamdrill.lab.procs import Journal, is_alive
from spamdrill.lab.proxy import Shape, write_shape

PROXY_APPLY_S = 2.0  # the proxy process polls its shape file every 50 ms


def _record(journal: Journal, kind: str, **data: object) -> str:
    fid = uuid.uuid4().hex[:10]
    journal.record(event="fault", id=fid, kind=kind, **data)
    return fid


def _healed(journal: Journal, fid: str) -> None:
    journal.record(event="healed", id=fid)


def pause(journal: Journal, pid: int, ticks: int | None) -> str:
    """SIGSTOP a process group (mariadbd frozen: connections hang, nothing answers)."""
    fid = _record(journal, "pause", pid=pid, ticks=ticks)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGSTOP)
    return fid


def resume(journal: Journal, fid: str, pid: int, ticks: int | None) -> None:
    if is_alive(pid, ticks):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGCONT)
    _healed(journal, fid)


def set_db_global(journal: Journal, layout: Layout, name: str,
                  value: int) -> tuple[str, object]:
    """``SET GLOBAL name = value``, journaling the old value first; returns (id, old)."""
    with mariadb.admin(layout) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT @@GLOBAL.{name}")
        row = cur.fetchone()
        old = row[0] if row else None
        fid = _record(journal, "db-global", layout=str(layout.root), name=name, old=old)
        cur.execute(f"SET GLOBAL {name} = %s", (value,))
    return fid, old


def restore_db_global(journal: Journal, layout: Layout, fid: str, name: str,
                      old: object) -> None:
    with mariadb.admin(layout) as conn, conn.cursor() as cur:
        cur.execute(f"SET GLOBAL {name} = %s", (old,))
    _healed(journal, fid)


def dns_rules(journal: Journal, layout: Layout, rules: list[tuple[str, str, float]]) -> str:
    fid = _record(journal, "dns-rules", layout=str(layout.root))
    for name, mode, delay in rules:
        dns.set_rule(layout, name, mode, delay)
    return fid


def clear_dns(journal: Journal, layout: Layout, fid: str) -> None:
    dns.clear_rules(layout)
    _healed(journal, fid)


def packet_rule(journal: Journal, ns: str, port: int, action: str,
                established_too: bool = False) -> str:
    """Drop or reject TCP to ``port`` inside the namespace ``ns`` (``netns.packet_rule``)."""
    fid = _record(journal, "nft", ns=ns)
    netns.nft(ns, netns.packet_rule(port, action, established_too))
    return fid


def clear_packet_rule(journal: Journal, ns: str, fid: str) -> None:
    netns.clear_rules(ns)
    _healed(journal, fid)


def proxy_shape(journal: Journal, path: Path, shape: Shape) -> str:
    """Shape the lab's spamd-to-MariaDB proxy (its process follows ``path``)."""
    fid = _record(journal, "proxy-shape", path=str(path))
    write_shape(path, shape, wait=PROXY_APPLY_S)
    return fid


def clear_proxy(journal: Journal, path: Path, fid: str) -> None:
    write_shape(path, Shape(), wait=PROXY_APPLY_S)
    _healed(journal, fid)


def open_faults(journal: Journal) -> list[dict[str, object]]:
    healed = {e.get("id") for e in journal.events() if e.get("event") == "healed"}
    return [e for e in journal.events() if e.get("event") == "fault" and e.get("id")
            not in healed]


def heal_journaled(journal: Journal) -> list[str]:
    """Undo every fault the journal shows as not healed; returns what was healed."""
    done = []
    # a paused server first: every other heal may need it to answer
    for ev in sorted(open_faults(journal), key=lambda e: e.get("kind") != "pause"):
        fid, kind = str(ev["id"]), ev.get("kind")
        try:
            if kind == "pause":
                pid, ticks = ev.get("pid"), ev.get("ticks")
                if isinstance(pid, int):
                    resume(journal, fid, pid, ticks if isinstance(ticks, int) else None)
            elif kind == "db-global":
                layout = Layout(Path(str(ev["layout"])))
                if mariadb.probe(layout):
                    restore_db_global(journal, layout, fid, str(ev["name"]), ev["old"])
                else:
                    _healed(journal, fid)  # the server is gone: nothing holds the setting
            elif kind == "nft":
                ns = str(ev["ns"])
                if netns.exists(ns):
                    clear_packet_rule(journal, ns, fid)
                else:
                    _healed(journal, fid)  # the namespace, and its rules, are gone
            elif kind == "proxy-shape":
                clear_proxy(journal, Path(str(ev["path"])), fid)
            elif kind == "dns-rules":
                layout = Layout(Path(str(ev["layout"])))
                clear_dns(journal, layout, fid)
            else:
                _healed(journal, fid)
        except (OSError, pymysql.MySQLError):
            continue
        done.append(str(kind))
    return done
