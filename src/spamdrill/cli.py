"""The ``spamdrill`` command line. Thin: parses options, calls the lab/drill code, renders.

Every error a user can fix is one line on stderr and exit status 2; a failed drill check is
exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from spamdrill import __version__
from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.lab.layout import Layout, default_run_dir
from spamdrill.lab.state import LabState
from spamdrill.proto.dns_policy import MODES
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
      spamdrill list              the drills and the hypothesis each tests
      spamdrill run               run them all (each in its own private lab)
      spamdrill run spamc-timeouts --json out.json
      spamdrill flood --count 500 spamc processes released at once
      spamdrill budget --maildroprc /etc/maildroprc   worst cases, predicted
      spamdrill lab up            keep a lab running to explore by hand
      spamdrill lab check         deliver test mail through it
      spamdrill lab status        what runs, where, and spamd's child states
      spamdrill lab down          stop it all (also after a crash)
    """


@cli.group()
def lab() -> None:
    """Bring the private lab up, inspect it, take it down."""


def _progress(msg: str) -> None:
    err.print(f"[dim]…[/dim] {term.safe(msg)}")


ETC = click.option(
    "--etc", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
    help="Shape the lab like the system whose files are under DIR (/ for this host, or a "
         "copy of a production host's /etc): its spamd flags, its maildroprc's spamc "
         "flags, its SQL settings, quotas and wrapper. What a lab cannot reproduce is "
         "listed.")


JSON_PATH = click.option(
    "--json", "json_path", default=None, metavar="[PATH]", is_flag=False, flag_value="-",
    help="Write the JSON document (a contract) to PATH; '-', or --json alone, for stdout "
         "(then no terminal tables on stdout).")
EXIT_NOTHING = 4  # ``spamdrill logs``: nothing to diagnose


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
    from spamdrill.system.lab_of import lab_of

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
    return replace(config, topology=replace(config.topology, kind=topology))


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


def _default_results_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spamdrill"


RESULTS = click.option(
    "--results-dir", type=click.Path(path_type=Path), default=_default_results_dir,
    show_default="$XDG_DATA_HOME/spamdrill", envvar="SPAMDRILL_RESULTS",
    help="Where each run's history (JSONL) and the SQLite database of runs go.")
SCALE = click.option(
    "--scale", type=float, default=None,
    help="Production seconds per drill second (default 33.3: spamc -t 100 runs as -t 3 "
         "and maildrop's 300 s budget as 9 s). --scale 1 runs with production timings.")


def _scale(scale: float | None) -> float:
    from spamdrill.drills.scenario import DEFAULT_SCALE

    if scale is None:
        return DEFAULT_SCALE
    if scale <= 0:
        raise SpamdrillError("--scale must be positive (1 = production timings)")
    return scale


@cli.command("list")
@JSON_PATH
@click.option("--scenario-dir", "scenario_dirs", multiple=True,
              type=click.Path(path_type=Path), help="Extra scenario TOML files (repeatable).")
def list_scenarios(json_path: str | None, scenario_dirs: tuple[Path, ...]) -> None:
    """The drills, each with the hypothesis it tests."""
    from spamdrill.drills.scenario import load_all

    scenarios = load_all(list(scenario_dirs))
    if _emit_json(json_path, {"scenarios": [s.public() for s in scenarios.values()]}):
        return
    table = Table(title="spamdrill scenarios")
    table.add_column("scenario")
    table.add_column("hypothesis")
    for s in scenarios.values():
        table.add_row(term.safe(s.name), term.safe(s.hypothesis))
    out.print(table)


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


def _record(results_dir: Path, run_id: str, started: float, results: list[Any], kind: str,
            json_path: str | None) -> Any:
    """Keep a finished run (``run`` or ``flood``): its document in its directory, its line in
    the runs database, and whatever outputs were asked for; returns the run's model, which
    every view renders."""
    from spamdrill import environment, history, report, runmodel

    ctx = click.get_current_context()
    run_dir = results_dir / run_id
    doc = report.document(run_id, started, str(run_dir), results)
    doc["kind"] = kind
    doc["config"] = {k: [str(x) for x in v] if isinstance(v, tuple) else
                     (str(v) if isinstance(v, Path) else v) for k, v in ctx.params.items()
                     if k not in ("html", "junit", "csv_dir", "json_path", "results_dir")}
    doc["environment"] = environment.collect()
    text = json.dumps(doc, indent=1)
    (run_dir / "report.json").write_text(text)
    if kind != "run":  # run writes its history drill by drill (_run_all)
        for r in results:
            r.history.to_jsonl(run_dir / "history.jsonl", r.name)
    model = runmodel.from_document(doc)
    history.store(results_dir / "runs.sqlite", run_id, started, runmodel.index_entry(model),
                  {r.name: r.history for r in results})
    _emit_json(json_path, doc)
    _write_outputs(model, ctx.meta.get(OUTPUTS, (None, None, None)))
    return model


