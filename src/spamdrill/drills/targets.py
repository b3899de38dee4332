"""What a drill's spamc processes talk to, apart from what breaks it: the lab's spamd (or
whatever a fault put in front of it), protocol-level fakes that misbehave on command, or a
spamd the user names. A target only turns the load into jobs; faults are the nemesis'."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec

from spamdrill import corpus
from spamdrill.drills import fakes
from spamdrill.drills.control import RealLab
from spamdrill.drills.timing import expand_args
from spamdrill.errors import SpamdrillError
from spamdrill.load import schedule
from spamdrill.load.spamc import Job

Listener = Literal["refuse", "queue-full", "silent", "drip", "nonreader"]


@dataclass(frozen=True)
class LoadPlan:
    """The load, resolved for one drill: how many, which kinds, when, with what flags."""

    count: int
    kinds: tuple[str, ...]
    offsets: list[float]
    spamc_args: list[str]


@dataclass
class Prepared:
    """Jobs ready to run, and what must be closed after them."""

    jobs: list[Job]
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for c in self.closers:
            c()


class LabTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind",
                tag="lab"):
    """The lab's spamd: where its clients connect (``LabControl.client_endpoint``)."""

    needs_lab: bool = True

    def prepare(self, plan: LoadPlan, scale: float, lab: RealLab | None) -> Prepared:
        if lab is None:
            raise SpamdrillError("the lab target needs a lab")
        ep, state = lab.client_endpoint(), lab.state
        return lab_jobs(plan, (ep.host, ep.port), list(state.users), state.client_argv)


class FakeCase(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listeners: tuple[Listener, ...]
    flag_sets: tuple[tuple[str, ...], ...]
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


class FakesTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind",
                  tag="fakes"):
    """Every listener x every flag set, ``count`` messages each, all at once; each fake
    on its own loopback port. ``drip_interval``: production seconds per dripped byte."""

    cases: tuple[FakeCase, ...]
    drip_interval: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    needs_lab: bool = False

    def prepare(self, plan: LoadPlan, scale: float, lab: RealLab | None) -> Prepared:
        return fake_jobs(self, plan.kinds[0], scale)


class AddressTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                    tag_field="kind", tag="address"):
    """A spamd the user names (``spamdrill flood --target``): only what was named."""

    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    needs_lab: bool = False

    def prepare(self, plan: LoadPlan, scale: float, lab: RealLab | None) -> Prepared:
        return address_jobs(plan, self)


AnyTarget = LabTarget | FakesTarget | AddressTarget


def spamc_binary() -> str:
    return shutil.which("spamc") or "/usr/bin/spamc"


def new_seed() -> int:
    """Unique across runs: Bayes never saw these messages."""
    return int.from_bytes(os.urandom(3), "big")


def lab_jobs(plan: LoadPlan, endpoint: tuple[str, int], users: list[str],
             client_argv: Callable[[list[str]], list[str]]) -> Prepared:
    msgs = corpus.mix(list(plan.kinds), plan.count, seed=new_seed())
    host, port = endpoint
    jobs = []
    for i, m in enumerate(msgs):
        flags = [*plan.spamc_args, "-u", users[i % len(users)]]
        argv = client_argv([spamc_binary(), "-l", "-d", host, "-p", str(port), *flags])
        jobs.append(Job(m, argv, flags, plan.offsets[i]))
    return Prepared(jobs)


def address_jobs(plan: LoadPlan, target: AddressTarget) -> Prepared:
    msgs = corpus.mix(list(plan.kinds), plan.count, seed=new_seed())
    base = [spamc_binary(), "-l", "-d", target.host, "-p", str(target.port)]
    return Prepared([Job(m, [*base, *plan.spamc_args], list(plan.spamc_args), plan.offsets[i])
                     for i, m in enumerate(msgs)])


def fake_jobs(target: FakesTarget, kind: str, scale: float) -> Prepared:
    """One fake per listener and flag set; a peer that does not read only shows with a
    message bigger than the socket buffers, so it gets one (and ``-s`` to send it)."""
    seed, i = new_seed(), 0
    out = Prepared([])
    try:
        for block in target.cases:
            for listener in block.listeners:
                for flags in block.flag_sets:
                    fake = fakes.Fake(listener, drip_interval=target.drip_interval / scale)
                    out.closers.append(fake.close)
                    args = expand_args(list(flags), scale)
                    extra, msg_kind = (["-s", "1000000"], "large:400000") \
                        if listener == "nonreader" else ([], kind)
                    for _ in range(block.count):
                        msg = corpus.make(msg_kind, seed * 1000 + i)
                        i += 1
                        argv = [spamc_binary(), "-l", "-d", "127.0.0.1", "-p", str(fake.port),
                                *args, *extra]
                        out.jobs.append(Job(msg, argv, [*args, *extra], 0.0,
                                            f"{listener} {' '.join(args)}", listener))
    except BaseException:
        out.close()
        raise
    return out


def plan_offsets(kind: str, count: int, rate: float, step: int, interval: float,
                 ) -> list[float]:
    return schedule.offsets(kind, count, rate=rate, step=step, interval=interval)
