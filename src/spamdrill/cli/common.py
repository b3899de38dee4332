"""What every ``spamdrill`` command shares: the group, the consoles, the common options
(``--json [PATH]``, '-' for stdout; --config, --etc, --topology, --results-dir), writing
outputs, progress lines, and the one place errors become one line on stderr.

Every error a user can fix is one line on stderr and exit status 2; a failed drill check is
exit status 1.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any

import click
import msgspec
from click.decorators import FC

from spamdrill import __version__
from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.render import term


def _lab() -> Any:
    """The lab's orchestration, imported when a command needs it: it pulls in the
    database driver and every component, which ``spamdrill budget`` and ``list`` do not
    need at start-up."""
    from spamdrill.lab import lab

    return lab


# tables stay readable when output goes to a file or CI log (rich assumes 80 columns)
# no emoji codes read in text: log lines and run documents could carry them (term.py)
out = term.console(width=None if sys.stdout.isatty() else 150)
err = term.console(stderr=True)


CONFIG = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=None,
    help="Lab config (TOML): spamd flags, spamc flags used by maildrop, quotas, users. "
         "See docs/CONFIG.md.",
)


# each command's module: imported when that command runs, so ``spamdrill logs`` on a
# mail host does not load the lab's, the budget's and the reports' code first
MODULE_OF = {"budget": "budget", "doctor": "doctor", "lab": "lab", "logs": "logs",
             "replay": "logs", "report": "reports", "history": "reports",
             "compare": "reports", "list": "run", "run": "run", "flood": "run"}


class LazyGroup(click.Group):
    """The command group, loading a command's module on first use (the pattern click's
    documentation gives for large command lines)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(MODULE_OF))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in MODULE_OF:
            importlib.import_module(f"spamdrill.cli.{MODULE_OF[cmd_name]}")
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spamdrill")
def cli() -> None:
    """Drill your spam-filtered mail delivery on the real programs.

    spamdrill starts a private lab of real spamd, spamc, MariaDB (with SpamAssassin's SQL
    schema), a lab DNS server and maildrop, and answers the field question "why does mail
    bounce with 'maildrop: Timeout quota exceeded.'?" with measurements.

    \b
    On the mail host (no root, no lab, nothing sent):
      spamdrill doctor            my mail bounces: what happened, why, the change
      spamdrill logs /var/log/mail.log   what happened to each delivery, and why
      spamdrill budget --etc /    each failure mode's worst case, from the configs

    \b
    On a lab box (root; scripts/setup.sh):
      spamdrill doctor --verify --etc host-etc.tgz mail.log   the fix, proven
      spamdrill list              the drills and the hypothesis each tests
      spamdrill run               run them all (each in its own private lab)
      spamdrill run spamc-timeouts --json out.json
      spamdrill flood --count 500 spamc processes released at once
      spamdrill lab up            keep a lab running to explore by hand
      spamdrill lab check         deliver test mail through it
      spamdrill lab status        what runs, where, and spamd's child states
      spamdrill lab down          stop it all (also after a crash)
    """


def _progress(msg: str) -> None:
    err.print(f"[dim]…[/dim] {term.safe(msg)}")


def etc_option(help_text: str, default: Path | None = Path("/"),
               file_okay: bool = True, metavar: str = "DIR") -> Callable[[FC], FC]:
    """``--etc DIR``: the root of a system's files (/ for this host, or a copy of a
    production host's), the one root ``spamdrill.system.reader`` reads, as every command
    takes it; each command says what it reads there."""
    return click.option("--etc", type=click.Path(file_okay=file_okay, path_type=Path),
                        default=default, show_default=default is not None, metavar=metavar,
                        help=help_text)


ETC = etc_option(
    "Shape the lab like the system whose files are under DIR (/ for this host, or a copy "
    "of a production host's /etc): its spamd flags, its maildroprc's spamc flags, its SQL "
    "settings, quotas and wrapper. What a lab cannot reproduce is listed.",
    default=None, file_okay=False)


def zone_of(tz: str | None) -> tzinfo | None:
    """``--tz ZONE`` as ``logs`` and ``doctor`` read it: None (this machine's zone), UTC,
    +01:00 or an IANA name; anything else one line."""
    from spamdrill.logs.formats import zone

    try:
        return zone(tz)
    except (ValueError, KeyError):
        raise SpamdrillError(f"unknown zone {tz!r}", "e.g. UTC, +01:00, Europe/Berlin") \
            from None


JSON_PATH = click.option(
    "--json", "json_path", default=None, metavar="[PATH]", is_flag=False, flag_value="-",
    help="Write the JSON document (a contract) to PATH; '-', or --json alone, for stdout "
         "(then no terminal tables on stdout).")


def _emit_json(path: str | None, doc: dict[str, Any]) -> bool:
    """``--json [PATH]`` as every command means it: the document to PATH, or to stdout
    for '-' (then the caller prints no terminal view there); True for stdout."""
    if path is None:
        return False
    text = json.dumps(doc, indent=1)
    if path == "-":
        click.echo(text)
        return True
    _write(Path(path), text + "\n")
    return False


