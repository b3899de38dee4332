"""One model of a run, sans-IO: the run document (``spamdrill.report``, ``"version": 3``)
as typed values, with what every view derives from it (each case's summary, the budget's
prediction, the messages that broke a check, the time axis). The terminal summary, the
HTML report, JUnit, CSV, the history and ``compare`` all read this model, so a number
means the same in each of them.

One declaration per field: the document is built from the drills' own records (the
history's ``MessageRecord`` and ``FaultWindow``, a fault's ``FaultReport``, the
``Calibration``; ``FindingRow``, declared here, is what ``drills.findings`` returns),
encoded and decoded by msgspec as these same types; outcome, fate, verdict and finding
are ``spamdrill.vocab``'s enums, so a word outside the vocabulary is refused when the
document is read.

Decoding validates: a file that is not a run document is a one-line error, not a
traceback in a renderer. Older documents are migrated as they are read (``migrate``):

- version 2 -> 3: a message that did not go through Postfix had ``"fate": ""``; version 3
  says ``null``. Fields added during version 2 (``kind``, ``config``, ``environment``,
  ``logs``, ``lab_argv``; a message's ``worker`` and end-to-end fields) have defaults, so
  the first version-2 documents open too.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import msgspec

from spamdrill.budget import spamc as spamc_model
from spamdrill.budget.verify import UNBOUNDED, predict
from spamdrill.checks import CheckResult
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import Calibration, FaultReport
from spamdrill.history import FaultWindow, IndexEntry, MessageRecord, ScenarioLine
from spamdrill.logexcerpt import Excerpt
from spamdrill.vocab import OUTCOMES, Fate, Finding, Layer, Mode, Outcome, Verdict

VERSION = 3

__all__ = ["OUTCOMES", "VERSION", "Calibration", "Case", "FaultEvidence",
           "FaultWindow", "FindingRow", "Message", "Run", "Scenario", "Summary", "Timing"]

# a message as the run document holds it: the history's own record
Message = MessageRecord
# what a fault showed of itself: ``{"fault", "took_effect", "detail"}``
FaultEvidence = FaultReport


class FindingRow(msgspec.Struct):
    """One case's finding (``drills.findings``), as the run document keeps it (``case``
    "all": the drill's messages were one case). ``crosses_budget`` is the finding's own
    (``vocab``): kept in the document for its readers, never read from it."""

    case: str
    mode: Mode | None
    finding: Finding
    fate: Fate
    fires_first: Layer | None
    worst_s: float | None
    messages: int
    scanned: int
    unscanned: int
    lost: int
    why: str
    crosses_budget: bool = False

    def __post_init__(self) -> None:
        self.crosses_budget = self.finding.crosses_budget


class Timing(msgspec.Struct, frozen=True, kw_only=True):
    compressed: bool
    why: str
    does_not_compress: list[str]
    calibration: Calibration | None


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """Counts per outcome and the latency percentiles (drill seconds) of some messages."""

    messages: int
    counts: dict[str, int]
    p50_s: float | None
    p99_s: float | None
    max_s: float | None
    reasons: list[str]

    @property
    def scanned(self) -> int:
        return self.counts[Outcome.SPAM] + self.counts[Outcome.HAM]

    def count(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)


def summarize(ms: list[Message]) -> Summary:
    """Every view's counts and percentiles of some messages: p99 is the sample at rank
    floor(0.99 n), the median the statistical one. Each of ``OUTCOMES`` is counted (zeros
    too), then any other outcome the messages had (end to end: deferred, bounced ...)."""
    times = sorted(s for m in ms if (s := m.seconds) is not None)

    def pct(p: float) -> float | None:
        return round(times[min(len(times) - 1, int(p * len(times)))], 3) if times else None

    counts = dict.fromkeys(map(str, OUTCOMES), 0)
    for m in ms:
        counts[str(m.outcome)] = counts.get(str(m.outcome), 0) + 1
    return Summary(messages=len(ms), counts=counts,
                   p50_s=round(statistics.median(times), 3) if times else None,
                   p99_s=pct(0.99), max_s=round(times[-1], 3) if times else None,
                   reasons=sorted({m.reason for m in ms if m.reason}))


class Case(msgspec.Struct, frozen=True, kw_only=True):
    """One combination a drill measured (a listener and its flags), with the budget's
    prediction for it (``spamdrill.budget.verify``; None: the model has none)."""

    name: str
    finding: FindingRow | None
    summary: Summary
    predicted_s: float | None  # inf: unbounded
    spamc_args: list[str]


class Scenario(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    name: str
    hypothesis: str
    stands_for: str
    verdict: Verdict
    finding: Finding
    error: str
    scale: float
    budget_s: float
    timing: Timing
    checks: list[CheckResult]
    fault_evidence: list[FaultEvidence]
    findings: list[FindingRow]
    notes: list[str]
    messages: list[Message]
    faults: list[FaultWindow]
    logs: list[Excerpt] = []
    lab_argv: dict[str, list[str]] = {}

    @cached_property
    def summary(self) -> Summary:
        return summarize(self.messages)

    @cached_property
    def t0_ns(self) -> int:
        """The time axis' zero: the first release (or fault, if one came first)."""
        starts = [m.start_ns for m in self.messages] + [f.start_ns for f in self.faults]
        return min(starts, default=0)

    @cached_property
    def end_ns(self) -> int:
        ends = [m.end_ns or m.start_ns for m in self.messages] + \
               [f.end_ns or f.start_ns for f in self.faults]
        return max(ends, default=self.t0_ns)

    def rel_s(self, ns: int | None) -> float | None:
        return None if ns is None else (ns - self.t0_ns) / 1e9

    @cached_property
    def by_id(self) -> dict[str, Message]:
        return {m.id: m for m in self.messages}

    def offenders(self, check: CheckResult) -> list[Message]:
        """The messages a check names, in the order it names them."""
        return [self.by_id[i] for i in check.offenders if i in self.by_id]

    @cached_property
    def spamc_timeouts(self) -> list[float]:
        """Each distinct ``-t`` the messages were sent with (drill seconds; 0: none)."""
        seen = {tuple(m.spamc_args) for m in self.messages}
        return sorted({_timeout(list(a)) for a in seen} - {0.0})

    @cached_property
    def cases(self) -> list[Case]:
        groups: dict[str, list[Message]] = {}
        for m in self.messages:
            groups.setdefault(m.case, []).append(m)
        rows = {f.case: f for f in self.findings}
        out = []
        for name, ms in sorted(groups.items()):
            row = rows.get(name or "all")
            mode = row.mode if row is not None else None
            out.append(Case(name=name or "all", finding=row, summary=summarize(ms),
                            predicted_s=_predicted(ms, mode), spamc_args=ms[0].spamc_args))
        return out

    @cached_property
    def model_check(self) -> CheckResult | None:
        """The ``model_agrees`` check, if the drill has one."""
        return next((c for c in self.checks if c.name.startswith("budget model")), None)


