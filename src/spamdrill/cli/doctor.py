"""``spamdrill doctor``: from an incident's logs to a change in the user's files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spamdrill.cli.common import JSON_PATH, _emit_json, _write, cli, etc_option, out, zone_of
from spamdrill.errors import SpamdrillError


@cli.command("doctor")
@click.argument("files", nargs=-1)
@etc_option("The root of the system whose configs are read (a copy of a host's files "
            "works); its logs are looked for under DIR/var/log.")
@click.option("--tz", default=None, metavar="ZONE",
              help="Zone of log stamps that carry none (default: this machine's).")
@click.option("--year", type=click.IntRange(1970, 9999), default=None,
              help="Year of classic syslog lines (default: from each file's date).")
@click.option("--since", default="yesterday", show_default=True, metavar="WHEN",
              help="With journald (no log file found): journalctl's --since.")
@click.option("--full", is_flag=True, help="Every chain and wrapper row, not one screen.")
@click.option("--html", type=click.Path(path_type=Path), default=None,
              help="Also write the same as one offline HTML page.")
@JSON_PATH
def doctor_command(files: tuple[str, ...], etc: Path, tz: str | None, year: int | None,
                   since: str, full: bool, html: Path | None,
                   json_path: str | None) -> None:
    """My mail bounces: what happened, why, and the change that fixes it.

    Reads this host's mail logs (FILES; else DIR/var/log/mail.log and its rotations,
    .gz too; else journald's postfix@-.service and spamd.service) and its configs under
    --etc, and answers on one screen, worst first:

    \b
      What happened  bounces, deferrals, unscanned mail; each episode and the
                     message that started it (from the logs)
      Why            each failure mode joined to `spamdrill budget`'s chain on THIS
                     configuration: the limit that fired first, its file:line, and
                     whether the prediction agrees with the logs (both numbers)
      What to change the smallest change, as a unified diff of your own files
                     (maildroprc, master.cf), each hunk with its reason and what the
                     budget predicts after it
      How sure       predicted (the budget on the changed files); drill it on a lab
                     box with `spamdrill run --etc`

    Runs as any user: no root, no lab, nothing sent on the network, nothing written but
    --json/--html (the changed copies the budget reads live in a private temporary
    directory, removed before it exits). Nothing is ever applied to your files.

    \b
    spamdrill doctor                            # this host: /etc and /var/log/mail.log*
    spamdrill doctor --etc examples/field-report examples/field-report/incident/mail.log
    spamdrill doctor --json doctor.json --html doctor.html

    \b
    Exit status:
      0  nothing wrong: no bounce, loss, deferral or unscanned mail the budget explains
      1  problems found, and a change the budget predicts fixes every one of them
      2  bad input (one line on stderr): no logs found, an unreadable file or --etc
      3  could not verify: the logs held nothing to judge, or no change could be drafted
         that the budget predicts within every limit
    """
    from spamdrill.doctor import host
    from spamdrill.doctor import render as doctor_render
    from spamdrill.logs.diagnose import Thresholds
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import analyze
    from spamdrill.logs.summary import Options

    if not etc.is_dir():
        raise SpamdrillError(f"--etc {etc}: no such directory",
                             "give the root of a system's files, e.g. / or a copy of it")
    zone_info = zone_of(tz)
    filters = Filters(None, None, frozenset(), year, zone_info, None)
    with host.log_sources(etc, list(files), since) as (paths, shown):
        logs_doc = analyze(paths, filters, Options(Thresholds(), tz=zone_info))
    doc = host.run(etc, logs_doc, shown)
    if html is not None:
        _write(html, doctor_render.html(doc))
    if not _emit_json(json_path, doc):
        doctor_render.terminal(out, doc, full)
    if logs_doc["empty"]:
        click.echo(f"spamdrill: warning: nothing to diagnose in the logs "
                   f"({logs_doc['empty']['cause']}): {logs_doc['empty']['why']}", err=True)
    sys.exit(host.exit_status(doc, logs_doc))