@cli.command("run")
@_report_outputs
@click.argument("scenarios", nargs=-1)
@CONFIG
@SCALE
@RESULTS
@JSON_PATH
@click.option("--count", type=click.IntRange(1, 10000), default=None,
              help="Override each scenario's message count (e.g. a smaller flood).")
@click.option("--scenario-dir", "scenario_dirs", multiple=True,
              type=click.Path(path_type=Path), help="Extra scenario TOML files (repeatable).")
@click.option("--wrapper", "wrappers", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="End to end: your delivery wrapper (the program master.cf runs instead of "
                   "maildrop), run side by side with spamdrill-deliver (repeatable).")
@click.option("--long", "long_", is_flag=True,
              help="Also the drills that run for minutes at production timings (the field "
                   "report's exact bounce: maildrop's 300 s timer).")
@ETC
def run(scenarios: tuple[str, ...], config_path: Path | None, scale: float | None,
        results_dir: Path, json_path: str | None, count: int | None,
        scenario_dirs: tuple[Path, ...], wrappers: tuple[Path, ...], long_: bool,
        etc: Path | None) -> None:
    """Run drills (all of them without arguments) and report each message's fate.

    Each drill brings up its own private lab (real spamd, MariaDB, lab DNS), injects its
    fault, fires real spamc processes, heals the fault, takes the lab down, and judges
    two things apart. The VERDICT: did its hypothesis hold (confirmed; refuted; error:
    the fault left no evidence that it took effect, a check crashed, the lab failed).
    The FINDING: what the system does in that failure mode against its budgets (within,
    delivers unscanned, defers, bounces, loses mail), judged with the wrapper of the lab's
    config ([delivery] wrapper; default: the field report's, which bounces maildrop's 75).

    \b
    Exit status:
      0  every hypothesis confirmed, and nothing crosses a budget
      1  a finding crosses a budget: this system bounces, loses or duplicates mail
         (the default lab, shaped like the field report, does)
      2  bad input (one line on stderr)
      3  a hypothesis refuted, or a drill in error: the drill, not your system

    When stdout is not a terminal, one line per drill is printed as it finishes.

    \b
    End to end (the e2e-* drills, root): mail goes over SMTP into a private Postfix
    whose pipe(8) runs each wrapper under test; the report puts them side by side:
      spamdrill run e2e-spamd-outage --wrapper /usr/local/bin/maildrop_wrapper
    """
    from spamdrill import report
    from spamdrill.drills import runner
    from spamdrill.drills.scenario import load_all

    base, shaped = _base_config(config_path, etc)
    factor = _scale(scale)
    known = load_all(list(scenario_dirs))
    for name in scenarios:
        if name not in known:
            raise SpamdrillError(f"unknown scenario {name!r}",
                                 "see: spamdrill list (known: " + ", ".join(known) + ")")
    chosen = _runnable([known[n] for n in scenarios] if scenarios else list(known.values()),
                       explicit=bool(scenarios), long_=long_)
    for cleaned in _lab().down_all(only_orphans=True):
        _progress(f"cleaned a lab an interrupted run left: {cleaned}")
    run_id = runner.new_run_id()
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    view = err if json_path == "-" else out  # stdout holds the JSON alone
    results = _run_all(chosen, factor, base, run_dir, count, wrappers,
                       shaped.config.maildrop.spamc_args if shaped is not None else None,
                       streaming=json_path != "-" and not sys.stdout.isatty())
    report.print_run(view, _record(results_dir, run_id, started, results, "run", json_path))
    if shaped is not None:
        view.print(report.predicted_vs_measured(results, shaped.predicted, str(etc)))
    view.print(f"history: {term.safe(run_dir / 'history.jsonl')}; runs database: "
               f"{term.safe(results_dir / 'runs.sqlite')}", style="dim")
    sys.exit(report.exit_status(results))


