"""``spamdrill budget``: each failure mode's worst case predicted from a system's configs,
printed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from spamdrill.cli.common import _emit_json, _progress, _write, cli, etc_option, out
from spamdrill.render import term


def _budget_html(setup: Any, results: list[Any], notes: list[str]) -> None:
    """``spamdrill budget --html FILE``: each mode's waterfall against the layers' limits."""
    path = click.get_current_context().meta.get(BUDGET_HTML)
    if path is not None:
        from spamdrill.render import budget_html

        _write(path, budget_html.page(setup, results, notes))
        _progress(f"HTML budget: {path}")


BUDGET_HTML = "spamdrill.budget_html"


def _budget_html_option(f: Any) -> Any:
    """--html for ``budget``, kept in the context like ``_report_outputs``."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, html: Path | None = None, **kwargs: Any) -> Any:
        click.get_current_context().meta[BUDGET_HTML] = html
        return f(*args, **kwargs)

    return click.option(
        "--html", type=click.Path(path_type=Path), default=None,
        help="Write each failure mode's waterfall (connect tries, retry sleeps, read "
             "waits, scan) against each layer's limit, as one self-contained HTML file.",
    )(wrapper)


@cli.command("budget")
@_budget_html_option
@etc_option("The root of the system to read: DIR/etc/postfix, DIR/etc/maildroprc, "
            "DIR/etc/default/spamd, the spamd unit, DIR/etc/spamassassin, "
            "DIR/etc/resolv.conf (a copy of a production host's files works).")
@click.option("--maildroprc", type=click.Path(path_type=Path), default=None,
              help="Your maildroprc instead of DIR/etc/maildroprc.")
@click.option("--spamc-args", default=None,
              help="spamc flags for a what-if, after the xfilter's.")
@click.option("--spamc-conf", type=click.Path(path_type=Path), default=None,
              help="spamc.conf instead of DIR/etc/spamassassin/spamc.conf.")
@click.option("--spamd-args", default=None, help="spamd's flags, e.g. '--timeout-child=60'.")
@click.option("--spamd-default", type=click.Path(path_type=Path), default=None,
              help="Debian's /etc/default/spamd (its OPTIONS=), instead of the unit's.")
@click.option("--sa-dir", type=click.Path(path_type=Path), default=None,
              help="SpamAssassin site config dir (rbl_timeout, SQL DSNs).")
@click.option("--postfix-dir", type=click.Path(path_type=Path), default=None,
              help="Postfix config dir: main.cf time limits, master.cf's maildrop service.")
@click.option("--resolv-conf", type=click.Path(path_type=Path), default=None,
              help="spamd's resolv.conf (e.g. /etc/resolv.conf on the spamd host): what one "
                   "lookup of the database's name costs when no server answers.")
@click.option("--deliver-config", type=click.Path(path_type=Path), default=None,
              help="spamdrill-deliver's config (its deadline).")
@click.option("--maildrop-timeout", type=click.FloatRange(min=1), default=None,
              help="maildrop's compiled-in global timeout (Debian: 300 s).")
@click.option("--wrapper", type=click.Choice(["none", "spamdrill-deliver", "bounce-on-75"]),
              default=None, help="What runs maildrop, instead of master.cf's.")
@click.option("--link-rate", type=click.FloatRange(min=1), default=None,
              metavar="BYTES_PER_S",
              help="The link between spamc and spamd, in bytes per second each way (1200 "
                   "is about 10 kbit/s): adds the net-slow mode.")
@click.option("--concurrency", type=click.IntRange(min=1, max=10000), default=None,
              metavar="N",
              help="How many spamc start at once from one host (default: the maildrop "
                   "service's maxproc in master.cf, else 100): spamd-rejected's burst.")
@click.option("--json", "json_path", default=None, metavar="[PATH]", is_flag=False,
              flag_value="-",
              help='{"limits": [...], "modes": [...], "xfilters": [...], "wrapper": {...}, '
                   '"risks": [...], "notes": [...]} (a contract; see docs/BUDGET.md) to PATH; '
                   "'-', or --json alone, for stdout.")
