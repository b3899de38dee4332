"""A lab shaped like a system (sans-IO): the system's configuration as ``reader`` read it
becomes a ``LabConfig``, plus the list of what a lab cannot reproduce.

Taken over: spamd's prefork and timeout flags and SpamAssassin's ``rbl_timeout``; the
limiting xfilter's spamc flags, less those that say where spamd is (the lab's spamd is
its own); the xfilter's size condition, whether it sits in ``exception { }`` and
maildrop's ``MAILDIRQUOTA``; whether user preferences and Bayes live in SQL, whether the
DSN names the database's host (so the lab addresses it by name too) and its connect
timeout; the wrapper in master.cf and spamdrill-deliver's deadline.
"""

from __future__ import annotations

from typing import Protocol

from msgspec.structs import replace

from spamdrill.lab.config import (
    WRAPPER_EVENTS,
    DatabaseSettings,
    DeliverySettings,
    LabConfig,
    MaildropSettings,
    SpamdSettings,
)
from spamdrill.system import net
from spamdrill.system.reader import Filter, System


class Measured(Protocol):
    """A wrapper as the budget's sandbox ran it (``budget.wrappertable.Table``)."""

    wrapper: str
    measured: bool
    how: str

    def fate(self, event: str) -> str: ...


# spamc flags that say where spamd is, or how to reach it: the lab sets its own
_WHERE_FLAGS = {"-d", "--dest", "-p", "--port", "-U", "--socket", "-F", "--config", "-u",
                "--username", "-H", "--randomize", "-4", "-6", "-S", "--ssl", "--ssl-cert",
                "--ssl-key", "--ssl-ca-file", "--ssl-ca-path"}
_TAKES_VALUE = {"-d", "--dest", "-p", "--port", "-U", "--socket", "-F", "--config", "-u",
                "--username"}
NO_SIZE_LIMIT = 2**31 - 1

ALWAYS = (
    "other hosts' hardware: the lab's scan times are this machine's, not spamd's host's",
    "real traffic: the lab's messages are generated (GTUBE and ham), not your mail mix",
    "the real database's contents: Bayes tokens and user preferences start empty",
    "SpamAssassin plugins that talk to the outside world (Razor2, Pyzor, DCC, SpamCop, "
    "DKIM, SPF, DMARC) are left out; DNSBLs are answered by the lab's DNS",
    "maildrop's global timeout is the one compiled into this machine's maildrop",
)


def lab_config(system: System, base: LabConfig | None = None,
               filter_index: int | None = None,
               wrapper: Measured | None = None) -> tuple[LabConfig, list[str]]:
    """The lab's config for this system, and what the lab cannot reproduce.
    ``filter_index``: which spamc xfilter (default: the last, as the budget's
    ``inputs.limiting`` would be asked by the caller that has evaluated them);
    ``wrapper``: the system's wrapper as the budget's sandbox measured it, which then
    decides the findings (else its kind as read from its text)."""
    base = base or LabConfig()
    missing = list(ALWAYS)
    f = system.filters[-1 if filter_index is None else filter_index]
    config = replace(base, spamd=_spamd(system, base.spamd),
                     database=_database(system, base.database, missing),
                     maildrop=_maildrop(system, f, base.maildrop, missing),
                     delivery=_delivery(system, base.delivery, missing, wrapper))
    missing += _spamc_gaps(system, f)
    return config, missing


def _spamd(system: System, base: SpamdSettings) -> SpamdSettings:
    n = system.spamd.number
    return replace(base, max_children=n("max-children").value,
                   min_children=n("min-children").value, min_spare=n("min-spare").value,
                   max_spare=n("max-spare").value,
                   max_conn_per_child=n("max-conn-per-child").value,
                   timeout_tcp=n("timeout-tcp").value, timeout_child=n("timeout-child").value,
                   rbl_timeout=round(system.sa.rbl_timeout().value))


