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

JUnit (``spamdrill.render.junit``) fails as the exit status does: a finding that crosses a
budget is a ``<failure>`` (1), the drill's own trouble an ``<error>`` (3). Every view leads
with ``runmodel.headline``: what the run found, worst first.

JSON (``spamdrill run --json FILE``, ``-`` for stdout), ``"version": 3``::

  {"version": 3, "run": id, "started": epoch_s, "results_dir": path, "exit_status": n,
   "scenarios": [{"name", "hypothesis", "stands_for",
     "verdict": "confirmed"|"refuted"|"error", "finding": <worst finding>, "error",
     "scale", "budget_s",
     "timing": {"compressed", "why", "does_not_compress", "calibration":
                {"scan_s", "samples", "cores"}|null},
     "checks": [{"name", "status": "pass"|"fail"|"error", "ok", "detail", "offenders"}],
     "fault_evidence": [{"fault", "took_effect", "detail"}],
     "findings": [{"case", "mode": <vocab.Mode>|null, "finding", "fate",
                   "fires_first": <vocab.Layer>|null, "worst_s", "messages", "scanned",
                   "unscanned", "lost", "why", "crosses_budget"}],
     "notes", "messages": [{"id", "kind", "size", "start_ns", "end_ns",
                            "outcome": <vocab.Outcome>, "exit_code", "reason", "spamc_args",
                            "score", "case", "peer",
                            "fate": <vocab.Fate>|null (null: not through Postfix), "dsn",
                            "deferrals", "intact", "queue_id", "delays", "spamd",
                            "message_id", "worker"}],
     "faults": [{"name", "start_ns", "end_ns", "detail"}],
     "logs": [{"name", "path", "total_lines", "lines", "counts", "last"}],
     "lab_argv": {process: argv}}],
   "kind": "run"|"flood", "config": {"scale", "count", "lab_config", "scenario_dirs",
                                     "argv"},
   "environment": {"versions": {"spamd", "spamc", "mariadb", "maildrop", "postfix"},
                   "kernel", "tcp_syn_linear_timeouts", "cores", "python", "spamdrill",
                   "euid"}}

``logs``: excerpts of the lab's logs (``spamdrill.logexcerpt``), the whole tails kept at
``path`` in the run directory; ``lab_argv``: how each lab process was started (its flags).
``kind``, ``config``, ``environment``, ``logs`` and ``lab_argv`` came after the first
version-2 documents; readers treat them as optional. The types are ``spamdrill.runmodel``'s
(one declaration each, msgspec), which also migrates a version-2 document as it reads it
(there, a message not sent through Postfix has ``"fate": ""``).

Every view (this terminal summary, ``spamdrill.render``'s HTML, JUnit and CSV, history and
compare) renders the one model of a run, ``spamdrill.runmodel``, decoded from this document.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from spamdrill import runmodel
from spamdrill.drills.runner import ScenarioResult
from spamdrill.render.term import plain, safe
from spamdrill.runmodel import (
    Scenario,
    both_s,
    production_s,
    scale_shown,
    seconds_phrase,
)
from spamdrill.vocab import OUTCOMES, Fate, Finding, Verdict

VERDICT_STYLE: dict[str, str] = {Verdict.CONFIRMED: "green", Verdict.REFUTED: "red",
                                 Verdict.ERROR: "magenta"}


def _finding_style(finding: Finding) -> str:
    return "red" if finding.crosses_budget else (
        "yellow" if finding != Finding.WITHIN else "green")


def line(r: ScenarioResult) -> str:
    """One line per drill as it finishes, for logs that are not a terminal."""
    worst = seconds_phrase(r.worst_s, r.scale)
    return (f"{r.name}: {r.verdict}, worst {worst} (budget "
            f"{seconds_phrase(r.budget_s, r.scale, measured=False)}, scale "
            f"{scale_shown(r.scale)}), finding: {r.finding}"
            + (f"; error: {r.error}" if r.error else ""))


