"""``spamdrill run``, ``flood`` and ``list``: the drills, chosen, run and kept (through
``spamdrill.app``), and their quick view."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from msgspec.structs import replace
from rich.table import Table

from spamdrill import app
from spamdrill.cli.common import (
    CONFIG,
    ETC,
    JSON_PATH,
    OUTPUTS,
    RESULTS,
    TOPOLOGY,
    _base_config,
    _emit_json,
    _lab,
    _progress,
    _report_outputs,
    _with_topology,
    _write_outputs,
    cli,
    err,
    out,
)
from spamdrill.errors import SpamdrillError
from spamdrill.lab import config as lab_config
from spamdrill.render import term

if TYPE_CHECKING:
    from spamdrill.drills.runner import ScenarioResult
    from spamdrill.runmodel import Run

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


def _record(results_dir: Path, run_id: str, started: float,
            results: list[ScenarioResult], kind: str, json_path: str | None) -> Run:
    """Keep a finished run (``run`` or ``flood``) through ``app.record``, with the
    command's options as its config; then the JSON and the outputs asked for. Returns the
    run's model, which every view renders."""
    from spamdrill import runmodel

    ctx = click.get_current_context()
    model = app.record(results_dir, run_id, started, results, kind,
                       app.config_of(ctx.params))
    _emit_json(json_path, runmodel.to_builtins(model))
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
    chosen = app.select(load_all(list(scenario_dirs)), scenarios, long_=long_,
                        root=os.geteuid() == 0, progress=_progress)
    for cleaned in _lab().down_all(only_orphans=True):
        _progress(f"cleaned a lab an interrupted run left: {cleaned}")
    run_id = runner.new_run_id()
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    view = err if json_path == "-" else out  # stdout holds the JSON alone
    settings = app.DrillSettings(
        factor, base, count, wrappers,
        shaped.config.maildrop.spamc_args if shaped is not None else None)
    results = _run_all(chosen, settings, run_dir,
                       streaming=json_path != "-" and not sys.stdout.isatty())
    model = _record(results_dir, run_id, started, results, "run", json_path)
    report.print_run(view, model)
    if shaped is not None:
        view.print(report.predicted_vs_measured(results, shaped.predicted, str(etc)))
    view.print(f"history: {term.safe(run_dir / 'history.jsonl')}; runs database: "
               f"{term.safe(results_dir / 'runs.sqlite')}", style="dim")
    sys.exit(model.exit_status)


def _run_all(chosen: list[Any], settings: app.DrillSettings, run_dir: Path,
             streaming: bool = False) -> list[Any]:
    """``app.run_drills`` under a progress bar per drill (on a terminal), and one line
    per drill as it finishes when ``streaming``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from spamdrill import report

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=not err.is_terminal) as bars:

        def ticker(name: str) -> app.Tick:
            task = bars.add_task(name, total=None)

            def tick(name: str, done: int, total: int) -> None:
                bars.update(task, description=name, completed=done, total=total)

            return tick

        def done(r: Any) -> None:
            if streaming:
                click.echo(term.plain(report.line(r)))
                sys.stdout.flush()

        return app.run_drills(chosen, settings, run_dir, ticker, done)


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
    model = _record(results_dir, run_id, started, results, "flood", json_path)
    report.print_run(view, model)
    view.print(f"history: {term.safe(run_dir / 'history.jsonl')}; runs database: "
               f"{term.safe(results_dir / 'runs.sqlite')}", style="dim")
    sys.exit(model.exit_status)


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
