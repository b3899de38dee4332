"""Scenarios as data (TOML), typed and validated when parsed, sans-IO apart from
``load_all``: every fault kind, target, check and lab section has its own spec type, so a
typo is one line naming the file, the key and what is allowed, before any lab starts
(h11's events, which validate on construction). ``spamdrill list`` parses every scenario.

A scenario runs once, or once per variant (``Drill``: the scenario with one variant's lab
settings, checks and count applied).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec

from spamdrill import corpus
from spamdrill.checks import (
    CHECKS,
    CheckResult,
    CheckSpec,
    NothingLost,
    judge_condition,
    judge_safely,
)
from spamdrill.checks import AnyCheck as AnyCheck
from spamdrill.drills.e2e import PostfixTarget
from spamdrill.drills.nemesis import FAULT_KINDS, AnyFaultSpec
from spamdrill.drills.rspamd_target import RspamdTarget
from spamdrill.drills.targets import AddressTarget, FakesTarget, LabTarget
from spamdrill.drills.timing import DEFAULT_SCALE, Scale, bad_placeholders
from spamdrill.errors import SpamdrillError
from spamdrill.evidence import Evidence
from spamdrill.lab import config as lab_config
from spamdrill.vocab import Mode

__all__ = ["DEFAULT_SCALE", "Drill", "Scenario", "builtin_dir", "load_all", "parse"]

Seconds = Annotated[float, msgspec.Meta(gt=0)]
AnyTarget = LabTarget | FakesTarget | AddressTarget | PostfixTarget | RspamdTarget
TARGET_KINDS: tuple[str, ...] = tuple(str(t.__struct_config__.tag) for t in get_args(AnyTarget))


class Timing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``compress = false``: the outcome is a count of scans that fit in a timeout, and
    scan time does not compress, so the drill runs at production timings (with short
    production timeouts, as the field report's own tests did). ``calibrate``: this
    machine's scan time is measured first; counts (``load.fill``) and some checks'
    bounds derive from it. ``why`` says what the scenario keeps, for the report."""

    compress: bool = True
    calibrate: bool = False
    why: str = ""


class LoadSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``count`` messages, or, calibrated, ``fill`` times as many as one spamd child scans
    within spamc's -t on this machine."""

    count: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 1
    fill: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    kinds: tuple[str, ...] = ("ham",)
    schedule: Literal["burst", "rate", "staircase"] = "burst"
    rate: Seconds = 10.0  # messages per production second
    step: Annotated[int, msgspec.Meta(ge=1)] = 1
    interval: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    spamc_args: tuple[str, ...] = ("-t", "{t:100}")
    max_wait: Seconds = 900.0
    # the program under test: spamc, or spamdrill-spamc (spamc_args may add --deadline)
    client: Literal["spamc", "spamdrill-spamc"] = "spamc"

    def __post_init__(self) -> None:
        for kind in self.kinds:
            corpus.check_kind(kind)
        if not self.kinds:
            raise ValueError("kinds must name at least one message kind")
        bad = bad_placeholders(self.spamc_args)
        if bad:
            raise ValueError(f"spamc_args: {bad[0]!r} is not a placeholder ({{t:SECONDS}})")


Section = dict[str, Any]


def _check_sections(sections: dict[str, Section]) -> None:
    """Through the lab config's own validation; as ValueError, so the path is named."""
    for name, raw in sections.items():
        try:
            lab_config.check_overrides(name, raw)
        except SpamdrillError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise ValueError(exc.message + hint) from None


class Lab(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Lab settings this scenario changes, checked as a lab config's are."""

    spamd: Section = {}
    database: Section = {}
    dns: Section = {}
    topology: Section = {}
    maildrop: Section = {}
    delivery: Section = {}
    rspamd: Section = {}

    def __post_init__(self) -> None:
        _check_sections({n: getattr(self, n) for n in lab_config.SECTIONS})

    def sections(self) -> dict[str, Section]:
        return {n: getattr(self, n) for n in lab_config.SECTIONS}


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    spamd: Section = {}
    topology: Section = {}
    database: Section = {}
    dns: Section = {}
    checks: tuple[AnyCheck, ...] = ()
    conditions: tuple[AnyCheck, ...] = ()
    count: Annotated[int, msgspec.Meta(ge=1, le=10000)] | None = None

    def __post_init__(self) -> None:
        _check_sections({n: getattr(self, n) for n in ("spamd", "topology", "database",
                                                       "dns")})


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    hypothesis: str
    stands_for: str = ""
    mode: Mode | None = None  # the failure mode it stands for, if not its fault's
    timing: Timing = Timing()
    lab: Lab = Lab()
    load: LoadSpec = LoadSpec()
    target: AnyTarget = LabTarget()
    fault: AnyFaultSpec | None = None
    checks: tuple[AnyCheck, ...] = (NothingLost(),)
    # what must have happened for the hypothesis to be tested at all (the overload, the
    # refusals, the fault meeting the load); one that did not is an ``error`` verdict
    conditions: tuple[AnyCheck, ...] = ()
    # no condition to prove: the baseline, a healthy lab (``control``), or protocol-level
    # fakes, whose misbehaviour is their code's (``fakes`` target)
    control: bool = False
    variants: tuple[Variant, ...] = ()
    long: bool = False  # runs for minutes at production timings: only with --long
    source: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name):
            raise ValueError(f"name {self.name!r}: lower-case letters, digits and '-'")
        if self.load.fill is not None and not self.timing.calibrate:
            raise ValueError("load.fill needs [timing] calibrate = true")
        target = self.target.__struct_config__.tag
        if self.load.client != "spamc" and target in ("postfix", "fakes"):
            raise ValueError(f"load.client: a {target} target runs its own program "
                             "(fakes: set client in [[target.cases]])")
        if target == "rspamd" and self.lab.rspamd.get("enabled") is not True:
            raise ValueError("target rspamd needs [lab.rspamd] enabled = true")
        if self.fault is not None and self.fault.needs_hosts and \
                self.lab.topology.get("kind") != "hosts":
            raise ValueError(f"fault {self.fault.kind!r} needs [lab.topology] kind = "
                             '"hosts"')

    @property
    def needs_root(self) -> bool:
        """Network namespaces and nftables (the multi-host topology); a private Postfix."""
        return self.lab.topology.get("kind") == "hosts" or \
            isinstance(self.target, PostfixTarget)

    @property
    def needs_lab(self) -> bool:
        return self.target.needs_lab or self.fault is not None

    def failure_mode(self) -> Mode | None:
        return self.mode or (self.fault.failure_mode() if self.fault else None)

    def public(self) -> dict[str, str]:
        return {"name": self.name, "hypothesis": self.hypothesis,
                "stands_for": self.stands_for}

    def drills(self) -> list[Drill]:
        if not self.variants:
            return [Drill(self.name, self, self.lab.sections(), self.checks, None,
                          self.conditions)]
        out = []
        for v in self.variants:
            sections = self.lab.sections()
            for part in ("spamd", "topology", "database", "dns"):
                sections[part] = {**sections[part], **getattr(v, part)}
            out.append(Drill(f"{self.name}/{v.name}", self, sections,
                             (*self.checks, *v.checks), v.count,
                             (*self.conditions, *v.conditions)))
        return out


