"""What a drill's messages go to, apart from what breaks it: the lab's spamd (or whatever a
fault put in front of it), protocol-level fakes that misbehave on command, a spamd the user
names, or (``spamdrill.drills.e2e``) the lab's own Postfix. A target turns the plan into a
``Load`` that runs and then says what became of every message; faults are the nemesis'."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Protocol

import msgspec

from spamdrill import corpus
from spamdrill.drills import fakes
from spamdrill.drills.control import ClientSide
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.history import MessageRecord
from spamdrill.load import schedule
from spamdrill.load import spamc as spamc_load
from spamdrill.load.spamc import Job

Listener = Literal["refuse", "queue-full", "silent", "drip", "nonreader"]


@dataclass(frozen=True)
class LoadPlan:
    """The load, resolved for one drill: how many, which kinds, when, with what flags."""

    count: int
    kinds: tuple[str, ...]
    offsets: list[float]
    spamc_args: list[str]
    max_wait: float = 900.0  # drill seconds after the last release
    wrappers: tuple[Path, ...] = ()  # end to end: wrappers under test besides the target's
    client: str = "spamc"  # or spamdrill-spamc


Started = Callable[[float], None]
Tick = Callable[[int, int], None]


class Load(Protocol):
    """A load ready to go: ``run`` sends every message (``started`` hears the release's
    monotonic time: the nemesis' clock); ``records``, called once the fault is healed,
    says what became of each; ``close`` releases what the load holds."""

    def run(self, workdir: Path, started: Started, progress: Tick) -> None: ...
    def records(self) -> list[MessageRecord]: ...
    def notes(self) -> list[str]: ...
    def close(self) -> None: ...


@dataclass
class SpamcLoad:
    """Real spamc processes (``spamdrill.load.spamc``): their fate is known when each exits."""

    jobs: list[Job]
    max_wait: float = 900.0
    closers: list[Callable[[], None]] = field(default_factory=list)
    _records: list[MessageRecord] = field(default_factory=list)

    def run(self, workdir: Path, started: Started, progress: Tick) -> None:
        self._records = spamc_load.run(self.jobs, workdir / "spamc", max_wait=self.max_wait,
                                       started=started, progress=progress).records

    def records(self) -> list[MessageRecord]:
        return self._records

    def notes(self) -> list[str]:
        return []

    def close(self) -> None:
        for c in self.closers:
            c()



class LabTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind",
                tag="lab"):
    """The lab's spamd: where its clients connect (``LabControl.client_endpoint``)."""

    needs_lab: bool = True

    def prepare(self, plan: LoadPlan, scale: Scale, lab: ClientSide | None) -> Load:
        if lab is None:
            raise SpamdrillError("the lab target needs a lab")
        ep, state = lab.client_endpoint(), lab.state
        return lab_jobs(plan, (ep.host, ep.port), list(state.users), state.client_argv)


class FakeCase(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listeners: tuple[Listener, ...]
    flag_sets: tuple[tuple[str, ...], ...]
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    # the program under test: spamc, or spamdrill-spamc (its flag sets may add --deadline)
    client: Literal["spamc", "spamdrill-spamc"] = "spamc"


class FakesTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind",
                  tag="fakes"):
    """Every listener x every flag set, ``count`` messages each, all at once; each fake
    on its own loopback port. ``drip_interval``: production seconds per dripped byte."""

    cases: tuple[FakeCase, ...]
    drip_interval: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    needs_lab: bool = False

    def prepare(self, plan: LoadPlan, scale: Scale, lab: ClientSide | None) -> Load:
        return fake_jobs(self, plan, scale)


LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def off_loopback(host: str) -> bool:
    """A load goes to loopback unless the user says they own the target: a flood of up to
    10,000 spamc is an attack on anyone else's spamd. Names other than localhost are not
    resolved here (the machine's resolver is never asked): they count as off loopback."""
    import ipaddress

    if host in LOOPBACK_NAMES:
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class AddressTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                    tag_field="kind", tag="address"):
    """A spamd the user names (``spamdrill flood --target``): only what was named, and only
    on loopback unless ``i_own_this_target``."""

    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    i_own_this_target: bool = False
    needs_lab: bool = False

    def __post_init__(self) -> None:
        if off_loopback(self.host) and not self.i_own_this_target:
            raise ValueError(f"target {self.host} is not on loopback: flood only a spamd "
                             "you own (i_own_this_target = true)")

    def prepare(self, plan: LoadPlan, scale: Scale, lab: ClientSide | None) -> Load:
        return address_jobs(plan, self)