def budget(etc: Path, maildroprc: Path | None, spamc_args: str | None,
           spamc_conf: Path | None, spamd_args: str | None, spamd_default: Path | None,
           sa_dir: Path | None, postfix_dir: Path | None, resolv_conf: Path | None,
           deliver_config: Path | None, maildrop_timeout: float | None, wrapper: str | None,
           link_rate: float | None, concurrency: int | None, json_path: str | None) -> None:
    """Predict each failure mode's worst case from a system's configs, before mail bounces.

    Reads the system under --etc (default /): Postfix, maildrop (every xfilter that runs
    spamc, each analysed), spamc and spamc.conf, spamd's unit and /etc/default/spamd,
    SpamAssassin's site config and DSNs, the resolver (resolv.conf, hosts, nsswitch.conf).
    The wrapper master.cf names is run, not read: in a sandbox (no network, private
    mounts) with maildrop replaced by a stand-in that ends every way maildrop can; its
    measured table decides what Postfix does (delivered, deferred, bounced, or lost). For
    each mode (spamd refusing, dropping SYNs, rejecting with ICMP under a burst, silent,
    dripping, overloaded; the database unreachable or locked; DNS dead, or SERVFAIL for
    the database's name; with --link-rate, a slow link): each layer's worst case, which
    limit fires first, and what Postfix then does. A mode whose component the system does
    not use is n/a, with the reason. A violation names the smallest change that fixes
    it, a stated margin below the limit. Exit 1 if any mode has a violation, the wrapper
    loses mail or bounces a temporary failure, or the maildroprc lets a sender's text
    into a shell command; 2 if --etc holds no Postfix, maildrop or SpamAssassin config.

    \b
    spamdrill budget --etc examples/field-report
    spamdrill budget --etc / --spamc-args '-n 30'
    """
    from spamdrill.budget import inputs, model
    from spamdrill.system import reader

    system = reader.read(etc, reader.Overrides(
        maildroprc, spamc_args, spamc_conf, spamd_args, spamd_default, sa_dir, postfix_dir,
        resolv_conf, deliver_config))
    table = inputs.measure_wrapper(system) if wrapper is None else None
    setups = inputs.setups(system, inputs.WhatIf(maildrop_timeout, wrapper, link_rate,
                                                 concurrency), table)
    chosen = inputs.limiting(setups)
    setup = setups[chosen]
    results = model.evaluate(setup)
    notes = _budget_notes(system)
    problems = table.problems() if table is not None else []
    risks = list(system.maildroprc.risks) if system.maildroprc is not None else []
    _budget_html(setup, results, notes)
    rspamd = _rspamd(system)
    if not _emit_json(json_path, {"limits": model.limits(setup),
                                  "modes": [r.public() for r in results],
                                  "xfilters": _xfilters_json(system, setups, chosen),
                                  "wrapper": table.public() if table is not None else None,
                                  "risks": risks, "notes": notes,
                                  "rspamd": rspamd[0] if rspamd else None}):
        _print_budget(system, setups, chosen, results, notes)
        if rspamd:
            out.print(rspamd[1])
        if table is not None and not system.maildrop_unused:
            _print_wrapper_table(table)
        for risk in risks:
            out.print(f"[red]risk:[/red] {term.safe(risk)}", highlight=False)
    sys.exit(1 if problems or risks or any(r.violations for r in results)
             or (rspamd and rspamd[2]) else 0)


def _rspamd(system: Any) -> tuple[dict[str, Any], Table, bool] | None:
    """rspamd's inputs, each with its source, and each mode's worst case by each path
    (``budget.rspamd``): the JSON, the table, and whether any crosses the budget."""
    from spamdrill.budget import inputs
    from spamdrill.budget import rspamd as model

    setup = inputs.rspamd_setup(system)
    if setup is None:
        return None
    conf, milter = system.rspamd, system.milter
    sources = {"task_timeout": conf.task_timeout.source,
               "soft_reject_on_timeout": conf.soft_reject_on_timeout.source,
               "redis_timeout": conf.redis_timeout.source,
               "workers": conf.workers.source if conf.workers else "default of rspamd 3.4",
               "proxy_timeout": conf.proxy_timeout.source,
               "dns_timeout": conf.dns_timeout.source,
               "dns_retransmits": conf.dns_retransmits.source}
    if milter is not None:
        sources |= {"milter_default_action": milter.default_action.source,
                    "milter_content_timeout": milter.content_timeout.source,
                    "milter_command_timeout": milter.command_timeout.source,
                    "smtpd_milters": milter.milters.source}
    predictions = model.predict(setup)
    t = Table(title=f"rspamd: worst case per failure mode (task_timeout "
                    f"{setup.task_timeout:g} s, Redis {setup.redis_timeout:g} s"
                    + (f", rspamc -t {setup.rspamc_t:g} s" if setup.rspamc_t else "")
                    + (f", milter_default_action {setup.milter_action}"
                       if setup.milter_action else "") + ")")
    t.caption = term.safe("; ".join(f"{k} from {v}" for k, v in sources.items()))
    for col in ("mode", "via", "worst", "fate", "finding", "why"):
        t.add_column(col)
    for p in predictions:
        t.add_row(p.mode.value, p.via, f"{p.worst_s:g} s", p.fate.value,
                  p.finding.value + (" (edge)" if p.edge else ""), term.safe(p.why))
    doc = {"inputs": {k: v for k, v in vars(setup).items()}, "sources": sources,
           "modes": [p.public() for p in predictions]}
    return doc, t, any(p.finding.crosses_budget for p in predictions)


