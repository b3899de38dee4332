"""The deep view of a run: one HTML file, per scenario its hypothesis, verdict and
findings; every message on a timeline (a density view for thousands) with the faults
shaded and ``-t`` and the budget drawn; latency over time and its distribution; outcome
counts; the checks and the messages that broke them; the lab's log excerpts; the budget's
prediction against the measurement; and the environment the run ran in. All from the
run's model (``spamdrill.runmodel``), like the terminal's quick view.
"""

from __future__ import annotations

import time
from typing import Any

from spamdrill.render import plots as P
from spamdrill.render.page import badge, document, e, table
from spamdrill.runmodel import Run, Scenario, both_s, scale_shown, seconds_phrase, shown_s
from spamdrill.vocab import Finding

OFFENDERS_SHOWN = 20
EXIT_MEANS = {0: "every hypothesis confirmed, nothing crosses a budget",
              1: "a finding crosses a budget: mail bounces, is lost or duplicated",
              3: "a hypothesis refuted, or a drill in error"}


def _date(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "-"


def overview(run: Run) -> list[str]:
    rows = []
    for sc in run.scenarios:
        s = sc.summary
        rows.append([f'<a href="#scenario-{e(sc.name)}">{e(sc.name)}</a>', badge(sc.verdict),
                     badge(sc.finding), e(s.messages), e(s.scanned),
                     e(s.count("unscanned")), e(s.count("lost") + s.count("error")),
                     e(both_s(s.p50_s, sc.scale)), e(both_s(s.p99_s, sc.scale)),
                     e(both_s(s.max_s, sc.scale)),
                     e(seconds_phrase(sc.budget_s, sc.scale, measured=False)),
                     e(scale_shown(sc.scale))])
    return ["<h2>Scenarios</h2>",
            table(["scenario", "verdict", "finding", "messages", "scanned", "unscanned",
                   "lost", "p50 s drill / production", "p99 s drill / production",
                   "max s drill / production", "budget", "scale"], rows, raw=True),
            '<p class="note">drill / production: a compressed drill\'s seconds, and the '
            "same scaled back to production seconds (x scale, rounded to what was "
            "measured); a drill at production timings (scale 1) shows one number. "
            "Verdict: did the hypothesis hold; finding: what the system does in that "
            "failure mode against its budgets. Not compressed, so only about right "
            "scaled: spamc's whole-second retry sleeps, scan time, process start-up, the "
            "kernel's TCP timers.</p>"]


def environment(run: Run) -> list[str]:
    env = run.environment
    versions = env.get("versions", {}) if isinstance(env.get("versions"), dict) else {}
    rows = [[f"{name} version", v] for name, v in versions.items()]
    rows += [[k, env[k]] for k in ("kernel", "tcp_syn_linear_timeouts", "cores", "python",
                                   "spamdrill", "euid") if k in env]
    rows += [[f"config: {k}", "-" if v is None else v] for k, v in run.config.items()]
    if not rows:
        rows = [["environment", "not recorded (a document from before it was kept)"]]
    return ["<h2>Environment</h2>", table(["what", "value"], rows)]


def _facts(sc: Scenario) -> str:
    s, t = sc.summary, sc.timing
    rows = [["scale", f"{scale_shown(sc.scale)} production seconds per drill second"
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
                     f"{', '.join(f'{x:.3f}' for x in c.samples)}; {c.cores} cores)"])
    return table(["", ""], rows)


def _findings(sc: Scenario) -> str:
    rows = []
    for case in sc.cases:
        f = case.finding
        rows.append([e(case.name), e(f.mode if f else "-"),
                     badge(f.finding if f else Finding.WITHIN), e(f.fate if f else "-"),
                     e(f.fires_first if f and f.fires_first else "-"),
                     e(case.summary.messages), e(case.summary.scanned),
                     e(case.summary.count("unscanned")), e(case.summary.count("lost")),
                     e(both_s(case.summary.max_s, sc.scale)),
                     e(both_s(case.predicted_s, sc.scale)), e(f.why if f else "")])
    return table(["case", "mode", "finding", "fate", "fires first", "n", "scanned",
                  "unscanned", "lost", "worst s drill / production",
                  "predicted s drill / production", "why"], rows, raw=True)


def _checks(sc: Scenario) -> str:
    parts = []
    rows = [[badge(c.status), e(c.name), e(c.detail),
             e(f"{len(c.offenders)} message(s)" if c.offenders else "")] for c in sc.checks]
    # checks judge the drill as it ran: their seconds are the drill's own
    unit = "check (drill s)" if sc.scale != 1 else "check"
    parts.append(table(["status", unit, "detail (drill s)" if sc.scale != 1 else "detail",
                        "broke it"], rows, raw=True))
    for c in sc.checks:
        who = sc.offenders(c)
        if c.ok or not who:
            continue
        shown = [[m.id, m.case or "all", m.outcome, shown_s(m.seconds),
                  shown_s(sc.rel_s(m.start_ns)), m.reason] for m in who[:OFFENDERS_SHOWN]]
        more = len(c.offenders) - len(shown)
        parts.append(f"<p>Messages that broke <b>{e(c.name)}</b>"
                     + (f" (first {len(shown)}; {more} more)" if more > 0 else "") + ":</p>")
        parts.append(table(["message", "case", "outcome", "drill s", "released at drill s",
                            "reason"], shown))
    return "\n".join(parts)


def _logs(sc: Scenario) -> str:
    if not sc.logs:
        return '<p class="note">No lab logs kept (a drill against fakes runs no lab).</p>'
    parts = []
    for log in sc.logs:
        trouble = "\n".join(f"{line}" + (f"   (x{n})" if n > 1 else "")
                            for line, n in zip(log.lines, log.counts, strict=False))
        parts.append(
            f"<details open><summary><b>{e(log.name)}</b>: {e(log.total_lines)} lines, "
            f"kept at <code>{e(log.path)}</code></summary>"
            f"<p class=\"note\">Trouble (each kind once, with how often):</p>"
            f"<pre>{e(trouble or '(none)')}</pre><p class=\"note\">How it ended:</p>"
            f"<pre>{e(chr(10).join(log.last))}</pre></details>")
    return "\n".join(parts)


def _flags(sc: Scenario) -> str:
    rows = [[f"{name} (lab)", " ".join(argv)] for name, argv in sorted(sc.lab_argv.items())]
    rows += [[f"spamc, case {c.name}", " ".join(c.spamc_args)] for c in sc.cases]
    return table(["process", "flags"], rows)


def _budget(sc: Scenario) -> str:
    check = sc.model_check
    if check is None:
        return ('<p class="note">This drill has no model_agrees check; predictions per '
                "case are in the findings table where the model has one.</p>")
    return (f"<p>{badge(check.status)} {e(check.name)}: {e(check.detail)}</p>"
            '<p class="note">Predicted by <code>spamdrill budget</code>\'s model for the '
            "flags each case's messages were sent with (spamdrill.budget.verify).</p>")


def scenario_section(sc: Scenario, key: str, plots: dict[str, Any]) -> list[str]:
    def plot(name: str) -> str:
        return f"<!--plot:{key}-{name}-->" if name in plots else ""

    out = [f'<section class="scenario" id="scenario-{e(sc.name)}" data-scenario="{e(sc.name)}"'
           f' data-plots="{len(plots)}">',
           f"<h2>{e(sc.name)} {badge(sc.verdict)} {badge(sc.finding)}</h2>",
           f"<p><b>Hypothesis:</b> {e(sc.hypothesis)}</p>",
           f"<p><b>Stands for:</b> {e(sc.stands_for)}</p>"]
    if sc.error:
        out.append(f'<p class="worse"><b>Could not run:</b> {e(sc.error)}</p>')
    out += [_facts(sc), "<h3>Findings per case</h3>", _findings(sc),
            "<h3>Every message</h3>", plot("timeline"),
            "<h3>Latency</h3>", plot("latency"), plot("distribution"),
            "<h3>Outcomes</h3>", plot("outcomes"),
            "<h3>The budget's prediction against the measurement</h3>", _budget(sc),
            plot("budget"), "<h3>Checks</h3>", _checks(sc), "<h3>Fault evidence</h3>",
            table(["fault", "took effect", "evidence"],
                  [[f.fault, "yes" if f.took_effect else "NO", f.detail]
                   for f in sc.fault_evidence]) if sc.fault_evidence
            else '<p class="note">No fault: this drill measures the system as it is.</p>',
            "<h3>Notes</h3>",
            "<ul>" + "".join(f"<li>{e(n)}</li>" for n in sc.notes) + "</ul>",
            "<h3>Log excerpts</h3>", _logs(sc), "<h3>Flags</h3>", _flags(sc), "</section>"]
    return out


def run_page(run: Run) -> str:
    title = f"spamdrill {run.kind} {run.run}"
    body = [f"<h1>{e(title)}</h1>",
            f'<p class="found {"worse" if run.headline.startswith("UNSAFE") else ""}">'
            f"<b>{e(run.headline)}</b></p>",
            f"<p>Started {e(_date(run.started))}; exit status {e(run.exit_status)}: "
            f"{e(EXIT_MEANS.get(run.exit_status, ''))}. Results: "
            f"<code>{e(run.results_dir)}</code></p>"]
    body += overview(run)
    body += environment(run)
    models: dict[str, Any] = {}
    for i, sc in enumerate(run.scenarios):
        key = f"s{i}"
        plots = P.scenario_plots(sc)
        models.update({f"{key}-{name}": p for name, p in plots.items()})
        body += scenario_section(sc, key, plots)
    return document(title, body, models)


def compare_page(a: Run, b: Run, diff: Any) -> str:
    from spamdrill.render import compare

    return compare.page(a, b, diff)