def _base_config(config_path: Path | None, etc: Path | None) -> tuple[Any, Any]:
    """The lab config: the file's, shaped like the system under ``etc`` when given."""
    base = lab_config.load(config_path)
    if etc is None:
        return base, None
    from spamdrill.shaped.lab_of import lab_of

    shaped = lab_of(etc, base)
    _progress(f"lab shaped like {etc}: spamd {' '.join(shaped.config.spamd.flags()[:2])} "
              f"..., spamc {shaped.spamc}, wrapper {shaped.config.delivery.wrapper}")
    for gap in shaped.not_reproduced:
        _progress(f"not reproduced: {gap}")
    return shaped.config, shaped


TOPOLOGY = click.option(
    "--topology", type=click.Choice(lab_config.TOPOLOGIES), default=None,
    help="loopback: all on 127.0.0.1 (default). hosts (root): client, spamd, database and "
         "DNS each in a network namespace of its own, on a bridge in 198.18.0.0/15, each "
         "with its own resolv.conf and somaxconn.")


def _with_topology(config: Any, topology: str | None) -> Any:
    if topology is None:
        return config
    return msgspec.structs.replace(
        config, topology=msgspec.structs.replace(config.topology, kind=topology))


def _default_results_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spamdrill"


RESULTS = click.option(
    "--results-dir", type=click.Path(path_type=Path), default=_default_results_dir,
    show_default="$XDG_DATA_HOME/spamdrill", envvar="SPAMDRILL_RESULTS",
    help="Where each run's history (JSONL) and the SQLite database of runs go.")


OUTPUTS = "spamdrill.outputs"


def _report_outputs(f: Any) -> Any:
    """--html, --junit and --csv for a command that makes a run: the options are taken off
    the command's arguments and kept in its context, where ``_record`` finds them, so the
    command's own signature does not change."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, html: Path | None = None, junit: Path | None = None,
                csv_dir: Path | None = None, **kwargs: Any) -> Any:
        click.get_current_context().meta[OUTPUTS] = (html, junit, csv_dir)
        return f(*args, **kwargs)

    for opt in reversed(_OUTPUT_OPTIONS):
        wrapper = opt(wrapper)
    return wrapper


_OUTPUT_OPTIONS = (
    click.option("--html", type=click.Path(path_type=Path), default=None,
                 help="Write the report as one self-contained HTML file (plots inline, "
                      "opens with no network)."),
    click.option("--junit", type=click.Path(path_type=Path), default=None,
                 help="Write JUnit XML: a test suite per scenario, a test case per check, "
                      "findings as properties."),
    click.option("--csv", "csv_dir", type=click.Path(path_type=Path), default=None,
                 help="Write messages.csv, faults.csv and checks.csv into this directory."),
)


def _write(path: Path, data: str | bytes) -> None:
    """An output file; a path that cannot be written is a one-line error."""
    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    except OSError as exc:
        raise SpamdrillError(f"cannot write {path}: {exc.strerror}") from None


def _write_outputs(run: Any, outputs: tuple[Path | None, Path | None, Path | None]) -> None:
    html, junit, csv_dir = outputs
    if html is not None:
        from spamdrill.render import html as html_report

        _write(html, html_report.run_page(run))
        _progress(f"HTML report: {html}")
    if junit is not None:
        from spamdrill.render import junit as junit_report

        _write(junit, junit_report.render(run))
    if csv_dir is not None:
        from spamdrill.render import csvout

        csvout.write(run, csv_dir)


EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE


def main(argv: list[str] | None = None) -> Any:
    import signal

    from spamdrill.lab.procs import interrupt_handler

    # SIGTERM unwinds like Ctrl-C, so every drill heals its fault and takes its lab down;
    # neither interrupts a clean-up already under way
    signal.signal(signal.SIGTERM, interrupt_handler)
    signal.signal(signal.SIGINT, interrupt_handler)
    try:
        return cli.main(args=argv, prog_name="spamdrill", standalone_mode=False)
    except SpamdrillError as exc:
        click.echo(f"spamdrill: error: {term.plain(exc.one_line())}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        # an optional extra this machine did not install: which one, in one line
        from spamdrill import extras

        error = extras.missing(exc)
        if error is None:
            raise
        click.echo(f"spamdrill: error: {error.one_line()}", err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("spamdrill: interrupted; faults healed and labs taken down", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception:
        # a bug of ours: its traceback for the report, and a status of its own, never 1
        # ("findings"), which a script or a test would read as a run that went through
        import traceback

        traceback.print_exc()
        click.echo("spamdrill: internal error (the traceback above is a bug in spamdrill: "
                   "please report it); exit 70", err=True)
        sys.exit(EXIT_INTERNAL)
