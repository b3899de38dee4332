"""``spamdrill logs`` and ``replay``: production logs joined and diagnosed; one message
through a lab's spamd."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Host groups read at once, one process each (files are grouped by the "
                   "host names their lines carry).")
@click.option("--group", "group_pairs", multiple=True, metavar="FILE=HOST",
              help="Whose file this is, for files that name no host (spamd's own log) or "
                   "to join two hosts' files as one (repeatable).")
@click.option("--merge", "merge_docs", is_flag=True,
              help="FILES are documents of `spamdrill logs --json` (one per host): one "
                   "view of them all.")
@click.option("--rspamd-log", "rspamd_logs", multiple=True, metavar="FILE",
              help="rspamd's own log (/var/log/rspamd/rspamd.log; repeatable): its scans "
                   "joined to Postfix's lines in FILES by queue id and Message-ID, and "
                   "Postfix's milter lines, diagnosed (task timeouts, Redis, an "
                   "unavailable milter).")
@JSON_PATH
@click.pass_context
def logs_command(ctx: click.Context, files: tuple[str, ...], since: str | None,
                 until: str | None, hosts: tuple[str, ...], fmt: str | None,
                 tz: str | None, year: int | None, slow: float, slow_scan: float,
                 episode_gap: float, late_window: float, size_limit: int, bucket: float,
                 limit: int, anonymize: bool, maildrop_timeout: float, show_evidence: bool,
                 jobs: int, group_pairs: tuple[str, ...], merge_docs: bool,
                 rspamd_logs: tuple[str, ...],
                 json_path: str | None) -> None:
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
    spamdrill logs --jobs 2 mx1/mail.log mx1/mail.log.1 mx2/mail.log mx2/mail.log.1
    spamdrill logs --merge mx1.json mx2.json

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
    from spamdrill.logs.cluster import analyze, named_groups
    from spamdrill.logs.diagnose import Thresholds
    from spamdrill.logs.join import Settings
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import parse_when
    from spamdrill.logs.summary import Options

    if merge_docs:
        _merge_only(ctx)
        doc = _merged(list(files), anonymize)
    else:
        doc = None
    zone_info = zone_of(tz)
    if doc is None:
        filters = Filters(parse_when(since, zone_info, "--since"),
                          parse_when(until, zone_info, "--until"), frozenset(hosts), year,
                          zone_info, fmt)
        horizon = max(1800.0, 2 * late_window + 600)
        options = Options(Thresholds(slow=slow, slow_scan=slow_scan, size_limit=size_limit,
                                     maildrop_timeout=maildrop_timeout),
                          Settings(late_window=late_window, horizon=horizon), episode_gap,
                          bucket, limit, tz=zone_info)
        doc = analyze(list(files), filters, options,
                      anonymized=anonymize and not rspamd_logs, jobs=jobs,
                      named=named_groups(group_pairs, list(files)),
                      note=lambda text: _progress(f"note: {text}"))
    rspamd = _rspamd(files, rspamd_logs) if rspamd_logs else None
    if rspamd is not None:
        from spamdrill.logs.anonymize import anonymize as anonymized

        doc["rspamd"] = rspamd
        if anonymize:  # one key for the whole document, rspamd's part included
            doc = anonymized(doc)
            rspamd = doc["rspamd"]
    if not _emit_json(json_path, doc):
        render.render(out, doc, show_evidence)
        if rspamd is not None:
            _print_rspamd(rspamd)
    if doc["empty"] and not (rspamd and (rspamd["scans"] or rspamd["items"])):
        click.echo(f"spamdrill: warning: nothing to diagnose ({doc['empty']['cause']}): "
                   f"{doc['empty']['why']}", err=True)
        sys.exit(EXIT_NOTHING)


# what --merge takes besides the documents: the rest applies when reading logs
_MERGE_OPTIONS = ("files", "merge_docs", "json_path", "anonymize", "show_evidence")


def _merge_only(ctx: click.Context) -> None:
    for name, value in ctx.params.items():
        if name not in _MERGE_OPTIONS and ctx.get_parameter_source(name) not in (
                click.core.ParameterSource.DEFAULT, None):
            flag = name.replace("_", "-") if name != "fmt" else "format"
            raise SpamdrillError(f"--merge combines documents already read: --{flag} "
                                 f"({value!r}) applies when reading logs",
                                 "give it to each spamdrill logs run instead")


def _merged(paths: list[str], anonymized: bool) -> dict[str, Any]:
    """``--merge``: the documents read, checked, merged."""
    import json

    from spamdrill.logs.anonymize import anonymize
    from spamdrill.logs.merge import Merger, check

    if paths.count("-") > 1:
        raise SpamdrillError("stdin ('-') can be read only once")
    merger = Merger()  # each document folded in once read: one held at a time
    for path in paths:
        name = "stdin" if path == "-" else path
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SpamdrillError(f"cannot read {name}: {why}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise SpamdrillError(f"{name} is not JSON ({str(exc)[:80]})",
                                 "give documents written by spamdrill logs --json") from None
        merger.add(check(doc, name), name=name)
    doc = merger.result()
    return anonymize(doc) if anonymized else doc


def _text_lines(path: str) -> list[str]:
    """A plain or gzipped file's lines (stdin is read once, by the main pass)."""
    import gzip

    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        why = getattr(exc, "strerror", None) or "not a whole gzip file"
        raise SpamdrillError(f"cannot read {path}: {why}") from None
    return raw.decode("utf-8", errors="replace").splitlines()


def _rspamd(files: tuple[str, ...], rspamd_logs: tuple[str, ...]) -> dict[str, object]:
    """rspamd's lines and Postfix's (the FILES), diagnosed by ``logs.rspamd``."""
    from spamdrill.logs.rspamd import diagnose

    lines = [ln for p in (*files, *rspamd_logs) if p != "-" for ln in _text_lines(p)]
    d = diagnose(lines)
    return {"lines": d.lines, "scans": len(d.scans), "modes": d.counts(),
            "items": [{"key": i.key, "mode": i.mode.value, "fate": i.fate.value,
                       "why": i.why, "evidence": i.evidence} for i in d.items],
            "unread": len(d.unread), "unread_first": d.unread[:5]}


def _print_rspamd(doc: dict[str, Any]) -> None:
    t = Table(title=f"rspamd: {doc['scans']} scans, {len(doc['items'])} met a failure")
    for col in ("message", "mode", "fate", "why"):
        t.add_column(col)
    for i in doc["items"]:
        t.add_row(term.safe(i["key"]), i["mode"], i["fate"], term.safe(i["why"]))
    out.print(t)
    # never a clean bill for what was not read: say what was not understood
    if not doc["scans"]:
        out.print("rspamd: no scan of rspamd's found in these lines (its own file or "
                  "syslog, with rspamd_task_write_log lines?): not a sign that all is well")
    if doc.get("unread"):
        out.print(f"rspamd: {doc['unread']} line(s) of rspamd's that tell of trouble "
                  "were not diagnosed, first: " + term.safe(doc["unread_first"][0]))


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