def verdict_table(scenarios: list[Scenario]) -> Table:
    table = Table(title="spamdrill run (scale: production seconds per drill second; 1 = "
                        "production timings; 'drill / prod': the drill's seconds, and "
                        "scaled back to production seconds)")
    for col in ("scenario", "scale", "messages", "scanned", "unscanned", "lost",
                "p50 s drill / prod", "max s drill / prod", "budget s drill / prod",
                "finding", "verdict"):
        table.add_column(col, justify="left" if col in ("scenario", "finding") else "right")
    for sc in scenarios:
        s = sc.summary
        vs, fs = VERDICT_STYLE.get(sc.verdict, "magenta"), _finding_style(sc.finding)
        table.add_row(safe(sc.name), scale_shown(sc.scale), str(s.messages), str(s.scanned),
                      str(s.count("unscanned")), str(s.count("lost") + s.count("error")),
                      both_s(s.p50_s, sc.scale), both_s(s.max_s, sc.scale),
                      _budget(sc.budget_s, sc.scale),
                      f"[{fs}]{safe(sc.finding)}[/{fs}]", f"[{vs}]{safe(sc.verdict)}[/{vs}]")
    return table


def _budget(budget_s: float, scale: float) -> str:
    """A limit as set (not a measurement): drill / production seconds."""
    return f"{budget_s:.3g}" if scale == 1 else f"{budget_s:.3g} / {budget_s * scale:.3g}"


def case_table(sc: Scenario) -> Table:
    table = Table(title=f"{safe(sc.name)}: worst case per combination (budget "
                        f"{seconds_phrase(sc.budget_s, sc.scale, measured=False)})")
    for col in ("case", "n", "outcome", "predicted s drill / prod", "max s drill / prod",
                "reason", "finding"):
        table.add_column(col)
    for case in sorted(sc.cases, key=lambda c: -(c.summary.max_s or 0)):
        s = case.summary
        outcome = ", ".join(f"{s.count(o)} {o}" for o in OUTCOMES if s.count(o))
        finding = case.finding.finding if case.finding else Finding.WITHIN
        style = _finding_style(finding)
        table.add_row(safe(case.name), str(s.messages), safe(outcome),
                      both_s(case.predicted_s, sc.scale), both_s(s.max_s, sc.scale),
                      safe(", ".join(s.reasons)), f"[{style}]{safe(finding)}[/{style}]")
    return table


def wrapper_table(sc: Scenario) -> Table:
    """End to end: each wrapper side by side, every message's fate as Postfix decided."""
    table = Table(title=f"{safe(sc.name)}: what each wrapper made of it (read from Postfix, "
                        "the Maildirs and the bounces)")
    for col in ("wrapper", "n", "delivered", "unscanned", "deferred first", "bounced",
                "lost", "duplicated", "finding", "a bounce said"):
        table.add_column(col, justify="left" if col in ("wrapper", "finding",
                                                       "a bounce said") else "right")
    rows = {f.case: f for f in sc.findings}
    cases: dict[str, list[runmodel.Message]] = {}
    for m in sc.messages:
        cases.setdefault(m.case, []).append(m)
    for case, ms in sorted(cases.items()):
        count = {f: sum(1 for m in ms if m.fate == f) for f in
                 (Fate.DELIVERED, Fate.DELIVERED_UNSCANNED, Fate.BOUNCED, Fate.LOST,
                  Fate.DUPLICATED)}
        bounce = next((m for m in ms if m.fate == Fate.BOUNCED), None)
        finding = rows[case].finding if case in rows else Finding.WITHIN
        style = _finding_style(finding)
        table.add_row(safe(case), str(len(ms)), str(count[Fate.DELIVERED]),
                      str(count[Fate.DELIVERED_UNSCANNED]),
                      str(sum(1 for m in ms if m.deferrals)), str(count[Fate.BOUNCED]),
                      str(count[Fate.LOST]), str(count[Fate.DUPLICATED]),
                      f"[{style}]{safe(finding)}[/{style}]",
                      safe(f"{bounce.dsn} {bounce.reason[:70]}") if bounce else "")
    return table