@dataclass(frozen=True)
class Drill:
    """One run: a scenario with one variant's settings applied."""

    name: str
    scenario: Scenario
    lab: dict[str, Section]
    checks: tuple[CheckSpec, ...]
    count: int | None
    conditions: tuple[CheckSpec, ...] = ()

    @property
    def needs_root(self) -> bool:
        return self.lab["topology"].get("kind") == "hosts" or self.scenario.needs_root

    def judge(self, ev: Evidence, scale: Scale) -> list[CheckResult]:
        """Conditions first (one that did not occur is ``error``), then the checks, their
        production-second arguments scaled to the drill's (sans-IO)."""
        return [judge_condition(c.scaled(scale.seconds), ev) for c in self.conditions] + \
            [judge_safely(c.scaled(scale.seconds), ev) for c in self.checks]


_DECODER = msgspec.convert


def _node(t: Any, raw: object) -> Any:
    """The type ``raw`` is decoded as: an optional's value, a tagged union's member."""
    while isinstance(t, msgspec.inspect.UnionType):
        members = [m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)]
        tagged = [m for m in members if isinstance(m, msgspec.inspect.StructType) and
                  isinstance(raw, dict) and m.tag_field and raw.get(m.tag_field) == m.tag]
        t = (tagged or members)[0] if len(members) > 1 else members[0]
    return t


def _declared(owner: Any, values: tuple[object, ...]) -> tuple[object, ...]:
    """``values`` in the order the Literal declares them (msgspec sorts them)."""
    stack = [get_type_hints(owner[0]).get(owner[1])] if owner else []
    while stack:
        hint = stack.pop()
        if get_origin(hint) is Literal and set(get_args(hint)) == set(values):
            return get_args(hint)
        stack.extend(get_args(hint))
    return values


def _choices(raw: object, path: str) -> tuple[str, ...]:
    """The values an enumerated key allows, read from the scenario's types (a Literal or
    an enum) along ``path`` (msgspec's ``$.target.cases[0].listeners[0]``)."""
    t: Any = msgspec.inspect.type_info(Scenario)
    owner: tuple[type, str] | None = None
    for part in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        t = _node(t, raw)
        if part[0] and isinstance(t, msgspec.inspect.StructType):
            owner = (t.cls, part[0])
            t = next((f.type for f in t.fields if f.encode_name == part[0]), None)
            raw = raw.get(part[0]) if isinstance(raw, dict) else None
        elif part[1] and hasattr(t, "item_type"):
            t = t.item_type
            raw = raw[int(part[1])] if isinstance(raw, list) and int(part[1]) < len(raw) \
                else None
        else:
            return ()
    t = _node(t, raw)
    if isinstance(t, msgspec.inspect.LiteralType):
        return tuple(str(v) for v in _declared(owner, t.values))
    if isinstance(t, msgspec.inspect.EnumType):
        return tuple(str(m.value) for m in t.cls)
    return ()


def _hint(message: str, raw: object = None) -> str:
    where = re.search(r"`(\$[^`]*)`$", message)
    choices = _choices(raw, where.group(1)) if where else ()
    if "Invalid enum value" in message and choices:
        return "known: " + ", ".join(choices)
    if re.search(r"`\$\.fault\.kind`", message):
        return "known fault kinds: " + ", ".join(FAULT_KINDS)
    if re.search(r"(checks|conditions)\[\d+\]\.kind`", message):
        return "known checks: " + ", ".join(CHECKS)
    if "`$.target.kind`" in message:
        return "known targets: " + ", ".join(TARGET_KINDS)
    return "see docs/SCENARIOS.md"


def parse(raw: dict[str, Any], source: str = "") -> Scenario:
    """A validated scenario, or one ``SpamdrillError`` naming the key and what is allowed."""
    where = source or f"scenario {raw.get('name', '?')!r}"
    try:
        sc = _DECODER(raw, Scenario)
    except msgspec.ValidationError as exc:
        raise SpamdrillError(f"{where}: {exc}", _hint(str(exc), raw)) from None
    return msgspec.structs.replace(sc, source=source)


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
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SpamdrillError(f"{path}: not valid TOML: {exc}") from None
            sc = parse(raw, str(path))
            out[sc.name] = sc
    return out
