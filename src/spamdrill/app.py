"""What ``spamdrill run`` and ``flood`` do, apart from the command line: choose the drills,
run them, and keep the run, whose model decides the exit status (``runmodel.exit_status``).

Everything comes in as arguments (no click context, no globals, no consoles): the command
line parses and prints, and tests call these functions as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spamdrill.errors import SpamdrillError

if TYPE_CHECKING:
    from spamdrill.drills.runner import ScenarioResult
    from spamdrill.drills.scenario import Scenario
    from spamdrill.lab.config import LabConfig
    from spamdrill.runmodel import Run

Progress = Callable[[str], None]
Tick = Callable[[str, int, int], None]

# options that say where a run's outputs go, not how it ran: not kept in its config
NOT_CONFIG = ("html", "junit", "csv_dir", "json_path", "results_dir")


def select(known: Mapping[str, Scenario], names: Iterable[str], *, long_: bool, root: bool,
           progress: Progress) -> list[Scenario]:
    """The scenarios a run runs: those named (all without names). An unknown name is an
    error; one that runs for minutes (without ``long_``) or needs root (without ``root``)
    is refused when named, and skipped, saying so through ``progress``, in a full run."""
    names = list(names)
    for name in names:
        if name not in known:
            raise SpamdrillError(f"unknown scenario {name!r}",
                                 "see: spamdrill list (known: " + ", ".join(known) + ")")
    chosen = [known[n] for n in names] if names else list(known.values())
    explicit = bool(names)
    lengthy = [s.name for s in chosen if s.long and not long_]
    if explicit and lengthy:
        raise SpamdrillError(f"{', '.join(lengthy)} run(s) for minutes at production "
                             "timings", "add --long")
    for name in lengthy:
        progress(f"{name}: minutes at production timings; skipped (add --long)")
    chosen = [s for s in chosen if long_ or not s.long]
    if root:
        return chosen
    needing = [s.name for s in chosen if s.needs_root]
    if explicit and needing:
        raise SpamdrillError(f"{', '.join(needing)} need(s) root (network namespaces, "
                             "nftables, a private Postfix)", "run as root, or leave them out")
    for name in needing:
        progress(f"{name}: needs root (network namespaces, nftables, Postfix); skipped")
    return [s for s in chosen if not s.needs_root]


@dataclass(frozen=True)
class DrillSettings:
    """How each drill of a run runs: its time scale, the lab's config, a message count
    instead of the scenario's, the wrappers under test, the system's spamc flags."""

    scale: float
    base: LabConfig
    count: int | None = None
    wrappers: tuple[Path, ...] = ()
    system_spamc: tuple[str, ...] | None = None


def run_drills(chosen: list[Scenario], settings: DrillSettings, run_dir: Path,
               ticker: Callable[[str], Tick],
               done: Callable[[ScenarioResult], None]) -> list[ScenarioResult]:
    """Each drill of each scenario, one after the other, in ``run_dir``; each drill's
    history is appended to the run's history.jsonl as it finishes (a killed run keeps
    what it did). ``ticker(name)`` gives the drill's progress callback; ``done`` hears
    each result."""
    from spamdrill.drills import runner

    results = []
    for sc in chosen:
        for drill in sc.drills():
            r = runner.run_drill(drill, scale=settings.scale, base=settings.base,
                                 workdir=run_dir / "work" / drill.name.replace("/", "_"),
                                 progress=ticker(drill.name), count=settings.count,
                                 wrappers=settings.wrappers,
                                 system_spamc=settings.system_spamc)
            results.append(r)
            r.history.to_jsonl(run_dir / "history.jsonl", r.name)
            done(r)
    return results


def config_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """How a run was asked for, as the run document keeps it: the command's options as
    JSON values, without those that only say where outputs go."""
    return {k: [str(x) for x in v] if isinstance(v, tuple) else
            (str(v) if isinstance(v, Path) else v) for k, v in params.items()
            if k not in NOT_CONFIG}


def record(results_dir: Path, run_id: str, started: float, results: list[ScenarioResult],
           kind: str, config: dict[str, Any]) -> Run:
    """Keep a finished run (``run`` or ``flood``): its document in its directory and its
    index entry in the runs database; returns the run's model, read back from the
    document as written, which every view renders (as ``spamdrill report`` will, later).
    Its exit status is ``runmodel.exit_status``, decided when the document is built."""
    from spamdrill import environment, history, runmodel

    run_dir = results_dir / run_id
    built = runmodel.build(run_id, started, str(run_dir), [r.document() for r in results],
                           kind=kind, config=config, environment=environment.collect())
    text = runmodel.encode(built)
    (run_dir / "report.json").write_text(text)
    if kind != "run":  # run writes its history drill by drill (run_drills)
        for r in results:
            r.history.to_jsonl(run_dir / "history.jsonl", r.name)
    model = runmodel.decode(text, str(run_dir / "report.json"))
    history.store(results_dir / "runs.sqlite", runmodel.index_entry(model),
                  {r.name: r.history for r in results})
    return model
