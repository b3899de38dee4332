"""Scenarios as data (TOML), sans-IO: parsing, validation, and time compression.

Scenarios state their timings in *production* seconds (what the field report ran:
``spamc -t 100``, maildrop's 300 s). A drill runs them compressed by ``scale``
(production seconds per drill second; default 100/3, so ``-t 100`` runs as ``-t 3`` and the
300 s budget as 9 s). Whole-second values are rounded and never below 1 s, and some things
do not compress at all: spamc's ``--retry-sleep`` (whole seconds), scan time, process
start-up. Every result states its scale.

Placeholders in spamc args: ``{t:100}`` becomes the scaled value of 100 s.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from spamdrill.checks import CHECKS
from spamdrill.errors import SpamdrillError

DEFAULT_SCALE = 100 / 3
MAILDROP_BUDGET_S = 300.0  # maildrop/globaltimer.C, Debian's --enable-global-timeout
FAULTS = ("none", "spamd-down", "spamd-stop", "spamd-start", "fakes", "stalling-clients",
          "target", "db", "dns", "proxy", "packets")
# check arguments in production seconds, scaled like everything else
TIME_ARGS = {"max_s", "budget_s", "timeout_s", "tolerance_s"}
SPAMD_TIME_KEYS = {"timeout_tcp", "timeout_child", "rbl_timeout"}
_PLACEHOLDER = re.compile(r"\{t:(\d+(?:\.\d+)?)\}")


def scale_seconds(production_s: float, scale: float) -> int:
    """A whole-second flag value at this scale (spamc and spamd take integers), >= 1."""
    return max(1, round(production_s / scale))


def expand_args(args: list[str], scale: float) -> list[str]:
    return [_PLACEHOLDER.sub(lambda m: str(scale_seconds(float(m.group(1)), scale)), a)
            for a in args]


@dataclass(frozen=True)
class Variant:
    """One run of a scenario with some lab settings changed."""

    name: str
    spamd: dict[str, Any] = field(default_factory=dict)
    topology: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)  # besides the scenario's
    count: int | None = None  # messages, if not the scenario's


@dataclass(frozen=True)
class Scenario:
    name: str
    hypothesis: str
    stands_for: str
    lab: bool
    spamd: dict[str, Any]
    database: dict[str, Any]
    dns: dict[str, Any]
    topology: dict[str, Any]
    count: int
    kinds: list[str]
    schedule: str
    rate: float
    step: int
    interval_s: float
    spamc_args: list[str]
    max_wait_s: float
    fault: dict[str, Any]
    checks: list[dict[str, Any]]
    variants: list[Variant]
    cases: list[dict[str, Any]]  # for fault "fakes": listener x spamc args
    source: str = ""
    # False: the outcome is a count of scans that fit in a timeout, so the drill runs at
    # production timings (scan time does not compress: a compressed -t answers another
    # question). ``timing_why`` says what the scenario keeps instead.
    compress: bool = True
    timing_why: str = ""

    def effective_scale(self, scale: float) -> float:
        return scale if self.compress else 1.0

    @property
    def needs_root(self) -> bool:
        """Network namespaces and nftables (the multi-host topology)."""
        return self.topology.get("kind") == "hosts"

    def public(self) -> dict[str, str]:
        return {"name": self.name, "hypothesis": self.hypothesis,
                "stands_for": self.stands_for}


def _req(raw: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise SpamdrillError(f"{where}: missing '{key}'")
    if not isinstance(raw[key], kind):
        raise SpamdrillError(f"{where}: '{key}' must be {kind.__name__}")
    return raw[key]


def _checks(checks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    for c in checks:
        if c.get("kind") not in CHECKS:
            raise SpamdrillError(f"{where}: unknown check {c.get('kind')!r}",
                                 "known: " + ", ".join(CHECKS))
    return checks


def parse(raw: dict[str, Any], source: str = "") -> Scenario:
    where = f"scenario {raw.get('name', source)!r}"
    load = raw.get("load", {})
    fault = raw.get("fault", {"kind": "none"})
    if fault.get("kind", "none") not in FAULTS:
        raise SpamdrillError(f"{where}: unknown fault {fault.get('kind')!r}",
                             "known: " + ", ".join(FAULTS))
    checks = _checks(raw.get("checks", []), where)
    lab = raw.get("lab", {})
    timing = raw.get("timing", {})
    return Scenario(
        name=_req(raw, "name", str, where),
        hypothesis=_req(raw, "hypothesis", str, where),
        stands_for=raw.get("stands_for", ""),
        lab=bool(lab.get("enabled", True)),
        spamd=dict(lab.get("spamd", {})),
        database=dict(lab.get("database", {})),
        dns=dict(lab.get("dns", {})),
        topology=dict(lab.get("topology", {})),
        count=int(load.get("count", 1)),
        kinds=list(load.get("kinds", ["ham"])),
        schedule=str(load.get("schedule", "burst")),
        rate=float(load.get("rate", 10.0)),
        step=int(load.get("step", 1)),
        interval_s=float(load.get("interval", 1.0)),
        spamc_args=list(load.get("spamc_args", ["-t", "{t:100}"])),
        max_wait_s=float(load.get("max_wait", 900)),
        fault=dict(fault),
        checks=list(checks),
        variants=[Variant(str(v["name"]), dict(v.get("spamd", {})),
                          dict(v.get("topology", {})), _checks(list(v.get("checks", [])),
                                                               where),
                          int(v["count"]) if "count" in v else None)
                  for v in raw.get("variants", [])],
        cases=list(raw.get("cases", [])),
        source=source,
        compress=bool(timing.get("compress", True)),
        timing_why=str(timing.get("why", "")),
    )


def scaled_spamd(settings: dict[str, Any], scale: float) -> dict[str, Any]:
    return {k: scale_seconds(v, scale) if k in SPAMD_TIME_KEYS else v
            for k, v in settings.items()}


def scaled_check_args(check: dict[str, Any], scale: float) -> dict[str, Any]:
    return {k: (v / scale if k in TIME_ARGS else v) for k, v in check.items() if k != "kind"}


def builtin_dir() -> Path:
    return Path(str(resources.files("spamdrill.drills") / "data"))


def load_all(extra_dirs: list[Path] | None = None) -> dict[str, Scenario]:
    """Shipped scenarios, then the user's (a user file of the same name wins)."""
    out: dict[str, Scenario] = {}
    for d in [builtin_dir(), *(extra_dirs or [])]:
        if not d.is_dir():
            raise SpamdrillError(f"scenario directory {d} not found")
        for path in sorted(d.glob("*.toml")):
            try:
                raw = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise SpamdrillError(f"{path}: not valid TOML: {exc}") from None
            sc = parse(raw, str(path))
            out[sc.name] = sc
    return out
