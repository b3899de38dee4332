"""A budget ``Setup`` per spamc xfilter, from a system's configuration as
``spamdrill.system.reader`` reads it (one root, ``--etc``; single files replaced by the
older flags). Each value keeps its source for the limits table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from spamdrill.budget import wrappertable as wt
from spamdrill.budget.model import MODES, Setup, evaluate
from spamdrill.budget.rspamd import RspamdSetup
from spamdrill.system import net
from spamdrill.system.reader import Filter, Overrides, System, read
from spamdrill.vocab import Fate, Finding

SYN_LINEAR = Path("/proc/sys/net/ipv4/tcp_syn_linear_timeouts")
MAILDROP_TIMEOUT_SOURCE = "default of Debian's maildrop 2.9.3 (compiled in)"


def kernel_syn_linear_timeouts(path: Path = SYN_LINEAR) -> int:
    """This machine's ``net.ipv4.tcp_syn_linear_timeouts``; 0 where the kernel has none
    (before 6.x: every SYN resend waits twice as long as the one before)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


@dataclass(frozen=True)
class WhatIf:
    """Values given on the command line instead of read from the system."""

    maildrop_timeout: float | None = None
    wrapper: str | None = None
    link_rate: float | None = None
    concurrency: int | None = None


def setup_for(system: System, f: Filter, what_if: WhatIf = WhatIf(),
              wrapper: wt.Table | None = None) -> Setup:
    """The budget model's inputs for one xfilter of this system."""
    spamd = system.spamd
    child, tcp, children = (spamd.number("timeout-child"), spamd.number("timeout-tcp"),
                            spamd.number("max-children"))
    rbl = system.sa.rbl_timeout()
    sources = {"spamd": child.source, "sa": rbl.source,
               "postfix": system.time_limit.source, "wrapper": system.wrapper_source,
               "maildrop": MAILDROP_TIMEOUT_SOURCE}
    setup = Setup(
        spamc=f.spamc.flags, spamd_timeout_child=float(child.value),
        spamd_timeout_tcp=float(tcp.value), spamd_max_children=children.value,
        rbl_timeout=rbl.value, postfix_time_limit=system.time_limit.value,
        concurrency=system.concurrency.value,
        syn_linear_timeouts=kernel_syn_linear_timeouts(),
        xfilter_in_exception=f.xfilter.in_exception if f.xfilter else False,
        spamd_names_by_dns=_spamd_names_by_dns(system, f),
        wrapper_deadline=system.deliver_deadline.value if system.deliver_deadline else None,
        spamc_deadline=f.xfilter.deadline if f.xfilter else None)
    if f.xfilter and f.xfilter.deadline is not None:
        sources["spamc_deadline"] = f"{f.xfilter.where} (spamdrill-spamc --deadline)"
    setup = _wrapper(system, setup, wrapper)
    setup = _database(system, setup, sources)
    setup = replace(setup, absent=absent(system, f))
    r = system.resolv
    if r:
        setup = replace(
            setup,
            resolv_timeout=r["resolv_timeout"].value if "resolv_timeout" in r
            else setup.resolv_timeout,
            resolv_attempts=int(r["resolv_attempts"].value) if "resolv_attempts" in r
            else setup.resolv_attempts,
            resolv_servers=int(r["resolv_servers"].value) if "resolv_servers" in r
            else setup.resolv_servers,
            resolv_search=int(r["resolv_search"].value) if "resolv_search" in r else 0,
            resolv_ndots=int(r["resolv_ndots"].value) if "resolv_ndots" in r else 1,
            resolv_rotate="resolv_rotate" in r)
        sources["resolv"] = ", ".join(sorted({v.source for v in r.values()}))
    if system.deliver_deadline is not None:
        sources["wrapper"] = system.deliver_deadline.source
    return _what_if(setup, what_if, sources)


def measure_wrapper(system: System) -> wt.Table | None:
    """The pipe service's command, run in the sandbox (``spamdrill.budget.sandbox``);
    None when no pipe service runs maildrop. spamdrill-deliver runs as this host's copy
    under the system's own policy file (its deadline stays modelled: the sandbox's runs
    are seconds long)."""
    from spamdrill.budget import sandbox

    if system.service is None:
        return None
    argv = system.service.pipe_argv()
    if not argv:
        return wt.unmeasured(system.service.where, "the pipe service has no argv=")
    if system.wrapper.kind == "spamdrill-deliver":
        config = system.deliver_config
        try:
            text = config.read_bytes() if config is not None else None
        except OSError as exc:
            return wt.unmeasured(argv[0], f"cannot read {config}: {exc.strerror}")
        return sandbox.measure_deliver(argv, text, argv[0])
    if argv[0].rsplit("/", 1)[-1] == wt.MDA_NAME:
        return sandbox.direct(argv[0])
    if not argv[0].startswith("/"):
        return wt.unmeasured(argv[0], "pipe(8)'s argv[0] is not an absolute path")
    path = system.root / argv[0].lstrip("/")
    if not path.is_file():
        return wt.unmeasured(argv[0], f"{path} is not there to run")
    return sandbox.measure(path, argv, argv[0])


