"""``spamdrill doctor``: from an incident's logs to a change in the user's files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spamdrill.cli.common import (
    JSON_PATH,
    RESULTS,
    _emit_json,
    _progress,
    _write,
    cli,
    etc_option,
    out,
    zone_of,
)
from spamdrill.errors import SpamdrillError


@cli.command("doctor")
@click.argument("files", nargs=-1)
@etc_option("The root of the system whose configs are read (a copy of a host's files "
            "works, or a tarball of them: etc/..., or /etc's contents); its logs are looked "
            "for under DIR/var/log.", metavar="DIR|TARBALL")
@click.option("--tz", default=None, metavar="ZONE",
              help="Zone of log stamps that carry none (default: this machine's).")
@click.option("--year", type=click.IntRange(1970, 9999), default=None,
              help="Year of classic syslog lines (default: from each file's date).")
@click.option("--since", default="yesterday", show_default=True, metavar="WHEN",
              help="With journald (no log file found): journalctl's --since.")
@click.option("--full", is_flag=True, help="Every chain and wrapper row, not one screen.")
@click.option("--html", type=click.Path(path_type=Path), default=None,
              help="Also write the same as one offline HTML page.")
@click.option("--verify", is_flag=True,
              help="On a lab machine (root): drill the diagnosed modes in two labs shaped "
                   "like these files, before and after the change (applied to private "
                   "copies), end to end through each lab's Postfix with master.cf's "
                   "wrapper, and mark each change verified, not verified or not drillable.")
@click.option("--origin", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="With --verify: the message that started the trouble "
              "(postcat -q QID output, or the message itself), sent through each lab's "
              "Postfix first, among the drills' own.")
@RESULTS
@JSON_PATH
def doctor_command(files: tuple[str, ...], etc: Path, tz: str | None, year: int | None,
                   since: str, full: bool, html: Path | None, verify: bool,
                   origin: Path | None, results_dir: Path,
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
      How sure       predicted (the budget on the changed files); with --verify,
                     drilled: each change verified, not verified or not drillable,
                     before and after side by side (as `spamdrill compare`)

    Runs as any user: no root, no lab, nothing sent on the network, nothing written but
    --json/--html (the changed copies the budget reads live in a private temporary
    directory, removed before it exits). Nothing is ever applied to your files.

    --verify (root, a lab machine with the README's set-up) also starts labs: minutes
    (the field report's example: about 6; a full accept queue waits out maildrop's
    compiled-in 300 s), and records both runs under --results-dir.

    \b
    spamdrill doctor                            # this host: /etc and /var/log/mail.log*
    spamdrill doctor --etc examples/field-report examples/field-report/incident/mail.log
    spamdrill doctor --json doctor.json --html doctor.html
    spamdrill doctor --verify --etc host-etc.tgz --origin msg.txt mail.log  # lab box

    \b
    Exit status:
      0  nothing wrong: no bounce, loss, deferral or unscanned mail the budget explains
      1  problems found, and a change the budget predicts fixes every one of them
         (with --verify: and the drills verified every change that answers a mode)
      2  bad input (one line on stderr): no logs found, an unreadable file or --etc
      3  could not verify: the logs held nothing to judge, or no change could be drafted
         that the budget predicts within every limit; with --verify, also: a change not
         verified in the lab, or one answering a mode no drill could make happen
    """
    from spamdrill.doctor import host, tarball
    from spamdrill.doctor import render as doctor_render
    from spamdrill.logs.diagnose import Thresholds
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import analyze
    from spamdrill.logs.summary import Options

    origin_msg = _origin(origin, verify)
    zone_info = zone_of(tz)
    filters = Filters(None, None, frozenset(), year, zone_info, None)
    with tarball.root_of(etc) as root:
        with host.log_sources(root, list(files), since) as (paths, shown):
            logs_doc = analyze(paths, filters, Options(Thresholds(), tz=zone_info))
        doc, budget, changes = host.diagnosis(root, logs_doc, shown)
        doc["root"] = str(etc)
        if verify and changes and not logs_doc["empty"]:
            from spamdrill.doctor import drills

            drills.attach(doc, drills.verify(root, doc, budget, changes, origin=origin_msg,
                                             results_dir=results_dir, progress=_progress))
        if root != etc:
            doc = tarball.relabel(doc, root, etc)
    if html is not None:
        _write(html, doctor_render.html(doc))
    if not _emit_json(json_path, doc):
        doctor_render.terminal(out, doc, full)
    if logs_doc["empty"]:
        click.echo(f"spamdrill: warning: nothing to diagnose in the logs "
                   f"({logs_doc['empty']['cause']}): {logs_doc['empty']['why']}", err=True)
    sys.exit(host.exit_status(doc, logs_doc))


def _origin(origin: Path | None, verify: bool) -> tuple[str, bytes] | None:
    """--verify needs root; --origin needs --verify, and a message in the file."""
    import os

    if origin is not None and not verify:
        raise SpamdrillError("--origin is replayed by --verify", "add --verify")
    if verify and os.geteuid() != 0:
        raise SpamdrillError("--verify needs root: it starts labs with a private Postfix "
                             "(network namespaces, a pipe(8) user)",
                             "run it as root on a lab machine, not on the mail host")
    if origin is None:
        return None
    from spamdrill.doctor import verify as doctor_verify

    try:
        return str(origin), doctor_verify.origin_message(origin.read_bytes())
    except OSError as exc:
        raise SpamdrillError(f"--origin {origin}: {exc.strerror}") from None
    except ValueError as exc:
        raise SpamdrillError(f"--origin {origin}: {exc}",
                             "give postcat -q QID output, or the message") from None
