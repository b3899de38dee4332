"""``spamdrill report``, ``history`` and ``compare``: recorded runs shown again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from spamdrill.cli.common import (
    JSON_PATH,
    RESULTS,
    _emit_json,
    _progress,
    _write,
    _write_outputs,
    cli,
    out,
)
from spamdrill.errors import SpamdrillError
from spamdrill.render import term

if TYPE_CHECKING:
    from spamdrill.runmodel import Run


def _load_run(results_dir: Path, ref: str) -> Run:
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
    import msgspec

    from spamdrill import history
    from spamdrill.render import compare

    runs = history.list_runs(results_dir / "runs.sqlite")[:limit]
    if _emit_json(json_path, {"runs": [msgspec.to_builtins(r) for r in runs]}):
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
