"""A lab shaped like a system, and what its budget predicts, from one root (``--etc``):
the reader, the budget's limiting xfilter, and ``labconfig`` together, for the commands
that start a lab (``spamdrill lab up --etc``, ``spamdrill run --etc``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spamdrill.budget import inputs, model
from spamdrill.lab.config import LabConfig
from spamdrill.shaped import labconfig
from spamdrill.system import reader


@dataclass(frozen=True)
class SystemLab:
    config: LabConfig
    not_reproduced: list[str]
    predicted: dict[str, model.ModeResult]  # failure mode -> the budget's worst case
    spamc: str  # the limiting xfilter's spamc flags, as the budget shows them


def lab_of(etc: Path, base: LabConfig | None = None) -> SystemLab:
    """Read the system under ``etc``; the lab for it (spamd's flags, the limiting
    xfilter's spamc flags, the SQL settings, quotas, the wrapper) and the budget's
    prediction for each failure mode, to hold against what the drills measure."""
    system = reader.read(etc)
    table = inputs.measure_wrapper(system)
    setups = inputs.setups(system, wrapper=table)
    chosen = inputs.limiting(setups)
    config, missing = labconfig.lab_config(system, base, chosen, table)
    predicted = {r.mode: r for r in model.evaluate(setups[chosen])}
    return SystemLab(config, missing, predicted, setups[chosen].spamc.render())