def _wrapper(system: System, setup: Setup, table: wt.Table | None) -> Setup:
    """The wrapper's fates from its measured table; the worst when there is none for a
    command that is neither maildrop nor spamdrill-deliver."""
    deliver = system.wrapper.kind == "spamdrill-deliver"
    argv = system.service.pipe_argv() if system.service is not None else []
    if table is None:  # not measured (a caller that did not run it): only maildrop
        #                itself and spamdrill-deliver are known without a run
        direct = bool(argv) and argv[0].rsplit("/", 1)[-1] == wt.MDA_NAME
        if system.service is None or direct or deliver:
            return replace(setup, wrapper="spamdrill-deliver" if deliver else "none")
        table = wt.unmeasured(argv[0] if argv else "the wrapper", "not run")
    if table.how.startswith("no wrapper"):
        return replace(setup, wrapper="none")
    fates = {e: table.fate(e) for e in wt.EVENTS}
    exits = {e: table.exit_of(e) for e in wt.EVENTS} if table.measured else {}
    label = "measured" if table.measured else "unmeasured"
    return replace(setup, wrapper="spamdrill-deliver" if deliver else label,
                   wrapper_fates=fates, wrapper_exits=exits,
                   wrapper_assumption="wrapper measured: its table below" if table.measured
                   else f"wrapper {table.wrapper}: {table.how}")


SPAMC_MODES = tuple(m for m in MODES)  # every mode is met through spamc
SQL_MODES = ("db-unreachable", "db-locked", "dns-db-servfail")


def absent(system: System, f: Filter) -> dict[str, str]:
    """The modes whose component this system does not use, each with the reason."""
    if system.maildrop_unused:
        return {m: system.maildrop_unused for m in MODES}
    if system.no_spamc:
        return {m: system.no_spamc for m in SPAMC_MODES}
    out: dict[str, str] = {}
    dsn = system.db_dsn
    if dsn is None:
        why = ("no SQL: SpamAssassin's config names no bayes_sql_dsn, nor a "
               "user_scores_dsn that spamd (-q/-Q) uses")
        return {m: why for m in SQL_MODES}
    if system.bayes_dsn is None:
        out["db-locked"] = (f"no SQL Bayes: a global read lock holds no query spamd makes "
                            f"(user prefs from {dsn.source} are only read)")
    if dsn.kind == "socket":
        out["dns-db-servfail"] = (f"the DSN reaches the database by a local socket "
                                  f"({dsn.source}): no lookup to fail")
    elif dsn.kind != "name" or net.is_address(dsn.host):
        out["dns-db-servfail"] = (f"the DSN names the database by address ({dsn.host}, "
                                  f"{dsn.source}): no lookup to fail")
    elif not net.needs_dns(dsn.host, system.hosts, system.hosts_first):
        out["dns-db-servfail"] = (f"{dsn.host} is answered by {system.root / 'etc/hosts'} "
                                  f"before DNS ({system.hosts_source})")
    return out


def _database(system: System, setup: Setup, sources: dict[str, str]) -> Setup:
    dsn = system.db_dsn
    if dsn is None:
        return setup
    by_name = dsn.kind == "name" and net.needs_dns(dsn.host, system.hosts,
                                                   system.hosts_first)
    sources["db"] = dsn.source
    return replace(setup, db_host_is_name=by_name, db_connect_timeout=dsn.connect_timeout)


def _spamd_names_by_dns(system: System, f: Filter) -> int:
    flags = f.spamc.flags
    if flags.unix_socket is not None:
        return 0
    hosts = flags.hosts[:flags.tried_hosts]
    return sum(1 for h in hosts if net.needs_dns(h, system.hosts, system.hosts_first))