def _database(system: System, base: DatabaseSettings, missing: list[str]
              ) -> DatabaseSettings:
    dsn = system.db_dsn
    if dsn is None:
        missing.append("the system keeps no user preferences or Bayes in SQL: the lab's "
                       "database is unused by its spamd")
        return replace(base, user_prefs=False, bayes_sql=False)
    by_name = dsn.kind == "name" and net.needs_dns(dsn.host, system.hosts)
    if dsn.kind == "socket":
        missing.append(f"{dsn.source}: the database is reached over a UNIX socket; the "
                       "lab's spamd reaches its MariaDB over TCP on loopback")
    elif dsn.kind == "name" and not by_name:
        missing.append(f"{dsn.source}: {dsn.host} is in the hosts file: addressed by IP "
                       "in the lab too (no DNS)")
    return replace(base, by_ip=not by_name, user_prefs=system.user_dsn is not None,
                   bayes_sql=system.bayes_dsn is not None,
                   connect_timeout=round(dsn.connect_timeout or 0))


def _maildrop(system: System, f: Filter, base: MaildropSettings, missing: list[str]
              ) -> MaildropSettings:
    x = f.xfilter
    quota = base.quota
    if system.maildroprc is not None and "MAILDIRQUOTA" in system.maildroprc.variables:
        quota = system.maildroprc.variables["MAILDIRQUOTA"].value
    else:
        missing.append("Maildir quotas: the system's are per Maildir (maildirsize), not in "
                       f"its maildroprc; the lab keeps {base.quota}")
    size = x.size_limit if x is not None else None
    return replace(base, spamc_args=tuple(lab_spamc_args(f)),
                   size_limit=NO_SIZE_LIMIT if size is None else size,
                   quota=quota, in_exception=x.in_exception if x else False)


def _delivery(system: System, base: DeliverySettings, missing: list[str],
              measured: Measured | None = None) -> DeliverySettings:
    """What runs maildrop and when Postfix gives up: the findings' judge. A wrapper the
    sandbox ran is judged by what it did (spamdrill-deliver keeps its own model: its
    deadline is longer than the sandbox's runs)."""
    argv = system.service.pipe_argv() if system.service else []
    kind, fates = system.wrapper.model_kind, dict[str, str]()
    if measured is not None and system.wrapper.kind != "spamdrill-deliver":
        kind = "measured"
        fates = {e: measured.fate(e) for e in WRAPPER_EVENTS}
        if not measured.measured:
            missing.append(f"the wrapper {measured.wrapper}: {measured.how}")
    elif system.wrapper.kind == "unknown":
        missing.append(f"{system.wrapper.assumption}; the lab runs spamdrill-deliver's "
                       "table instead of it")
    deadline = system.deliver_deadline
    return replace(base, wrapper=kind, wrapper_fates=fates, wrapper_argv=tuple(argv),
                   deadline=deadline.value if deadline else base.deadline,
                   postfix_time_limit=system.time_limit.value)


def lab_spamc_args(f: Filter) -> list[str]:
    """The xfilter's spamc words (after spamc.conf's) less where spamd is."""
    words = [w for w, _ in (f.xfilter.spamc if f.xfilter and f.xfilter.spamc else [])]
    out: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        name = w.split("=", 1)[0]
        if name in _WHERE_FLAGS:
            skip = name in _TAKES_VALUE and "=" not in w
            continue
        out.append(w)
    return out


def _spamc_gaps(system: System, f: Filter) -> list[str]:
    flags = f.spamc.flags
    gaps = []
    if flags.unix_socket is not None:
        gaps.append(f"spamc -U {flags.unix_socket}: the lab's spamc talks TCP to its spamd")
    if len(flags.hosts) > 1:
        gaps.append(f"spamc -d {','.join(flags.hosts)}: the lab has one spamd")
    names = [h for h in flags.hosts if net.needs_dns(h, system.hosts)]
    if names:
        gaps.append(f"spamd's name ({', '.join(names)}): the lab's spamc is given its "
                    "spamd's address")
    return gaps
