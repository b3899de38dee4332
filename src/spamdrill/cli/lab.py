"""``spamdrill lab``: bring the private lab up, inspect it, take it down."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from spamdrill.cli.common import (
    CONFIG,
    ETC,
    JSON_PATH,
    TOPOLOGY,
    _base_config,
    _emit_json,
    _lab,
    _progress,
    _with_topology,
    cli,
    out,
)
from spamdrill.errors import SpamdrillError
from spamdrill.lab.layout import Layout, default_run_dir
from spamdrill.lab.state import LabState
from spamdrill.proto.dns_policy import MODES
from spamdrill.render import term

RUN_DIR = click.option(
    "--run-dir", type=click.Path(path_type=Path), default=default_run_dir,
    envvar="SPAMDRILL_RUN_DIR", show_default="$TMPDIR/spamdrill-UID/lab",
    help="Directory holding everything of this lab (logs, pids, data). Two labs side by "
         "side need two run directories.",
)

@cli.group()
def lab() -> None:
    """Bring the private lab up, inspect it, take it down."""


@lab.command("up")
@RUN_DIR
@CONFIG
@ETC
@TOPOLOGY
def lab_up(run_dir: Path, config_path: Path | None, etc: Path | None,
           topology: str | None) -> None:
    """Start MariaDB, the lab DNS, spamd and maildrop's config; wait until each answers.

    Readiness is a real probe: a DNS query, SELECT 1, spamd's PING. The lab keeps running
    after this command returns; stop it with `spamdrill lab down`. With --topology hosts,
    run a client by hand on the client host with
    `ip netns exec spamdrill-<tag>-client spamc -d <spamd address>` (see `lab status`).
    """
    config, _ = _base_config(config_path, etc)
    state = _lab().up(run_dir, _with_topology(config, topology), _progress)
    out.print(f"lab up in [bold]{state.ready_s['all']:.1f} s[/bold]: "
              f"{term.safe(state.run_dir)}")
    _print_status(run_dir)


@lab.command("status")
@RUN_DIR
@JSON_PATH
def lab_status(run_dir: Path, json_path: str | None) -> None:
    """Each component: up or down, pid, address, uptime; spamd's prefork child states.

    Exit status 0 when every component is up, 1 otherwise.
    """
    state, comps = _lab().status(run_dir)
    doc = {"run_dir": str(run_dir.resolve()), "components": [c.public() for c in comps]}
    if _emit_json(json_path, doc):
        pass  # stdout holds the document alone
    elif state is None:
        out.print(f"no lab in {term.safe(run_dir)} (start one with: spamdrill lab up)")
    else:
        _print_status(run_dir)
    sys.exit(0 if comps and all(c.up for c in comps) else 1)


def _print_status(run_dir: Path) -> None:
    _, comps = _lab().status(run_dir)
    table = Table(title=f"lab {term.safe(run_dir)}")
    for col in ("component", "state", "pid", "address", "up for", "detail"):
        table.add_column(col)
    for c in comps:
        d = c.public()
        table.add_row(
            term.safe(c.name), "[green]up[/green]" if c.up else "[red]down[/red]",
            str(c.pid or ""), term.safe(f"{c.host}:{c.port}") if c.port else "",
            f"{d['uptime_s']} s" if d["uptime_s"] is not None else "", term.safe(c.detail))
    out.print(table)


@lab.command("down")
@RUN_DIR
@click.option("--all", "everything", is_flag=True,
              help="Also every drill lab a killed 'spamdrill run' left behind (a lab a "
                   "running spamdrill still owns is left to it).")
def lab_down(run_dir: Path, everything: bool) -> None:
    """Stop every process of the lab, also those a crashed or killed spamdrill left, and
    heal every fault it injected (a frozen database, DNS rules, server settings)."""
    stopped = _lab().down(run_dir)
    if everything:
        stopped += _lab().down_all()
    out.print(f"stopped: {term.safe(', '.join(stopped))}" if stopped
              else "nothing was running")


@lab.command("dns")
@RUN_DIR
@click.argument("name")
@click.argument("mode", type=click.Choice(MODES))
@click.option("--delay", type=float, default=0.0, help="Seconds, for mode 'delay'.")
def lab_dns(run_dir: Path, name: str, mode: str, delay: float) -> None:
    """Switch how the lab DNS answers NAME (a host, a whole zone, or '*').

    \b
    answer    normal answers (clears the rule)
    nxdomain  the name does not exist
    servfail  the server fails
    drop      never answer (clients time out)
    delay     answer after --delay seconds
    """
    layout = Layout(run_dir)
    if LabState.load(layout) is None:
        raise SpamdrillError(f"no lab in {run_dir}", "start one with: spamdrill lab up")
    from spamdrill.lab import dns

    dns.set_rule(layout, name, mode, delay)
    out.print(f"{term.safe(name)}: {mode}" + (f" {delay:g} s" if mode == "delay" else ""))


@lab.command("check")
@RUN_DIR
def lab_check(run_dir: Path) -> None:
    """Deliver test mail through the running lab: GTUBE must land in .Spam, ham in the inbox
    (maildrop -> spamc -> spamd -> MariaDB). Exit 1 if a check fails."""
    from spamdrill.smoke import smoke_checks

    state = LabState.load(Layout(run_dir))
    if state is None:
        raise SpamdrillError(f"no lab in {run_dir}", "start one with: spamdrill lab up")
    checks = smoke_checks(state)
    table = Table(title="lab check: mail through the real chain")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for c in checks:
        table.add_row(term.safe(c.name), "[green]pass[/green]" if c.ok else "[red]FAIL[/red]",
                      term.safe(c.detail))
    out.print(table)
    sys.exit(0 if all(c.ok for c in checks) else 1)