def _runnable(chosen: list[Any], explicit: bool, long_: bool) -> list[Any]:
    """Scenarios that need root, or --long, are refused by name, and skipped, saying so,
    in a full run."""
    lengthy = [s.name for s in chosen if s.long and not long_]
    if explicit and lengthy:
        raise SpamdrillError(f"{', '.join(lengthy)} run(s) for minutes at production "
                             "timings", "add --long")
    for name in lengthy:
        _progress(f"{name}: minutes at production timings; skipped (add --long)")
    chosen = [s for s in chosen if long_ or not s.long]
    if os.geteuid() == 0:
        return chosen
    needing = [s.name for s in chosen if s.needs_root]
    if explicit and needing:
        raise SpamdrillError(f"{', '.join(needing)} need(s) root (network namespaces, "
                             "nftables, a private Postfix)", "run as root, or leave them out")
    for name in needing:
        _progress(f"{name}: needs root (network namespaces, nftables, Postfix); skipped")
    return [s for s in chosen if not s.needs_root]


def _run_all(chosen: list[Any], factor: float, base: Any, run_dir: Path,
             count: int | None, wrappers: tuple[Path, ...] = (),
             system_spamc: tuple[str, ...] | None = None,
             streaming: bool = False) -> list[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from spamdrill import report
    from spamdrill.drills import runner

    results = []
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=not err.is_terminal) as bars:
        for sc in chosen:
            for drill in sc.drills():
                task = bars.add_task(drill.name, total=None)

                def tick(name: str, done: int, total: int, task: Any = task) -> None:
                    bars.update(task, description=name, completed=done, total=total)

                r = runner.run_drill(drill, scale=factor, base=base,
                                     workdir=run_dir / "work" / drill.name.replace("/", "_"),
                                     progress=tick, count=count, wrappers=wrappers,
                                     system_spamc=system_spamc)
                results.append(r)
                r.history.to_jsonl(run_dir / "history.jsonl", r.name)
                if streaming:
                    click.echo(term.plain(report.line(r)))
                    sys.stdout.flush()
    return results


def _own_target(host: str, owned: bool) -> None:
    from spamdrill.drills.targets import off_loopback

    if off_loopback(host) and not owned:
        raise SpamdrillError(f"--target {host} is not on loopback",
                             "flood only a spamd you own: add --i-own-this-target")


