"""The distributed load as the drill runner sees it (``runner.Loader``), in the unpatched
``spamdrill flood`` process: it writes the master's spec, starts the Locust master (and,
for ``--workers N``, N local workers), relays the master's events, and reads back every
message's record, already on this machine's monotonic clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

import spamdrill
from spamdrill.dist import require_locust, tally
from spamdrill.dist.master import Spec
from spamdrill.dist.plan import MAX_PER_WORKER, Target
from spamdrill.drills.runner import Loader, LoadRequest
from spamdrill.drills.targets import AddressTarget, new_seed
from spamdrill.errors import SpamdrillError
from spamdrill.lab import netns
from spamdrill.load.spamc import LoadResult


@dataclass(frozen=True)
class Options:
    """``local_workers``: workers this command starts (``--workers N``); 0 for workers
    started elsewhere (``--master``), of which ``expect_workers`` must connect."""

    expect_workers: int
    local_workers: int = 0
    bind_host: str = "127.0.0.1"
    port: int = 0
    owned: bool = False
    csv_prefix: str = ""
    web: str = ""
    wait_workers_s: float = 60.0
    targets: tuple[Target, ...] = ()  # instead of the request's (the benchmark's listeners)


def child_env() -> dict[str, str]:
    """Children import this same spamdrill, wherever it was imported from."""
    src = str(Path(spamdrill.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": src + (os.pathsep + path if path else "")}


def targets_of(req: LoadRequest) -> tuple[Target, ...]:
    """The lab (from each of its client hosts in the hosts topology: worker k on the
    k-th, cycled), or the named spamd."""
    if req.lab is not None:
        ep, state = req.lab.client_endpoint(), req.lab.state
        net = state.network
        if net is None:
            return (Target("lab", ep.host, ep.port, tuple(state.users)),)
        return tuple(Target("lab", ep.host, ep.port, tuple(state.users), net.host(r).ns)
                     for r in netns.client_roles(net.clients))
    if isinstance(req.target, AddressTarget):
        return (Target("address", req.target.host, req.target.port),)
    raise SpamdrillError("a distributed flood goes to the lab or to --target HOST:PORT")


def spec_for(req: LoadRequest, opts: Options, run: str) -> Spec:
    plan = req.plan
    if len(plan.offsets) > MAX_PER_WORKER * opts.expect_workers:
        raise SpamdrillError(f"{len(plan.offsets)} messages over {opts.expect_workers} "
                             f"workers is more than {MAX_PER_WORKER} per worker")
    targets = opts.targets or targets_of(req)
    return Spec(run, new_seed(), plan.kinds, tuple(plan.offsets), tuple(plan.spamc_args),
                targets, req.max_wait, opts.expect_workers, opts.bind_host, opts.port,
                same_machine=targets[0].kind == "lab", csv_prefix=opts.csv_prefix,
                web=opts.web, wait_workers_s=opts.wait_workers_s)


def worker_argv(port: int, owned: bool) -> list[str]:
    return [sys.executable, "-m", "spamdrill.dist.worker", "--master-host", "127.0.0.1",
            "--master-port", str(port), *(["--i-own-this-target"] if owned else [])]


@contextlib.contextmanager
def _children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process started here is stopped on the way out, whatever happened."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@dataclass
class Session:
    """One distributed load, from the master's events."""

    req: LoadRequest
    opts: Options
    say: Callable[[str], None]
    procs: list[subprocess.Popen[bytes]]
    error: str = ""
    result_path: str = ""
    workers: list[subprocess.Popen[bytes]] | None = None

    def event(self, doc: dict[str, Any]) -> None:
        kind = doc.get("event")
        if kind == "listening":
            self.start_workers(int(doc["port"]))
        elif kind == "released":
            self.req.started(doc["at_mono_ns"] / 1e9)
            self.say(f"released on {doc['workers']} workers")
        elif kind == "progress":
            self.req.progress(int(doc["done"]), int(doc["total"]))
        elif kind == "error":
            self.error = doc["error"]
        elif kind == "result":
            self.result_path = doc["path"]
        else:
            self.say(_describe(doc))

    def start_workers(self, port: int) -> None:
        self.say(f"Locust master listening on {self.opts.bind_host}:{port}")
        cores = os.cpu_count() or 1
        if self.opts.local_workers > cores:
            self.say(f"{self.opts.local_workers} workers on {cores} cores: some release "
                     "late, waiting for a core (benchmarks/README.md, dist_skew.py)")
        for _ in range(self.opts.local_workers):
            self.procs.append(subprocess.Popen(worker_argv(port, self.opts.owned),
                                               env=child_env()))

    def follow(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.event(json.loads(line))


def _describe(doc: dict[str, Any]) -> str:
    fields = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in doc.items() if k != "event")
    return f"{doc.get('event')}: {fields}"


def read_result(path: Path) -> LoadResult:
    doc = json.loads(path.read_text())
    records = [tally.from_wire(r) for r in doc["records"]]
    notes = [*doc["notes"], f"Locust master's peak RSS {doc['peak_rss_kb'] / 1024:.0f} MB "
             f"with {len(records)} records"]
    return LoadResult(records, (doc["released"][0], doc["released"][1]), notes)


def loader(opts: Options, say: Callable[[str], None] = lambda text: None) -> Loader:
    """A ``runner.Loader`` that runs the load on Locust's master and workers."""
    require_locust()

    def load(req: LoadRequest) -> LoadResult:
        work = req.workdir / "dist"
        work.mkdir(parents=True, exist_ok=True)
        spec = spec_for(req, opts, work.name)
        (work / "spec.json").write_bytes(msgspec.json.encode(spec))
        out = work / "result.json"
        with _children() as procs:
            master = subprocess.Popen(
                [sys.executable, "-m", "spamdrill.dist.master", str(work / "spec.json"),
                 str(out)], stdout=subprocess.PIPE, env=child_env())
            procs.append(master)
            session = Session(req, opts, say, procs)
            assert master.stdout is not None
            session.follow(master.stdout)
            code = master.wait()
        if session.error or code != 0 or not out.exists():
            raise SpamdrillError(f"the distributed flood failed: "
                                 f"{session.error or f'master exited {code}'}")
        return read_result(out)

    return load