AnyTarget = LabTarget | FakesTarget | AddressTarget


def spamc_binary() -> str:
    return shutil.which("spamc") or "/usr/bin/spamc"


def program_argv(client: str) -> list[str]:
    """How a drill starts the program under test: spamdrill-spamc as its launcher starts
    it (``python -IS``, the package put on sys.path), the way a mail host runs it. With
    ``site`` (``python -m``) a burst of 15 took 1.4 s to start on two busy cores, against
    0.3 s so: the drill measured the interpreter's site, not the check. Unlike the
    launcher, a package that cannot load is an error here, never a pass-through that a
    drill would count as failing open."""
    if client == "spamdrill-spamc":
        import sys

        from spamdrill.launchers import package_parent

        code = (f"import sys; sys.path.insert(0, {package_parent()!r}); "
                "from spamdrill.spamc.main import entry; entry()")
        return [sys.executable, "-I", "-S", "-c", code]
    return [spamc_binary()]


def new_seed() -> int:
    """Unique across runs: Bayes never saw these messages."""
    return int.from_bytes(os.urandom(3), "big")


def lab_jobs(plan: LoadPlan, endpoint: tuple[str, int], users: list[str],
             client_argv: Callable[[list[str]], list[str]]) -> SpamcLoad:
    msgs = corpus.mix(list(plan.kinds), plan.count, seed=new_seed())
    host, port = endpoint
    jobs = []
    for i, m in enumerate(msgs):
        flags = [*plan.spamc_args, "-u", users[i % len(users)]]
        argv = client_argv([*program_argv(plan.client), "-l", "-d", host, "-p", str(port),
                            *flags])
        jobs.append(Job(m, argv, flags, plan.offsets[i]))
    return SpamcLoad(jobs, plan.max_wait)


def address_jobs(plan: LoadPlan, target: AddressTarget) -> SpamcLoad:
    msgs = corpus.mix(list(plan.kinds), plan.count, seed=new_seed())
    base = [*program_argv(plan.client), "-l", "-d", target.host, "-p", str(target.port)]
    return SpamcLoad([Job(m, [*base, *plan.spamc_args], list(plan.spamc_args),
                          plan.offsets[i]) for i, m in enumerate(msgs)], plan.max_wait)


def fake_jobs(target: FakesTarget, plan: LoadPlan, scale: Scale) -> SpamcLoad:
    """One fake per listener and flag set; a peer that does not read only shows with a
    message bigger than the socket buffers, so it gets one (and ``-s`` to send it)."""
    seed, i, kind = new_seed(), 0, plan.kinds[0]
    out = SpamcLoad([], plan.max_wait)
    try:
        for block in target.cases:
            for listener in block.listeners:
                for flags in block.flag_sets:
                    fake = fakes.Fake(listener, drip_interval=scale.seconds(target.drip_interval))
                    out.closers.append(fake.close)
                    args = scale.expand(list(flags))
                    extra, msg_kind = (["-s", "1000000"], "large:400000") \
                        if listener == "nonreader" else ([], kind)
                    for _ in range(block.count):
                        msg = corpus.make(msg_kind, seed * 1000 + i)
                        i += 1
                        argv = [*program_argv(block.client), "-l", "-d", "127.0.0.1", "-p",
                                str(fake.port), *args, *extra]
                        who = "" if block.client == "spamc" else f"{block.client} "
                        out.jobs.append(Job(msg, argv, [*args, *extra], 0.0,
                                            f"{listener} {who}{' '.join(args)}", listener))
    except BaseException:
        out.close()
        raise
    return out


def plan_offsets(kind: str, count: int, rate: float, step: int, interval: float,
                 ) -> list[float]:
    return schedule.offsets(kind, count, rate=rate, step=step, interval=interval)