@cli.command("flood")
@_report_outputs
@click.option("--count", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Messages (bounded: at most 10,000 per machine that sends them).")
@click.option("--target", "targets", multiple=True, metavar="HOST:PORT",
              help="A spamd to flood. Default: a private lab brought up and down for this. "
                   "With workers, repeat it for a pool: worker k floods the k-th (cycled).")
@click.option("--i-own-this-target", "owned", is_flag=True,
              help="Allow a --target that is not on loopback (you own that spamd). A "
                   "--worker needs it too, on its own command line.")
@click.option("--spamc-args", default="-t {t:100}", show_default=True,
              help="spamc flags; {t:N} is N production seconds, scaled. Not -d, -p, -U, -F "
                   "or -e: the target is --target.")
@click.option("--schedule", type=click.Choice(["burst", "rate", "staircase"]),
              default="burst", show_default=True)
@click.option("--rate", type=float, default=10.0, help="Messages per production second.")
@click.option("--kinds", default="ham,spam", show_default=True,
              help="Message kinds, cycled: ham, spam, multipart, encoded, large:BYTES, "
                   "slow:SECONDS.")
@click.option("--max-wait", type=float, default=900.0, show_default=True,
              help="Production seconds to wait after the last release; then spamc is killed "
                   "and the message counted lost.")
@click.option("--workers", "local_workers", type=click.IntRange(1, 64), default=None,
              help="Send the load from N Locust worker processes on this machine, released "
                   "together by a Locust master.")
@click.option("--master", "as_master", is_flag=True,
              help="Be the Locust master of workers started on other machines with "
                   "`spamdrill flood --worker --master-host THIS-HOST`.")
@click.option("--expect-workers", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="With --master: workers to wait for (60 s) before the load starts.")
@click.option("--master-bind-host", default="*", show_default=True,
              help="With --master: the interface workers connect to (Locust's default).")
@click.option("--master-port", type=click.IntRange(1, 65535), default=5557,
              show_default=True, help="The Locust master's port (--master, --worker).")
@click.option("--worker", "as_worker", is_flag=True,
              help="Be a Locust worker: run the real spamc a master sends, until it quits.")
@click.option("--master-host", default=None, help="With --worker: the master's address.")
@click.option("--locust-csv", "csv_prefix", default=None, metavar="PREFIX",
              help="Locust's live statistics as CSV (PREFIX_stats.csv, "
                   "PREFIX_stats_history.csv, ...; default: locust_* in the run's directory).")
@click.option("--web-ui", default=None, metavar="HOST:PORT",
              help="Also Locust's web UI on the master, e.g. 127.0.0.1:8089.")
@CONFIG
@TOPOLOGY
@SCALE
@RESULTS
@JSON_PATH
def flood(count: int, targets: tuple[str, ...], owned: bool, spamc_args: str, schedule: str,
          rate: float, kinds: str, max_wait: float, local_workers: int | None,
          as_master: bool, expect_workers: int, master_bind_host: str, master_port: int,
          as_worker: bool, master_host: str | None, csv_prefix: str | None,
          web_ui: str | None, config_path: Path | None, topology: str | None,
          scale: float | None, results_dir: Path, json_path: str | None) -> None:
    """One ad-hoc load of real spamc processes, released together (or on a schedule).

    Reports every message's fate like a drill, and keeps the run (history.jsonl and the
    runs database, as `spamdrill run` does). Without --target it floods a private lab; a
    target is only ever what you name, and only on loopback unless you pass
    --i-own-this-target. Exit status as for `spamdrill run`.

    \b
    Beyond one process (Locust's master and workers; pip install 'spamdrill[dist]'):
      spamdrill flood --workers 4 --count 3000          N local worker processes
      spamdrill flood --workers 4 --topology hosts     each on a client host of its own (root)
      spamdrill flood --master --expect-workers 3 --target 10.0.0.5:783 --i-own-this-target
      spamdrill flood --worker --master-host 10.0.0.1 --i-own-this-target   on each client
    """
    import shlex

    from spamdrill import report
    from spamdrill.drills import runner
    from spamdrill.drills.scenario import parse

    if as_worker:
        _flood_worker(master_host, master_port, owned)
    factor = _scale(scale)
    flags = shlex.split(spamc_args)
    _flood_flags(flags, factor)
    raw: dict[str, Any] = {
        "name": "flood-adhoc", "hypothesis": "ad-hoc flood: every message comes back",
        "load": {"count": min(count, 10_000), "kinds": kinds.split(","), "schedule": schedule,
                 "rate": rate, "spamc_args": flags, "max_wait": max_wait},
        "checks": [{"kind": "nothing_lost"}, {"kind": "delivery_budget"}],
    }
    pool = _flood_targets(targets, owned)
    if pool:
        raw["target"] = {"kind": "address", "host": pool[0][0], "port": pool[0][1],
                         "i_own_this_target": owned}
    sc = parse(raw, "command line")
    run_id = runner.new_run_id()
    run_dir = results_dir / run_id
    loader = _flood_loader(count, pool, local_workers, as_master, expect_workers,
                           master_bind_host, master_port, owned,
                           csv_prefix or str(run_dir / "locust"), web_ui)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    base = _with_topology(lab_config.load(config_path), topology)
    if local_workers and base.topology.hosts:  # each local worker on a client host of its own
        base = replace(base, topology=replace(base.topology, clients=min(local_workers, 8)))
    results = runner.run_scenario(sc, scale=factor, base=base,
                                  workdir=run_dir / "work", count=count, loader=loader)
    view = err if json_path == "-" else out  # stdout holds the JSON alone
    report.print_run(view, _record(results_dir, run_id, started, results, "flood",
                                   json_path))
    view.print(f"history: {term.safe(run_dir / 'history.jsonl')}; runs database: "
               f"{term.safe(results_dir / 'runs.sqlite')}", style="dim")
    sys.exit(report.exit_status(results))


def _flood_flags(flags: list[str], scale: float) -> None:
    """spamc flags never choose the spamd nor run a command: the target rule stands."""
    from spamdrill.dist.plan import check_flags
    from spamdrill.drills.timing import bad_placeholders, expand_args

    if not bad_placeholders(flags):  # else the scenario's own check names the placeholder
        check_flags(expand_args(flags, scale))


def _flood_targets(targets: tuple[str, ...], owned: bool) -> list[tuple[str, int]]:
    """Each --target as (host, port), each under the loopback rule."""
    pool = []
    for target in targets:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise SpamdrillError(f"--target {target!r} is not HOST:PORT")
        _own_target(host, owned)
        pool.append((host, int(port)))
    return pool


def _flood_worker(master_host: str | None, master_port: int, owned: bool) -> None:
    """This process becomes a Locust worker (a fresh interpreter: Locust patches it)."""
    from spamdrill.dist import require_locust
    from spamdrill.dist.launch import child_env

    if not master_host:
        raise SpamdrillError("--worker needs --master-host HOST (where the master runs)")
    require_locust()
    argv = [sys.executable, "-m", "spamdrill.dist.worker", "--master-host", master_host,
            "--master-port", str(master_port), *(["--i-own-this-target"] if owned else [])]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, child_env())