def _timeout(args: list[str]) -> float:
    try:
        return float(spamc_model.parse_args(args).timeout)
    except SpamdrillError:
        return 0.0


def _predicted(ms: list[Message], mode: str | None) -> float | None:
    try:
        return predict(ms[0].peer, ms[0].spamc_args, mode, count=len(ms))
    except SpamdrillError:
        return None


class Run(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    run: str
    started: float
    results_dir: str
    exit_status: int  # exit_status(scenarios) when the run was recorded
    scenarios: list[Scenario]
    kind: str = "run"  # run | flood
    config: dict[str, Any] = {}
    environment: dict[str, Any] = {}

    def scenario(self, name: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.name == name), None)

    @property
    def headline(self) -> str:
        return headline(self.scenarios)


def exit_status(scenarios: Sequence[Scenario]) -> int:
    """A run's exit status, from its model (the one definition): 3 when a hypothesis was
    refuted or a drill is in error (the drill, not the system), else 1 when a finding
    crosses a budget (mail bounced, lost or duplicated), else 0."""
    if any(sc.verdict != Verdict.CONFIRMED for sc in scenarios):
        return 3
    if any(sc.finding.crosses_budget for sc in scenarios):
        return 1
    return 0


def build(run_id: str, started: float, results_dir: str, scenarios: list[Scenario], *,
          kind: str = "run", config: dict[str, Any] | None = None,
          environment: dict[str, Any] | None = None) -> Run:
    """A run's document, its exit status decided from its scenarios."""
    return Run(version=VERSION, run=run_id, started=started, results_dir=results_dir,
               exit_status=exit_status(scenarios), scenarios=scenarios, kind=kind,
               config=config or {}, environment=environment or {})


_FOUND = {"loses mail": "mail lost", "duplicates mail": "mail duplicated",
          "bounces": "mail bounced", "delivers unscanned": "mail delivered unscanned",
          "defers": "mail deferred"}


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{len(names)} drill{'s' if len(names) != 1 else ''} ({shown})"


def headline(scenarios: list[Scenario]) -> str:
    """One sentence on what a run found, worst first: lost mail, bounces, then the rest
    (the drills' own trouble last). Every view leads with it, so none can reassure where
    another warns."""
    parts = []
    for finding, words in _FOUND.items():
        names = [sc.name for sc in scenarios if sc.finding == finding]
        if names:
            parts.append(f"{words} in {_names(names)}")
    within = [sc.name for sc in scenarios if sc.finding == "within"]
    unsafe = any(sc.finding in ("loses mail", "duplicates mail", "bounces")
                 for sc in scenarios)
    lead = ("UNSAFE: " if unsafe else
            "Nothing crosses a budget: " if parts or within else "No drill ran.")
    if within:
        parts.append(f"within budget in {len(within)}")
    for verdict, words in (("refuted", "hypothesis refuted"), ("error", "drill in error")):
        names = [sc.name for sc in scenarios if sc.verdict == verdict]
        if names:
            parts.append(f"{words} in {_names(names)} (the drill's own trouble: its "
                         "findings are not to be trusted)")
    if scenarios and not any(sc.verdict != "confirmed" for sc in scenarios):
        parts.append("every hypothesis confirmed")
    return lead + "; ".join(parts) + ("." if parts else "")


