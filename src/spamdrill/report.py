"""Rendering of drill results: the verdict table, per-case findings, and the JSON contract.

JSON (``spamdrill run --json FILE``)::

  {"run": id, "started": epoch_s, "scale": s, "results_dir": path,
   "scenarios": [{"name", "hypothesis", "stands_for", "verdict": "pass"|"fail", "scale",
                  "budget_s", "does_not_compress", "checks": [{"name","ok","detail",
                  "offenders"}], "findings": [{"case", "messages", "scanned", "spam", "ham",
                  "unscanned", "error", "lost", "p50_s", "p99_s", "max_s", "reasons"}],
                  "notes", "messages": [{"id","kind","size","case","start_ns","end_ns",
                  "outcome","exit_code","reason","score","spamc_args"}],
                  "faults": [{"name","start_ns","end_ns","detail"}]}]}
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from spamdrill.budget.verify import UNBOUNDED, predict
from spamdrill.drills.runner import ScenarioResult, summarize


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def verdict_table(results: list[ScenarioResult]) -> Table:
    table = Table(title="spamdrill run (scale: production seconds per drill second; 1 = "
                        "production timings)")
    for col in ("scenario", "scale", "messages", "scanned", "unscanned", "lost", "p50 s",
                "p99 s", "max s", "budget s", "verdict"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in results:
        s = summarize(r.history.messages)
        table.add_row(r.name, f"{r.scale:.3g}", str(s["messages"]), str(s["scanned"]),
                      str(s["unscanned"]),
                      str(s["lost"] + s["error"]), _s(s["p50_s"]), _s(s["p99_s"]),
                      _s(s["max_s"]), f"{r.budget_s:.3g}",
                      "[green]pass[/green]" if r.verdict == "pass" else "[red]FAIL[/red]")
    return table


def case_table(r: ScenarioResult) -> Table:
    table = Table(title=f"{r.name}: worst case per combination (budget {r.budget_s:.3g} s)")
    for col in ("case", "n", "outcome", "predicted s", "max s", "reason", "vs budget"):
        table.add_column(col)
    args = {m.case: m.spamc_args for m in r.history.messages}
    for f in sorted(r.findings, key=lambda f: -(f["max_s"] or 0)):
        predicted = predict(f["case"].split(" ", 1)[0], args.get(f["case"], []))
        outcome = ", ".join(f"{f[o]} {o}" for o in ("spam", "ham", "unscanned", "error",
                                                     "lost") if f[o])
        crosses = f["max_s"] is None or f["max_s"] >= r.budget_s
        shown = "-" if predicted is None else (
            "unbounded" if predicted == UNBOUNDED else f"{predicted:.2f}")
        table.add_row(f["case"], str(f["messages"]), outcome, shown, _s(f["max_s"]),
                      ", ".join(f["reasons"]),
                      "[red]CROSSES[/red]" if crosses else "within")
    return table


def print_results(console: Console, results: list[ScenarioResult]) -> None:
    for r in results:
        if len(r.findings) > 1:
            console.print(case_table(r))
    console.print(verdict_table(results))
    for r in results:
        for c in r.checks:
            if not c.ok:
                who = f" (e.g. {', '.join(c.offenders[:3])})" if c.offenders else ""
                console.print(f"[red]✗[/red] {r.name}: {c.name}: {c.detail}{who}")
            elif c.name.startswith("budget model") and len(r.findings) == 1:
                console.print(f"  {r.name}: spamdrill budget {c.detail}")
        for note in r.notes:
            console.print(f"  {r.name}: {note}")
    console.print("Times are drill seconds; not compressed: spamc's whole-second retry "
                  "sleeps, scan time, process start-up, the kernel's TCP timers.",
                  style="dim")


def document(run_id: str, started: float, scale: float, results_dir: str,
             results: list[ScenarioResult]) -> dict[str, Any]:
    return {"run": run_id, "started": started, "scale": scale, "results_dir": results_dir,
            "scenarios": [r.public() for r in results]}
