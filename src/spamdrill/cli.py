"""The ``spamdrill`` command line. Thin: parses options, calls the lab/drill code, renders.

Every error a user can fix is one line on stderr and exit status 2; a failed drill check is
exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from spamdrill import __version__
from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.lab import dns
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.layout import Layout, default_run_dir
from spamdrill.proto.dns_policy import MODES

out = Console()
err = Console(stderr=True)

RUN_DIR = click.option(
    "--run-dir", type=click.Path(path_type=Path), default=default_run_dir,
    envvar="SPAMDRILL_RUN_DIR", show_default="$TMPDIR/spamdrill-UID/lab",
    help="Directory holding everything of this lab (logs, pids, data). Two labs side by "
         "side need two run directories.",
)
CONFIG = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=None,
    help="Lab config (TOML): spamd flags, spamc flags used by maildrop, quotas, users. "
         "See docs/CONFIG.md.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spamdrill")
def cli() -> None:
    """Drill your spam-filtered mail delivery on the real programs.

    spamdrill starts a private lab of real spamd, spamc, MariaDB (with SpamAssassin's SQL
    schema), a lab DNS server and maildrop, and answers the field question "why does mail
    bounce with 'maildrop: Timeout quota exceeded.'?" with measurements.

    \b
    Start here:
      spamdrill run               bring a lab up, check mail flows, take it down
      spamdrill lab up            keep a lab running to explore by hand
      spamdrill lab status        what runs, where, and spamd's child states
      spamdrill lab down          stop it all (also after a crash)
    """


@cli.group()
def lab() -> None:
    """Bring the private lab up, inspect it, take it down."""


def _progress(msg: str) -> None:
    err.print(f"[dim]…[/dim] {msg}")


@lab.command("up")
@RUN_DIR
@CONFIG
def lab_up(run_dir: Path, config_path: Path | None) -> None:
    """Start MariaDB, the lab DNS, spamd and maildrop's config; wait until each answers.

    Readiness is a real probe: a DNS query, SELECT 1, spamd's PING. The lab keeps running
    after this command returns; stop it with `spamdrill lab down`.
    """
    config = lab_config.load(config_path)
    state = lab_ops.up(run_dir, config, _progress)
    out.print(f"lab up in [bold]{state.ready_s['all']:.1f} s[/bold]: {state.run_dir}")
    _print_status(run_dir)


@lab.command("status")
@RUN_DIR
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a contract).")
def lab_status(run_dir: Path, as_json: bool) -> None:
    """Each component: up or down, pid, address, uptime; spamd's prefork child states.

    Exit status 0 when every component is up, 1 otherwise.
    """
    state, comps = lab_ops.status(run_dir)
    if as_json:
        doc = {"run_dir": str(run_dir.resolve()), "components": [c.public() for c in comps]}
        click.echo(json.dumps(doc, indent=1))
    elif state is None:
        out.print(f"no lab in {run_dir} (start one with: spamdrill lab up)")
    else:
        _print_status(run_dir)
    sys.exit(0 if comps and all(c.up for c in comps) else 1)


def _print_status(run_dir: Path) -> None:
    _, comps = lab_ops.status(run_dir)
    table = Table(title=f"lab {run_dir}")
    for col in ("component", "state", "pid", "address", "up for", "detail"):
        table.add_column(col)
    for c in comps:
        d = c.public()
        table.add_row(
            c.name, "[green]up[/green]" if c.up else "[red]down[/red]",
            str(c.pid or ""), f"{c.host}:{c.port}" if c.port else "",
            f"{d['uptime_s']} s" if d["uptime_s"] is not None else "", c.detail)
    out.print(table)


@lab.command("down")
@RUN_DIR
def lab_down(run_dir: Path) -> None:
    """Stop every process of the lab, also those a crashed or killed spamdrill left."""
    stopped = lab_ops.down(run_dir)
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


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
    layout = Layout(run_dir.resolve())
    if lab_ops.LabState.load(layout) is None:
        raise SpamdrillError(f"no lab in {run_dir}", "start one with: spamdrill lab up")
    dns.set_rule(layout, name, mode, delay)
    out.print(f"{name}: {mode}" + (f" {delay:g} s" if mode == "delay" else ""))


@cli.command("run")
@RUN_DIR
@CONFIG
@click.option("--keep", is_flag=True, help="Leave the lab running afterwards.")
def run(run_dir: Path, config_path: Path | None, keep: bool) -> None:
    """Bring a lab up, check that mail flows through maildrop -> spamc -> spamd, take it down.

    The fault drills build on this; for now it proves the lab works on this machine:
    GTUBE must land in .Spam, a ham message in the inbox. Exit 1 if a check fails.
    """
    from spamdrill.smoke import smoke_checks

    config = lab_config.load(config_path)
    state = lab_ops.up(run_dir, config, _progress)
    try:
        _progress(f"lab up in {state.ready_s['all']:.1f} s; delivering test mail")
        checks = smoke_checks(state)
    finally:
        if not keep:
            lab_ops.down(run_dir)
    table = Table(title="spamdrill run: lab smoke drill")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for c in checks:
        table.add_row(c.name, "[green]pass[/green]" if c.ok else "[red]FAIL[/red]", c.detail)
    out.print(table)
    sys.exit(0 if all(c.ok for c in checks) else 1)


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="spamdrill", standalone_mode=False)
    except SpamdrillError as exc:
        click.echo(f"spamdrill: error: {exc.one_line()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("spamdrill: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