def _units(console: Console, sc: Scenario) -> None:
    """A check's seconds are the drill's own: said once per compressed drill."""
    if sc.scale != 1 and (sc.checks or sc.findings):
        console.print(f"  {safe(sc.name)}: seconds below are drill seconds (x "
                      f"{scale_shown(sc.scale)} for production)", highlight=False)


def _explain(console: Console, sc: Scenario) -> None:
    name = safe(sc.name)
    for fr in sc.fault_evidence:
        mark = "[green]✓[/green]" if fr.took_effect else "[magenta]?[/magenta]"
        console.print(f"{mark} {safe(sc.name)}: fault {safe(fr.name)}: {safe(fr.detail)}")
    for c in sc.checks:
        if not c.ok:
            who = f" (e.g. {safe(', '.join(c.offenders[:3]))})" if c.offenders else ""
            colour = "red" if c.status == "fail" else "magenta"
            console.print(f"[{colour}]✗[/{colour}] {name}: {safe(c.name)}: "
                          f"{safe(c.detail)}{who}")
        elif c.name.startswith("budget model") and len(sc.findings) == 1:
            console.print(f"  {name}: spamdrill budget {safe(c.detail)}")
    for f in sc.findings:
        if f.crosses_budget:
            console.print(f"[red]![/red] {name}: {safe(f.case)} {safe(f.finding)}: "
                          f"{safe(f.why)}")
    if sc.error:
        console.print(f"[magenta]✗[/magenta] {name}: could not run: {safe(sc.error)}")
    if not sc.timing.compressed:
        console.print(f"  {name}: production timings: {safe(sc.timing.why)}")
    for note in sc.notes:
        console.print(f"  {name}: {safe(note)}")


def print_run(console: Console, run: runmodel.Run) -> None:
    """The quick view of a run, from its model; what it found comes first."""
    style = "bold red" if run.headline.startswith("UNSAFE") else "bold"
    said = plain(run.headline)  # it names scenarios: a document's text, shown as text
    console.print(said, style=style, markup=False, highlight=False)
    for sc in run.scenarios:
        if any(m.peer == "postfix" for m in sc.messages):
            console.print(wrapper_table(sc))
        elif len(sc.findings) > 1:
            console.print(case_table(sc))
    console.print(verdict_table(run.scenarios))
    for sc in run.scenarios:
        _units(console, sc)
        _explain(console, sc)
    console.print("drill / prod: a compressed drill's seconds, and the same times scaled "
                  "back to production seconds (x scale); not compressed, so only about "
                  "right scaled: spamc's whole-second retry sleeps, scan time, process "
                  "start-up, the kernel's TCP timers. Verdict: did the hypothesis hold; "
                  "finding: what the system does in that mode.", style="dim")
    console.print(said, style=style, markup=False, highlight=False)


def predicted_vs_measured(results: list[ScenarioResult], predicted: dict[str, Any],
                          system: str) -> Table:
    """``run --etc``: for each failure mode a drill measured, the budget's prediction from
    the system's configs beside it (the drill's seconds times its scale: production
    seconds, less what does not compress)."""
    table = Table(title=f"{safe(system)}: the budget's prediction beside the drills' "
                        "measurement")
    for col in ("failure mode", "drill", "predicted production s", "predicted outcome",
                "measured production s (drill s x scale)", "finding"):
        table.add_column(col)
    for r in results:
        mode = r.scenario.failure_mode()
        p = predicted.get(str(mode)) if mode is not None else None
        if p is None:
            continue
        shown = "unbounded" if p.worst_s is None else f"{p.worst_s:.4g}"
        worst = "-" if r.worst_s is None else (f"{production_s(r.worst_s, r.scale)} "
                                               f"({r.worst_s:.2f} x {scale_shown(r.scale)})")
        table.add_row(safe(mode), safe(r.name), shown, safe(p.outcome), worst,
                      safe(r.finding))
    return table
