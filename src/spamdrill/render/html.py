"""The deep view of a run: one HTML file, per scenario its hypothesis, verdict and
findings; every message on a timeline (a density view for thousands) with the faults
shaded and ``-t`` and the budget drawn; latency over time and its distribution; outcome
counts; the checks and the messages that broke them; the lab's log excerpts; the budget's
prediction against the measurement; and the environment the run ran in. All from the
run's model (``spamdrill.runmodel``), like the terminal's quick view. The HTML is the
template's (``templates/run.html``); this module hands it plain values.
"""

from __future__ import annotations

import time
from typing import Any

from spamdrill.render import page
from spamdrill.render import plots as P
from spamdrill.render.page import badge, link
from spamdrill.runmodel import Run, Scenario, both_s, scale_shown, seconds_phrase, shown_s
from spamdrill.vocab import Finding

OFFENDERS_SHOWN = 20
EXIT_MEANS = {0: "every hypothesis confirmed, nothing crosses a budget",
              1: "a finding crosses a budget: mail bounces, is lost or duplicated",
              3: "a hypothesis refuted, or a drill in error"}


def _date(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "-"


Row = list[object]


def overview(run: Run) -> list[Row]:
    rows: list[Row] = []
    for sc in run.scenarios:
        s = sc.summary
        rows.append([link(f"scenario-{sc.name}", sc.name), badge(sc.verdict),
                     badge(sc.finding), s.messages, s.scanned, s.count("unscanned"),
                     s.count("lost") + s.count("error"), both_s(s.p50_s, sc.scale),
                     both_s(s.p99_s, sc.scale), both_s(s.max_s, sc.scale),
                     seconds_phrase(sc.budget_s, sc.scale, measured=False),
                     scale_shown(sc.scale)])
    return rows


def environment(run: Run) -> list[Row]:
    env = run.environment
    versions = env.get("versions", {}) if isinstance(env.get("versions"), dict) else {}
    rows: list[Row] = [[f"{name} version", v] for name, v in versions.items()]
    rows += [[k, env[k]] for k in ("kernel", "tcp_syn_linear_timeouts", "cores", "python",
                                   "spamdrill", "euid") if k in env]
    rows += [[f"config: {k}", "-" if v is None else v] for k, v in run.config.items()]
    return rows or [["environment", "not recorded (a document from before it was kept)"]]


def _facts(sc: Scenario) -> list[Row]:
    s, t = sc.summary, sc.timing
    rows: list[Row] = [
        ["scale", f"{scale_shown(sc.scale)} production seconds per drill second"
         + ("" if t.compressed else f" (production timings: {t.why})")],
        ["budget", seconds_phrase(sc.budget_s, sc.scale, measured=False)
         + " (maildrop's timeout)"],
        ["spamc -t", ", ".join(seconds_phrase(x, sc.scale, measured=False)
                               for x in sc.spamc_timeouts) or "-"],
        ["messages", f"{s.messages}: " + ", ".join(
            f"{n} {o}" for o, n in s.counts.items() if n)],
        ["p50 / p99 / max", " / ".join(seconds_phrase(x, sc.scale)
                                       for x in (s.p50_s, s.p99_s, s.max_s))],
        ["not compressed", ", ".join(t.does_not_compress)]]
    if t.calibration is not None:
        c = t.calibration
        rows.append(["calibration", f"one scan takes {c.scan_s:.3f} s on this machine "
                     f"(median of {len(c.samples)}: "
                     f"{', '.join(f'{x:.3f}' for x in c.samples)}; {c.cores:g} cores)"])
    return rows


def _findings(sc: Scenario) -> list[Row]:
    rows: list[Row] = []
    for case in sc.cases:
        f = case.finding
        rows.append([case.name, f.mode if f else "-",
                     badge(f.finding if f else Finding.WITHIN), f.fate if f else "-",
                     f.fires_first if f and f.fires_first else "-",
                     case.summary.messages, case.summary.scanned,
                     case.summary.count("unscanned"), case.summary.count("lost"),
                     both_s(case.summary.max_s, sc.scale), both_s(case.predicted_s, sc.scale),
                     f.why if f else ""])
    return rows


def _broken(sc: Scenario) -> list[dict[str, Any]]:
    """Per failed check, the messages that broke it (the first ``OFFENDERS_SHOWN``)."""
    out = []
    for c in sc.checks:
        who = sc.offenders(c)
        if c.ok or not who:
            continue
        rows = [[m.id, m.case or "all", m.outcome, shown_s(m.seconds),
                 shown_s(sc.rel_s(m.start_ns)), m.reason] for m in who[:OFFENDERS_SHOWN]]
        out.append({"name": c.name, "rows": rows, "more": len(c.offenders) - len(rows)})
    return out


def _logs(sc: Scenario) -> list[dict[str, Any]]:
    return [{"name": log.name, "total_lines": log.total_lines, "path": log.path,
             "trouble": "\n".join(f"{line}" + (f"   (x{n})" if n > 1 else "")
                                  for line, n in zip(log.lines, log.counts, strict=False)),
             "last": "\n".join(log.last)} for log in sc.logs]


def _flags(sc: Scenario) -> list[Row]:
    rows: list[Row] = [[f"{name} (lab)", " ".join(argv)]
                       for name, argv in sorted(sc.lab_argv.items())]
    rows += [[f"spamc, case {c.name}", " ".join(c.spamc_args)] for c in sc.cases]
    return rows


def scenario_section(sc: Scenario, key: str, plots: dict[str, Any]) -> dict[str, Any]:
    """What ``run.html`` shows of one scenario."""
    check = sc.model_check
    return {
        "name": sc.name, "key": key, "plots": len(plots), "verdict": badge(sc.verdict),
        "finding": badge(sc.finding), "hypothesis": sc.hypothesis,
        "stands_for": sc.stands_for, "error": sc.error, "facts": _facts(sc),
        "findings": _findings(sc),
        "model_check": None if check is None else {
            "status": badge(check.status), "name": check.name, "detail": check.detail},
        "checks": [[badge(c.status), c.name, c.detail,
                    f"{len(c.offenders)} message(s)" if c.offenders else ""]
                   for c in sc.checks],
        "broken": _broken(sc),
        "faults": [[f.name, "yes" if f.took_effect else "NO", f.detail]
                   for f in sc.fault_evidence],
        "notes": list(sc.notes), "logs": _logs(sc), "flags": _flags(sc),
        # checks judge the drill as it ran: their seconds are the drill's own
        "drill_s": sc.scale != 1}


def run_page(run: Run) -> str:
    title = f"spamdrill {run.kind} {run.run}"
    models: dict[str, Any] = {}
    sections = []
    for i, sc in enumerate(run.scenarios):
        key = f"s{i}"
        plots = P.scenario_plots(sc)
        models.update({f"{key}-{name}": p for name, p in plots.items()})
        sections.append(scenario_section(sc, key, plots))
    return page.render("run.html", title, models, run=run, started=_date(run.started),
                       exit_means=EXIT_MEANS.get(run.exit_status, ""),
                       unsafe=run.headline.startswith("UNSAFE"),
                       overview=overview(run), environment=environment(run),
                       scenarios=sections)


def compare_page(a: Run, b: Run, diff: Any) -> str:
    from spamdrill.render import compare

    return compare.page(a, b, diff)