def _what_if(setup: Setup, w: WhatIf, sources: dict[str, str]) -> Setup:
    if w.wrapper is not None:
        setup = replace(setup, wrapper=w.wrapper, wrapper_assumption="",
                        wrapper_fates={}, wrapper_exits={})
        sources["wrapper"] = "--wrapper"
    if w.maildrop_timeout is not None:
        setup = replace(setup, maildrop_timeout=w.maildrop_timeout)
        sources["maildrop"] = "--maildrop-timeout"
    if w.link_rate is not None:
        setup = replace(setup, link_rate=w.link_rate)
    if w.concurrency is not None:
        setup = replace(setup, concurrency=w.concurrency)
    return replace(setup, sources=sources)


def setups(system: System, what_if: WhatIf = WhatIf(),
           wrapper: wt.Table | None = None) -> list[Setup]:
    return [setup_for(system, f, what_if, wrapper) for f in system.filters]


def limiting(all_setups: list[Setup]) -> int:
    """The index of the xfilter that limits: the worst finding, then the longest worst
    case."""
    order = list(Finding)

    def key(setup: Setup) -> tuple[int, float]:
        results = [r for r in evaluate(setup) if r.outcome != "n/a"]
        if not results:
            return 0, 0.0
        worst = Finding.worst([Fate(r.outcome).finding for r in results])
        longest = max((r.worst_s if r.worst_s is not None else float("inf"))
                      for r in results)
        return order.index(worst), longest

    keys = [key(s) for s in all_setups]
    return keys.index(max(keys))


def gather(*, etc: Path = Path("/"), maildroprc: Path | None = None,
           spamc_args: str | None = None, spamc_conf: Path | None = None,
           spamd_args: str | None = None, spamd_default: Path | None = None,
           sa_dir: Path | None = None, postfix_dir: Path | None = None,
           deliver_config: Path | None = None, maildrop_timeout: float | None = None,
           wrapper: str | None = None, resolv: Path | None = None,
           link_rate: float | None = None, concurrency: int | None = None) -> Setup:
    """The limiting xfilter's Setup (the older single-Setup interface)."""
    system = read(etc, Overrides(maildroprc, spamc_args, spamc_conf, spamd_args,
                                 spamd_default, sa_dir, postfix_dir, resolv, deliver_config))
    all_setups = setups(system, WhatIf(maildrop_timeout, wrapper, link_rate, concurrency))
    return all_setups[limiting(all_setups)]


def rspamc_timeout(command: str) -> float | None:
    """An xfilter's rspamc ``-t`` (``-t N``, ``-tN``, ``--timeout=N``, ``--timeout N``):
    rspamc's default 10 s when it gives none; None when the command is not rspamc."""
    import shlex

    from spamdrill.budget.rspamd import RSPAMC_DEFAULT_T

    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words or Path(words[0]).name != "rspamc":
        return None
    t = RSPAMC_DEFAULT_T
    for i, w in enumerate(words[1:], 1):
        value = None
        if w in ("-t", "--timeout") and i + 1 < len(words):
            value = words[i + 1]
        elif w.startswith("--timeout="):
            value = w.split("=", 1)[1]
        elif w.startswith("-t") and len(w) > 2 and not w.startswith("--"):
            value = w[2:]
        if value is not None:
            try:
                t = float(value)
            except ValueError:
                continue
    return t


def rspamd_setup(system: System) -> RspamdSetup | None:
    """rspamd's budget inputs from this system: its rspamd configuration, the rspamc
    xfilters (the shortest -t: the first to give up) and Postfix's milter; None without
    rspamd's configuration."""
    conf = system.rspamd
    if conf is None:
        return None
    rspamc = [(t, x) for x in (system.maildroprc.xfilters if system.maildroprc else [])
              if (t := rspamc_timeout(x.command)) is not None]
    first = min(rspamc, key=lambda p: p[0]) if rspamc else None
    m = system.milter
    milter = m is not None and bool(m.milters.value)
    return RspamdSetup(
        task_timeout=conf.task_timeout.value, soft_reject=conf.soft_reject_on_timeout.value,
        redis_timeout=conf.redis_timeout.value,
        workers=conf.workers.value if conf.workers else None,
        rspamc_t=first[0] if first else None,
        in_exception=first[1].in_exception if first else True,
        milter_action=m.default_action.value if m is not None and milter else None,
        milter_connect_timeout=m.connect_timeout.value if m else 30.0,
        milter_command_timeout=m.command_timeout.value if m else 30.0,
        milter_content_timeout=m.content_timeout.value if m else 300.0,
        proxy_timeout=conf.proxy_timeout.value, dns_timeout=conf.dns_timeout.value,
        dns_retransmits=conf.dns_retransmits.value)