def _flood_loader(count: int, pool: list[tuple[str, int]], local_workers: int | None,
                  as_master: bool, expect_workers: int, bind_host: str, port: int,
                  owned: bool, csv_prefix: str, web_ui: str | None) -> Any:
    """None for this machine's own load; else the load on Locust's master and workers."""
    if local_workers is None and not as_master:
        if count > 10_000:
            raise SpamdrillError(f"--count {count}: at most 10,000 from one machine",
                                 "spread it: --workers N, or --master with workers")
        if len(pool) > 1:
            raise SpamdrillError("several --target need workers (--workers or --master)")
        return None
    if local_workers is not None and as_master:
        raise SpamdrillError("--workers starts local workers; --master waits for others",
                             "use one of them")
    from spamdrill.dist import launch
    from spamdrill.dist.plan import Target

    many = tuple(Target("address", h, p) for h, p in pool) if len(pool) > 1 else ()
    if local_workers is not None:
        opts = launch.Options(local_workers, local_workers, owned=owned,
                              csv_prefix=csv_prefix, web=web_ui or "", targets=many)
    else:
        opts = launch.Options(expect_workers, 0, bind_host, port, owned, csv_prefix,
                              web_ui or "", targets=many)
    return launch.loader(opts, _progress)


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
@click.option("--etc", type=click.Path(path_type=Path), default=Path("/"),
              show_default=True, metavar="DIR",
              help="The root of the system to read: DIR/etc/postfix, DIR/etc/maildroprc, "
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
    notes = _budget_notes(system, chosen)
    problems = table.problems() if table is not None else []
    risks = list(system.maildroprc.risks) if system.maildroprc is not None else []
    _budget_html(setup, results, notes)
    if not _emit_json(json_path, {"limits": model.limits(setup),
                                  "modes": [r.public() for r in results],
                                  "xfilters": _xfilters_json(system, setups, chosen),
                                  "wrapper": table.public() if table is not None else None,
                                  "risks": risks, "notes": notes}):
        _print_budget(system, setups, chosen, results, notes)
        if table is not None and not system.maildrop_unused:
            _print_wrapper_table(table)
        for risk in risks:
            out.print(f"[red]risk:[/red] {term.safe(risk)}", highlight=False)
    sys.exit(1 if problems or risks or any(r.violations for r in results) else 0)


def _budget_notes(system: Any, chosen: int) -> list[str]:
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


def _load_run(results_dir: Path, ref: str) -> Any:
    from spamdrill import history, runmodel

    path = history.locate(results_dir, ref)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None
    return runmodel.decode(data, str(path))


@cli.command("report")
@click.argument("run_ref", metavar="RUN")
@RESULTS
@click.option("--html", type=click.Path(path_type=Path), default=None,
              help="Write the deep view: one self-contained HTML file, plots inline.")
@click.option("--junit", type=click.Path(path_type=Path), default=None,
              help="Write JUnit XML (a test suite per scenario, a test case per check).")
@click.option("--csv", "csv_dir", type=click.Path(path_type=Path), default=None,
              help="Write messages.csv, faults.csv and checks.csv into this directory.")
def report_cmd(run_ref: str, results_dir: Path, html: Path | None, junit: Path | None,
               csv_dir: Path | None) -> None:
    """Show a recorded run again, and write its HTML, JUnit or CSV.

    RUN is a run id (see spamdrill history), a run directory, or a report.json. Without
    an output option it prints the quick view `spamdrill run` printed. Exits with the
    recorded run's status (0, 1 or 3, as `spamdrill run` did), so CI that reports a run
    later fails as the run did.

    \b
    spamdrill report 20250101-120000-abcdef --html run.html
    spamdrill report ./results.json --junit junit.xml --csv csv/
    """
    from spamdrill import report

    run = _load_run(results_dir, run_ref)
    if html is None and junit is None and csv_dir is None:
        report.print_run(out, run)
    else:
        _write_outputs(run, (html, junit, csv_dir))
    sys.exit(run.exit_status)


@cli.command("history")
@RESULTS
@JSON_PATH
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def history_cmd(results_dir: Path, json_path: str | None, limit: int) -> None:
    """The recorded runs (spamdrill run and flood), newest first: id, date, scenarios with
    their verdicts, and how each was run."""
    from spamdrill import history
    from spamdrill.render import compare

    runs = history.list_runs(results_dir / "runs.sqlite")[:limit]
    if _emit_json(json_path, {"runs": runs}):
        pass  # stdout holds the document alone
    elif not runs:
        out.print(f"no runs recorded in {term.safe(results_dir)} (record one with: "
                  "spamdrill run)")
    else:
        out.print(compare.history_table(runs))


@cli.command("compare")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@RESULTS
@click.option("--html", type=click.Path(path_type=Path), default=None,
              help="Also write the comparison as one self-contained HTML file.")
@JSON_PATH
@click.option("--fail-on", type=click.Choice(["worse", "changed"]), default=None,
              help="Exit 1 when a scenario got worse from RUN_A to RUN_B (a worse verdict, "
                   "finding, outcome count or latency), or with 'changed' when anything "
                   "changed (a scenario added or gone too).")
def compare_cmd(run_a: str, run_b: str, results_dir: Path, html: Path | None,
                json_path: str | None, fail_on: str | None) -> None:
    """What changed per scenario from RUN_A to RUN_B: outcomes, p50/p99/max, verdict,
    findings. Each RUN is a run id, a run directory or a report.json.

    \b
    spamdrill compare before.json after.json --html change.html
    spamdrill compare last-good.json new.json --fail-on worse     # in CI

    Exit status: 0; 1 with --fail-on when the runs differ so (the scenarios that do are
    named on stderr); 2 bad input.
    """
    from spamdrill.render import compare

    a, b = _load_run(results_dir, run_a), _load_run(results_dir, run_b)
    diff = compare.compare(a, b)
    if not _emit_json(json_path, diff.public()):
        compare.print_compare(out, diff)
    if html is not None:
        from spamdrill.render import html as html_report

        _write(html, html_report.compare_page(a, b, diff))
        _progress(f"HTML comparison: {html}")
    failing = compare.failing(diff, fail_on) if fail_on else []
    if failing:
        click.echo(f"spamdrill: {fail_on} from {diff.a} to {diff.b}: " + "; ".join(failing),
                   err=True)
        sys.exit(1)


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
    from spamdrill.logs.formats import zone
    from spamdrill.logs.join import Settings
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import analyze, parse_when
    from spamdrill.logs.summary import Options

    try:
        zone_info = zone(tz)
    except (ValueError, KeyError):
        raise SpamdrillError(f"unknown zone {tz!r}", "e.g. UTC, +01:00, Europe/Berlin") \
            from None
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


@cli.command("doctor")
@click.argument("files", nargs=-1)
@click.option("--etc", type=click.Path(path_type=Path), default=Path("/"), show_default=True,
              metavar="DIR", help="The root of the system whose configs are read (a copy "
              "of a host's files works); its logs are looked for under DIR/var/log.")
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
    from spamdrill.logs.formats import zone
    from spamdrill.logs.reader import Filters
    from spamdrill.logs.run import analyze
    from spamdrill.logs.summary import Options

    if not etc.is_dir():
        raise SpamdrillError(f"--etc {etc}: no such directory",
                             "give the root of a system's files, e.g. / or a copy of it")
    try:
        zone_info = zone(tz)
    except (ValueError, KeyError):
        raise SpamdrillError(f"unknown zone {tz!r}", "e.g. UTC, +01:00, Europe/Berlin") \
            from None
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
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("spamdrill: interrupted; faults healed and labs taken down", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
