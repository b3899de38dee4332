"""Rendering of drill results: the verdict table, per-case findings, one line per drill for
logs, the exit status, and the JSON contract.

Two questions, kept apart: the *verdict* says whether a drill's hypothesis held
(``confirmed``, ``refuted``, ``error``: its fault left no evidence, a check crashed, the lab
failed); the *finding* says what the system under test does in that failure mode against
its budgets (``within``, ``delivers unscanned``, ``defers``, ``bounces``, ``duplicates
mail``, ``loses mail``).

Exit status of ``spamdrill run``: 0 every hypothesis confirmed and nothing crosses a budget;
1 a finding crosses a budget (mail bounces, is lost or duplicated: the system is unsafe;
the default lab, shaped like the field report, is); 3 a hypothesis refuted or a drill in
error (a verdict about the drill, which also makes its findings untrustworthy).

JSON (``spamdrill run --json FILE``), ``"version": 2``::

  {"version": 2, "run": id, "started": epoch_s, "results_dir": path, "exit_status": n,
   "scenarios": [{"name", "hypothesis", "stands_for",
     "verdict": "confirmed"|"refuted"|"error", "finding": <worst finding>, "error",
     "scale", "budget_s",
     "timing": {"compressed", "why", "does_not_compress", "calibration":
                {"scan_s", "samples", "cores"}|null},
     "checks": [{"name", "status": "pass"|"fail"|"error", "ok", "detail", "offenders"}],
     "fault_evidence": [{"fault", "took_effect", "detail"}],
     "findings": [{"case", "mode", "finding", "fate", "fires_first", "worst_s", "messages",
                   "scanned", "unscanned", "lost", "why", "crosses_budget"}],
     "notes", "messages": [{"id", "kind", "size", "case", "peer", "worker", "start_ns",
                            "end_ns", "outcome", "exit_code", "reason", "score",
                            "spamc_args"}],
     "faults": [{"name", "start_ns", "end_ns", "detail"}]}]}
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from spamdrill.budget.verify import UNBOUNDED, predict
from spamdrill.drills.runner import ScenarioResult, summarize
from spamdrill.vocab import Finding, Verdict

VERSION = 2
VERDICT_STYLE = {Verdict.CONFIRMED: "green", Verdict.REFUTED: "red", Verdict.ERROR: "magenta"}


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _finding_style(f: Finding) -> str:
    return "red" if f.crosses_budget else ("yellow" if f != Finding.WITHIN else "green")


def exit_status(results: list[ScenarioResult]) -> int:
    if any(r.verdict != Verdict.CONFIRMED for r in results):
        return 3
    if any(r.finding.crosses_budget for r in results):
        return 1
    return 0


def line(r: ScenarioResult) -> str:
    """One line per drill as it finishes, for logs that are not a terminal."""
    worst = "-" if r.worst_s is None else f"{r.worst_s:.2f} s"
    return (f"{r.name}: {r.verdict}, worst {worst} (budget {r.budget_s:.3g} s, scale "
            f"{r.scale:.3g}), finding: {r.finding}" + (f"; error: {r.error}" if r.error else ""))


def verdict_table(results: list[ScenarioResult]) -> Table:
    table = Table(title="spamdrill run (scale: production seconds per drill second; 1 = "
                        "production timings)")
    for col in ("scenario", "scale", "messages", "scanned", "unscanned", "lost", "p50 s",
                "max s", "budget s", "finding", "verdict"):
        table.add_column(col, justify="left" if col in ("scenario", "finding") else "right")
    for r in results:
        s = summarize(r.history.messages)
        vs, fs = VERDICT_STYLE[r.verdict], _finding_style(r.finding)
        table.add_row(r.name, f"{r.scale:.3g}", str(s["messages"]), str(s["scanned"]),
                      str(s["unscanned"]), str(s["lost"] + s["error"]), _s(s["p50_s"]),
                      _s(s["max_s"]), f"{r.budget_s:.3g}", f"[{fs}]{r.finding}[/{fs}]",
                      f"[{vs}]{r.verdict}[/{vs}]")
    return table


def case_table(r: ScenarioResult) -> Table:
    table = Table(title=f"{r.name}: worst case per combination (budget {r.budget_s:.3g} s)")
    for col in ("case", "n", "outcome", "predicted s", "max s", "reason", "finding"):
        table.add_column(col)
    by_case = r.history.by_case()
    for f in sorted(r.findings, key=lambda f: -(f.worst_s or 0)):
        ms = by_case.get(f.case, [])
        predicted = predict(ms[0].peer, ms[0].spamc_args) if ms else None
        s = summarize(ms)
        outcome = ", ".join(f"{s[o]} {o}" for o in ("spam", "ham", "unscanned", "error",
                                                     "lost") if s[o])
        shown = "-" if predicted is None else (
            "unbounded" if predicted == UNBOUNDED else f"{predicted:.2f}")
        style = _finding_style(f.finding)
        table.add_row(f.case, str(f.messages), outcome, shown, _s(f.worst_s),
                      ", ".join(s["reasons"]), f"[{style}]{f.finding}[/{style}]")
    return table


def _explain(console: Console, r: ScenarioResult) -> None:
    for fr in r.faults:
        mark = "[green]✓[/green]" if fr.took_effect else "[magenta]?[/magenta]"
        console.print(f"{mark} {r.name}: fault {fr.name}: {fr.detail}")
    for c in r.checks:
        if not c.ok:
            who = f" (e.g. {', '.join(c.offenders[:3])})" if c.offenders else ""
            colour = "red" if c.status == "fail" else "magenta"
            console.print(f"[{colour}]✗[/{colour}] {r.name}: {c.name}: {c.detail}{who}")
        elif c.name.startswith("budget model") and len(r.findings) == 1:
            console.print(f"  {r.name}: spamdrill budget {c.detail}")
    for f in r.findings:
        if f.finding.crosses_budget:
            console.print(f"[red]![/red] {r.name}: {f.case or 'all'} {f.finding}: {f.why}")
    if r.error:
        console.print(f"[magenta]✗[/magenta] {r.name}: could not run: {r.error}")
    if not r.scenario.timing.compress:
        console.print(f"  {r.name}: production timings: {r.scenario.timing.why}")
    for note in r.notes:
        console.print(f"  {r.name}: {note}")


def print_results(console: Console, results: list[ScenarioResult]) -> None:
    for r in results:
        if len(r.findings) > 1:
            console.print(case_table(r))
    console.print(verdict_table(results))
    for r in results:
        _explain(console, r)
    console.print("Times are drill seconds; not compressed: spamc's whole-second retry "
                  "sleeps, scan time, process start-up, the kernel's TCP timers. Verdict: "
                  "did the hypothesis hold; finding: what the system does in that mode.",
                  style="dim")


def document(run_id: str, started: float, results_dir: str,
             results: list[ScenarioResult]) -> dict[str, Any]:
    return {"version": VERSION, "run": run_id, "started": started,
            "results_dir": results_dir, "exit_status": exit_status(results),
            "scenarios": [r.public() for r in results]}
