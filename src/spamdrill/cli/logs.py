"""``spamdrill logs`` and ``replay``: production logs joined and diagnosed; one message
through a lab's spamd."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from spamdrill.cli.common import CONFIG, JSON_PATH, _emit_json, _progress, cli, out, zone_of
from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.render import term

EXIT_NOTHING = 4  # ``spamdrill logs``: nothing to diagnose

@cli.command("logs")
@click.argument("files", nargs=-1, required=True)
@click.option("--since", default=None, metavar="WHEN",
              help="Only lines from then on (ISO 8601: 2026-11-29 or '2026-11-29 15:55').")
@click.option("--until", default=None, metavar="WHEN", help="Only lines until then.")
@click.option("--host", "hosts", multiple=True,
              help="Only lines from this host (repeatable: name the spamd host too). Files "
                   "without host names (spamd's, maildrop's own) always pass.")
@click.option("--format", "fmt", default=None, type=click.Choice(
    ["classic", "iso", "rfc5424", "journal-json", "spamd-file", "maildrop-file"]),
              help="The files' format (default: sniffed per file).")
@click.option("--tz", default=None, metavar="ZONE",
              help="Zone of time stamps that carry none (classic syslog, spamd's and "
                   "maildrop's files): UTC, +01:00, Europe/Berlin. Default: this machine's.")
@click.option("--year", type=click.IntRange(1970, 9999), default=None,
              help="Year of classic syslog lines (default: from each file's date).")
@click.option("--slow", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds of pipe(8) run time from which a delivery is slow.")
@click.option("--slow-scan", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds from which a spamd scan is slow.")
@click.option("--episode-gap", type=click.FloatRange(min=0), default=300.0,
              show_default=True, help="Quiet seconds that end an episode of trouble.")
@click.option("--late-window", type=click.FloatRange(min=0), default=330.0,
              show_default=True,
              help="How long after a delivery spamd may still log its scan (spamc gave up "
                   "first); about spamd's --timeout-child.")
@click.option("--size-limit", type=click.IntRange(min=0), default=250000, show_default=True,
              help="Messages this big skip spamc (your maildroprc's $SIZE test).")
@click.option("--bucket", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Seconds per point of the stage-delay series (--json's plot data).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="Deliveries kept in full per list (counts are always complete).")
@click.option("--anonymize", is_flag=True,
              help="Hash addresses, Message-IDs, user names and client IPs in the output.")
@click.option("--maildrop-timeout", type=click.FloatRange(min=1), default=300.0,
              show_default=True,
              help="maildrop's global timeout: a bounce by a wrapper's exit status this "
                   "close (within 5 s) to it, without maildrop's words, is its timer.")
@click.option("--evidence", "show_evidence", is_flag=True,
              help="Show the lines behind every diagnosis, under each delivery.")
@JSON_PATH
def logs_command(files: tuple[str, ...], since: str | None, until: str | None,
                 hosts: tuple[str, ...], fmt: str | None, tz: str | None, year: int | None,
                 slow: float, slow_scan: float, episode_gap: float, late_window: float,
                 size_limit: int, bucket: float, limit: int, anonymize: bool,
                 maildrop_timeout: float, show_evidence: bool, json_path: str | None) -> None:
    """What happened to your mail: Postfix, maildrop and spamd logs joined per message.

    Reads FILES (plain, rotated .1, .gz; classic syslog, RFC 5424, journalctl -o json or
    -o short-iso, spamd's and maildrop's own log files; '-' for stdin), joins each
    delivery attempt to its spamd scan (by Message-ID, else by user and time), and
    explains every bounce, deferral, slow or unscanned delivery in the failure modes
    `spamdrill budget` uses, with the lines that show it, the same fix `budget` gives and
    the commands to run next. For each episode of slow scans or timeouts it names the
    scans that were running when it began: the message to pull from the queue and
    replay (spamdrill replay FILE).

    \b
    spamdrill logs /var/log/mail.log /var/log/mail.log.1 /var/log/mail.log.2.gz
    journalctl -o json -u postfix@-.service -u spamd.service --since yesterday \\
        | spamdrill logs -
    spamdrill logs --since '2026-11-29 02:00' --anonymize --json report.json mail.log

    On Debian 12, Postfix logs to the journal as postfix@-.service (postfix.service is a
    dummy that logs nothing), spamd as spamd.service; maildrop's lines come from
    Postfix's unit.

    \b
    Exit status:
      0  the logs were read and diagnosed
      2  bad input (one line on stderr)
      4  nothing to diagnose: an empty input, no line recognised (a wrong --format),
         nothing in the --since/--until window, or no Postfix delivery nor spamd scan
         among the lines (a warning names which)
    """
    from spamdrill.logs import render
    from spamdrill.logs.diagnose import Thresholds
    from spamdrill.logs.join import Settings
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import analyze, parse_when
    from spamdrill.logs.summary import Options

    zone_info = zone_of(tz)
    filters = Filters(parse_when(since, zone_info, "--since"),
                      parse_when(until, zone_info, "--until"), frozenset(hosts), year,
                      zone_info, fmt)
    horizon = max(1800.0, 2 * late_window + 600)
    options = Options(Thresholds(slow=slow, slow_scan=slow_scan, size_limit=size_limit,
                                 maildrop_timeout=maildrop_timeout),
                      Settings(late_window=late_window, horizon=horizon), episode_gap,
                      bucket, limit, tz=zone_info)
    doc = analyze(list(files), filters, options, anonymized=anonymize)
    if not _emit_json(json_path, doc):
        render.render(out, doc, show_evidence)
    if doc["empty"]:
        click.echo(f"spamdrill: warning: nothing to diagnose ({doc['empty']['cause']}): "
                   f"{doc['empty']['why']}", err=True)
        sys.exit(EXIT_NOTHING)


@cli.command("replay")
@click.argument("file")
@click.option("--user", default="alice", show_default=True,
              help="spamc -u: whose SQL preferences spamd loads (a lab user).")
@click.option("--spamc-args", default="-t 600", show_default=True,
              help="spamc's other flags.")
@click.option("--timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="Seconds to wait for spamc before giving up.")
@CONFIG
@JSON_PATH
def replay_command(file: str, user: str, spamc_args: str, timeout: float,
                   config_path: Path | None, json_path: str | None) -> None:
    """Run one message (FILE, '-' for stdin) through a private lab's real spamd, timed,
    with SpamAssassin's debug output read for the rules that took the time.

    The message `spamdrill logs` names as the start of an episode: pull it from the
    queue (postcat -bh -q QUEUE_ID) or the mailbox and replay it here. A lab is brought
    up for it (its spamd with --debug=rules-all,timing) and taken down afterwards.
    """
    import shlex

    from spamdrill.logs.replay import replay

    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise SpamdrillError(f"cannot read {file}: {exc.strerror}") from None
    if not data.strip():
        raise SpamdrillError(f"{file} is empty", "give a message file (headers and body)")
    result = replay(file, data, user=user, spamc_args=shlex.split(spamc_args),
                    config=lab_config.load(config_path), timeout=timeout, progress=_progress)
    doc = result.public()
    if _emit_json(json_path, doc):
        return
    out.print(f"[bold]{term.safe(doc['message_id'] or file)}[/bold] ({doc['size']} B, user "
              f"{term.safe(doc['user'])}): {term.safe(doc['outcome'])} in "
              f"[bold]{doc['seconds']:.2f} s[/bold]"
              + (f", score {doc['score']:g}/{doc['required']:g}" if doc['score'] is not None
                 else "") + (f"; spamd's scan {doc['spamd_scan_s']:g} s"
                             if doc['spamd_scan_s'] is not None else ""))
    if doc["phases"]:
        out.print("timing: " + ", ".join(f"{term.safe(p['phase'])} {p['ms']:g} ms"
                                         for p in doc["phases"][:6]))
    table = Table(title=f"slowest rules ({doc['rules_run']} run; the log's stamps are "
                        "whole seconds)")
    for col in ("rule", "type", "seconds"):
        table.add_column(col)
    for r in doc["slow_rules"][:10]:
        table.add_row(term.safe(r["rule"]), term.safe(r["type"]), f"{r['seconds']:g}")
    out.print(table if doc["slow_rules"] else "no rule took a second or more")
