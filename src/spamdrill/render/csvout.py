"""CSV for spreadsheets: ``messages.csv``, ``faults.csv``, ``checks.csv``, one row per
message, fault window and check, every scenario in one file with a ``scenario`` column.
Times are seconds from the scenario's first release (the report's time axis), and each
message's duration."""

from __future__ import annotations

import csv
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.runmodel import Run

MESSAGES = ("scenario", "id", "case", "kind", "size", "peer", "start_s", "end_s", "seconds",
            "outcome", "exit_code", "reason", "score", "spamc_args")
FAULTS = ("scenario", "name", "start_s", "end_s", "detail")
CHECKS = ("scenario", "check", "status", "detail", "offenders")


def _r(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(x: object) -> object:
    """A spreadsheet reads a cell that starts with = + - @ (a tab, a CR) as a formula
    (CSV injection): text from a run (a reason, a detail, spamc's flags) that does gets a
    leading apostrophe, which spreadsheets show as text. Numbers stay numbers."""
    if not isinstance(x, str) or not x.startswith(FORMULA_START):
        return x
    try:
        float(x)
    except ValueError:
        return "'" + x
    return x


def rows(run: Run) -> dict[str, list[list[object]]]:
    """The three tables, sans-IO."""
    messages: list[list[object]] = []
    faults: list[list[object]] = []
    checks: list[list[object]] = []
    for sc in run.scenarios:
        for m in sc.messages:
            messages.append([sc.name, m.id, m.case, m.kind, m.size, m.peer,
                             _r(sc.rel_s(m.start_ns)), _r(sc.rel_s(m.end_ns)), _r(m.seconds),
                             m.outcome, "" if m.exit_code is None else m.exit_code, m.reason,
                             "" if m.score is None else m.score, " ".join(m.spamc_args)])
        for f in sc.faults:
            faults.append([sc.name, f.name, _r(sc.rel_s(f.start_ns)), _r(sc.rel_s(f.end_ns)),
                           f.detail])
        for c in sc.checks:
            checks.append([sc.name, c.name, c.status, c.detail, " ".join(c.offenders)])
    return {name: [[_text(c) for c in row] for row in table] for name, table in
            (("messages.csv", messages), ("faults.csv", faults), ("checks.csv", checks))}


def write(run: Run, into: Path) -> list[Path]:
    heads = {"messages.csv": MESSAGES, "faults.csv": FAULTS, "checks.csv": CHECKS}
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpamdrillError(f"cannot create {into}: {exc.strerror}") from None
    written = []
    for name, table in rows(run).items():
        path = into / name
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(heads[name])
            w.writerows(table)
        written.append(path)
    return written