def _budget_notes(system: Any) -> list[str]:
    """The system's notes and every xfilter's (not only the limiting one's), each once, in
    order."""
    notes = list(system.notes)
    for f in system.filters:
        notes += list(f.spamc.notes) + list(f.spamc.modes)
    return list(dict.fromkeys(notes))


def _print_absent(results: list[Any]) -> None:
    """The modes whose component the system does not use: a line each, not a row."""
    by_reason: dict[str, list[str]] = {}
    for r in results:
        if r.outcome == "n/a":
            by_reason.setdefault(r.why, []).append(r.mode)
    for why, names in by_reason.items():
        which = "every mode" if len(names) == len(results) else ", ".join(names)
        out.print(f"n/a: {which}: {term.safe(why)}", highlight=False)


def _print_wrapper_table(table: Any) -> None:
    """The wrapper's measured table: each way maildrop ends, what the wrapper made of
    it, what pipe(8) then does, and the mail's fate."""
    colours = {"delivered": "green", "deferred": "yellow"}
    t = Table(title=term.safe(f"wrapper {table.wrapper}: {table.how}"))
    for col in ("maildrop", "wrapper", "Postfix pipe(8)", "fate"):
        t.add_column(col)
    for label, r in table.grouped():
        colour = colours.get(r.fate, "red")
        fate = r.fate.upper() if r.fate in ("lost", "duplicated") else r.fate
        t.add_row(term.safe(label), r.wrapper, f"{r.postfix} ({r.dsn})",
                  f"[{colour}]{fate}[/{colour}]")
    if table.rows:
        out.print(t)
    for problem in table.problems():
        out.print(f"wrapper: {term.safe(problem)}", highlight=False)


def _xfilters_json(system: Any, setups: list[Any], chosen: int) -> list[dict[str, Any]]:
    from spamdrill.budget import model

    out = []
    for i, (f, setup) in enumerate(zip(system.filters, setups, strict=True)):
        x = f.xfilter
        out.append({"where": x.where if x else "--spamc-args",
                    "spamc": setup.spamc.render(),
                    "size_limit": x.size_limit if x else None,
                    "in_exception": x.in_exception if x else False,
                    "limits": i == chosen,
                    "outcomes": sorted({r.outcome for r in model.evaluate(setup)})})
    return out


def _model_s(x: float) -> str:
    """A modelled time as a person reads it: the limits it comes from are whole seconds,
    so a tenth is as fine as it is known (33.6, not the simulation's 33.5544)."""
    return f"{x:.1f}".removesuffix(".0")


def _print_budget(system: Any, setups: list[Any], chosen: int, results: list[Any],
                  notes: list[str]) -> None:
    from spamdrill.budget import model

    setup = setups[chosen]
    lim = Table(title="limits")
    for col in ("layer", "seconds", "from"):
        lim.add_column(col)
    for row in model.limits(setup):
        lim.add_row(term.safe(row["layer"]),
                    "-" if row["seconds"] is None else f"{row['seconds']:g}",
                    term.safe(row["source"]))
    out.print(lim)
    if len(setups) > 1:
        for row in _xfilters_json(system, setups, chosen):
            mark = "limits" if row["limits"] else "      "
            out.print(f"{mark} xfilter {term.safe(row['where'])}: spamc "
                      f"{term.safe(row['spamc'])} -> {term.safe(', '.join(row['outcomes']))}")
    table = Table(title=f"worst case per failure mode (spamc "
                        f"{term.safe(setup.spamc.render())}, wrapper: "
                        f"{term.safe(setup.wrapper)})")
    for col in ("mode", "spamc s", "spamd s", "worst s", "fires first", "outcome", "fix"):
        table.add_column(col)
    for r in [r for r in results if r.outcome != "n/a"]:
        colour = {"bounced": "red", "lost": "red", "duplicated": "red", "n/a": "dim",
                  "deferred": "yellow"}.get(r.outcome, "green")
        fix = [f"{v.inner} > {v.outer}: {v.fix}" for v in r.violations]
        fix += [f"({a})" for a in r.assumptions]
        table.add_row(
            term.safe(r.mode), "unbounded" if r.spamc_s is None else _model_s(r.spamc_s),
            "-" if r.spamd_s is None else _model_s(r.spamd_s),
            "-" if r.worst_s is None else _model_s(r.worst_s), term.safe(r.fires_first),
            f"[{colour}]{term.safe(r.outcome)}[/{colour}]", term.safe("\n".join(fix)))
    if table.rows:
        out.print(table)
    _print_absent(results)
    for note in notes:
        out.print(f"note: {term.safe(note)}", highlight=False)
