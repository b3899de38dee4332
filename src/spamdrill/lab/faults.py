"""Faults on the lab's components that must survive the death of whoever injected them.

Each injection is written to the lab's journal *before* it takes effect, and its healing
after; ``heal_journaled`` (run by ``lab down`` and before any teardown) undoes what a
SIGKILLed drill left: a SIGSTOPped mariadbd gets SIGCONT, changed server variables are
restored, DNS failure rules and nftables rules are cleared, the database proxy forwards
untouched again (the spamd-MariaDB and the rspamd-Redis ones), a stopped spamd is started
again. Locks need no journal: they belong to a
connection, and MariaDB releases them when the holder dies.

Every injection returns an ``InEffect`` whose ``heal()`` undoes it exactly once; the same
healing code serves ``heal_journaled``, so a heal after a crash is the heal a drill runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pymysql

from spamdrill.lab import dns, maildir, mariadb, netns
from spamdrill.lab.journal import (
    AnyFault,
    DbGlobal,
    DbVariable,
    DnsRules,
    FaultRecord,
    HealedRecord,
    Journal,
    Nft,
    Pause,
    ProxyShape,
    QuotaFilled,
    Stopped,
)
from spamdrill.lab.layout import Layout
from spamdrill.lab.procs import carries, is_alive
from spamdrill.lab.proxy import Shape, write_shape
from spamdrill.lab.rspamd import Paths as RspamdPaths

PROXY_APPLY_S = 2.0  # the proxy process polls its shape file every 50 ms
Restart = Callable[[str], None]  # starts a lab process again by name


@dataclass
class InEffect:
    """A journaled fault in effect."""

    journal: Journal
    id: str
    fault: AnyFault
    healed: bool = False

    def heal(self, restart: Restart | None = None) -> None:
        """Undo the fault (once; later calls do nothing) and journal that it healed."""
        if self.healed:
            return
        _undo(self.journal, self.fault, restart)
        self.journal.record(HealedRecord(id=self.id))
        self.healed = True


def _inject(journal: Journal, fault: AnyFault) -> InEffect:
    fid = uuid.uuid4().hex[:10]
    journal.record(FaultRecord(id=fid, fault=fault))
    return InEffect(journal, fid, fault)


def _layout(journal: Journal) -> Layout:
    return Layout(journal.root)


def _resume(journal: Journal, fault: Pause, restart: Restart | None) -> None:
    # only a group whose leader is provably the lab's: a forged record steers no signal
    if journal.marker and is_alive(fault.pid, fault.ticks) \
            and carries(fault.pid, journal.marker):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(fault.pid, signal.SIGCONT)


def _restore(journal: Journal, fault: DbGlobal, restart: Restart | None) -> None:
    layout = _layout(journal)
    if mariadb.probe(layout):  # else the server is gone, and the setting with it
        with mariadb.admin(layout) as conn, conn.cursor() as cur:
            cur.execute(f"SET GLOBAL {fault.name} = %s", (fault.old,))


def _answer(journal: Journal, fault: DnsRules, restart: Restart | None) -> None:
    dns.clear_rules(_layout(journal))


def _unfilter(journal: Journal, fault: Nft, restart: Restart | None) -> None:
    if netns.exists(fault.ns):  # else the namespace, and its rules, are gone
        netns.clear_rules(fault.ns)


def _shape_file(journal: Journal, link: str) -> Path:
    layout = _layout(journal)
    return layout.db_proxy_shape if link == "spamd-db" else \
        RspamdPaths(layout.root).redis_proxy_shape


def _pass(journal: Journal, fault: ProxyShape, restart: Restart | None) -> None:
    write_shape(_shape_file(journal, fault.link), Shape(), wait=PROXY_APPLY_S)


def _start(journal: Journal, fault: Stopped, restart: Restart | None) -> None:
    if restart is not None:
        restart(fault.name)


def _empty(journal: Journal, fault: QuotaFilled, restart: Restart | None) -> None:
    layout = _layout(journal)
    maildir.unfill_quota(layout.root, layout.maildir(fault.user))


# how each kind of journaled fault is undone: one table for a drill's heal and a crash's
_UNDO: dict[type[Any], Callable[[Journal, Any, Restart | None], None]] = {
    Pause: _resume, DbGlobal: _restore, DnsRules: _answer, Nft: _unfilter,
    ProxyShape: _pass, Stopped: _start, QuotaFilled: _empty,
}


def _undo(journal: Journal, fault: AnyFault, restart: Restart | None) -> None:
    _UNDO[type(fault)](journal, fault, restart)


def pause(journal: Journal, pid: int, ticks: int | None) -> InEffect:
    """SIGSTOP a process group (mariadbd frozen: connections hang, nothing answers)."""
    done = _inject(journal, Pause(pid=pid, ticks=ticks))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGSTOP)
    return done


def set_db_global(journal: Journal, name: DbVariable, value: int) -> InEffect:
    """``SET GLOBAL name = value``, journaling the old value first."""
    layout = _layout(journal)
    with mariadb.admin(layout) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT @@GLOBAL.{name}")
        row = cur.fetchone()
        done = _inject(journal, DbGlobal(name=name, old=int(row[0]) if row else 0))
        cur.execute(f"SET GLOBAL {name} = %s", (value,))
    return done


def dns_rules(journal: Journal, rules: list[tuple[str, str, float]]) -> InEffect:
    done = _inject(journal, DnsRules())
    for name, mode, delay in rules:
        dns.set_rule(_layout(journal), name, mode, delay)
    return done


def packet_rule(journal: Journal, ns: str, port: int, action: str,
                established_too: bool = False) -> InEffect:
    """Drop or reject TCP to ``port`` inside the namespace ``ns`` (``netns.packet_rule``)."""
    done = _inject(journal, Nft(ns=ns))
    netns.nft(ns, netns.packet_rule(port, action, established_too))
    return done


def proxy_shape(journal: Journal, shape: Shape,
                link: Literal["spamd-db", "rspamd-redis"] = "spamd-db") -> InEffect:
    """Shape one of the lab's proxy processes, spamd's to MariaDB or rspamd's to Redis
    (each follows its file)."""
    done = _inject(journal, ProxyShape(link=link))
    write_shape(_shape_file(journal, link), shape, wait=PROXY_APPLY_S)
    return done


def stopped(journal: Journal, name: Literal["spamd", "mariadb", "rspamd", "redis"],
            ) -> InEffect:
    """Journal that a lab process is being stopped as a fault (the caller stops it); a
    heal after a crash starts it again."""
    return _inject(journal, Stopped(name=name))


def fill_quota(journal: Journal, user: str) -> InEffect:
    """Fill a lab user's Maildir to its quota: the next delivery to it is over quota."""
    done = _inject(journal, QuotaFilled(user=user))
    layout = _layout(journal)
    maildir.fill_quota(layout.root, layout.maildir(user))
    return done


def heal_journaled(journal: Journal, restart: Restart | None = None) -> list[str]:
    """Undo every fault the journal shows as not healed; returns what was healed. A paused
    server first: every other heal may need it to answer."""
    done = []
    for rec in sorted(journal.open_faults(), key=lambda r: not isinstance(r.fault, Pause)):
        try:
            InEffect(journal, rec.id, rec.fault).heal(restart)
        except (OSError, pymysql.MySQLError):
            continue
        done.append(str(rec.fault.__struct_config__.tag))
    return done