def to_builtins(run: Run) -> dict[str, Any]:
    """The document as JSON values (``--json``): what decoding its JSON gives."""
    doc: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(run))
    return doc


def encode(run: Run) -> str:
    """The document as ``report.json`` keeps it."""
    return json.dumps(to_builtins(run), indent=1)


class _Versioned(msgspec.Struct):
    version: int


def decode(data: bytes | str, source: str = "run document") -> Run:
    """A run document (report.json) as the model, migrated from an older version; a bad
    one is a one-line error."""
    try:
        version = msgspec.json.decode(data, type=_Versioned).version
        if version == VERSION:
            return msgspec.json.decode(data, type=Run)
        if version in MIGRATIONS:
            return msgspec.convert(migrate(msgspec.json.decode(data)), Run)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SpamdrillError(f"{source} is not a spamdrill run document: {exc}",
                             "give a report.json that spamdrill run wrote") from None
    raise SpamdrillError(f"{source} is run document version {version}; this spamdrill "
                         f"reads versions {', '.join(map(str, [*MIGRATIONS, VERSION]))}")


def _v2_scenario(sc: Any) -> Any:
    messages = sc.get("messages") if isinstance(sc, dict) else None
    if not isinstance(messages, list):
        return sc
    return {**sc, "messages": [{**m, "fate": m.get("fate") or None}
                               if isinstance(m, dict) else m for m in messages]}


def _from_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """2 -> 3: a message that did not go through Postfix had ``"fate": ""``; now null."""
    scenarios = doc.get("scenarios")
    if isinstance(scenarios, list):
        doc = {**doc, "scenarios": [_v2_scenario(sc) for sc in scenarios]}
    return {**doc, "version": 3}


# each older version's step to the next
MIGRATIONS = {2: _from_v2}


def migrate(doc: Any) -> Any:
    """An older document (JSON values) as the current version writes it, one step at a
    time; anything else as it is, for the decoder to refuse."""
    while isinstance(doc, dict) and doc.get("version") in MIGRATIONS:
        doc = MIGRATIONS[doc["version"]](doc)
    return doc


def from_document(doc: dict[str, Any]) -> Run:
    """The model of a document still in memory (JSON values)."""
    return decode(json.dumps(doc))


def index_entry(run: Run) -> IndexEntry:
    """What the runs database keeps of a run for ``spamdrill history``: the run's own
    fields and one line per scenario (its verdict, finding and summary)."""
    return IndexEntry(
        run=run.run, started=run.started, version=run.version, results_dir=run.results_dir,
        exit_status=run.exit_status, kind=run.kind, config=run.config,
        scenarios=[ScenarioLine(
            name=s.name, verdict=s.verdict, finding=s.finding, messages=s.summary.messages,
            scanned=s.summary.scanned, unscanned=s.summary.count("unscanned"),
            lost=s.summary.count("lost") + s.summary.count("error"), p50_s=s.summary.p50_s,
            p99_s=s.summary.p99_s, max_s=s.summary.max_s) for s in run.scenarios])


def _decimals(scale: float) -> int:
    """Decimals that production seconds carry: a drill second is shown to 0.01 s, so a
    second scaled by 33.3 is known to about a third of a second, not to 0.0001."""
    return max(0, 2 - math.ceil(math.log10(scale))) if scale > 1 else 2


def production_s(x: float | None, scale: float) -> str:
    """Drill seconds scaled back to production seconds, rounded to what was measured."""
    if x is None:
        return "-"
    if x == UNBOUNDED:
        return "unbounded"
    return f"{x * scale:.{_decimals(scale)}f}"


def scale_shown(scale: float) -> str:
    return f"{scale:.3g}"


def both_s(x: float | None, scale: float) -> str:
    """``drill / production`` seconds, for a column labelled so; one number when the
    drill ran at production timings."""
    if x is None or x == UNBOUNDED or scale == 1:
        return shown_s(x)
    return f"{shown_s(x)} / {production_s(x, scale)}"


def seconds_phrase(x: float | None, scale: float, measured: bool = True) -> str:
    """Seconds in running text: ``11.01 drill s (367 production s)``; a limit (not
    ``measured``) as set: ``9 drill s (300 production s)``."""
    if x is None or x == UNBOUNDED:
        return shown_s(x)
    drill = shown_s(x) if measured else f"{x:.3g}"
    if scale == 1:
        return f"{drill} s"
    prod = production_s(x, scale) if measured else f"{x * scale:.3g}"
    return f"{drill} drill s ({prod} production s)"


def shown_s(x: float | None) -> str:
    """Seconds as every view prints them: ``-`` for none, ``unbounded`` for inf."""
    if x is None:
        return "-"
    return "unbounded" if x == UNBOUNDED else f"{x:.2f}"
