"""The Locust master of a distributed flood, as a child of ``spamdrill flood``.

A ``MasterRunner`` (``Environment.create_master_runner(bind_host, port)``) finds workers
as Locust finds them (their ``client_ready``; ``runner.clients``), and is told a worker is
gone as Locust tells it: by ``quit``, or when its heartbeat has been missing for
``HEARTBEAT_LIVENESS`` seconds and ``heartbeat_worker`` sets it ``missing``
(``locust/runners.py``, 2.47). Port 0 binds a free port (``rpc/zmqrpc.py``:
``bind_to_random_port``), which ``--workers N`` uses. Locust's statistics, fed by the workers' reports, go to CSV files
(``stats.StatsCSVFileWriter``, as ``locust --headless --csv`` writes them) and, if asked,
to its web UI (``Environment.create_web_ui``).

The run, all on spamdrill's custom messages (``dist.messages``): wait for the expected
workers; ping each a few times (``clock``); send each its share (``plan``); when every
living worker holds its spamc, pick a release instant and send it to each on its own
clock; gather records (``tally``) until every worker is done or dead; write the result.

    python -m spamdrill.dist.master SPEC.json RESULT.json

Its stdout is JSON lines for ``spamdrill flood`` (``{"event": ...}``).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from spamdrill.dist import clock, plan, tally
from spamdrill.dist import messages as m

PINGS = 8
READY_POLL_S = 0.01  # the release follows the last worker's ready closely
RUN_POLL_S = 0.25  # while spamc run, the master wakes rarely: it shares their CPU


class Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What ``spamdrill flood`` asks of its master."""

    run: str
    seed: int
    kinds: tuple[str, ...]
    offsets: tuple[float, ...]
    spamc_args: tuple[str, ...]
    targets: tuple[plan.Target, ...]
    max_wait: float
    expect_workers: int
    bind_host: str = "127.0.0.1"
    port: int = 0
    same_machine: bool = False  # the lab target: every worker on this machine
    csv_prefix: str = ""
    web: str = ""  # HOST:PORT of Locust's web UI, or none
    wait_workers_s: float = 60.0
    ready_s: float = 300.0  # spawning 10,000 spamc on 2 cores takes a while


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Failed(Exception):
    """The run could not go on (too few workers, a lab worker elsewhere)."""


class Master:
    def __init__(self, runner: Any, spec: Spec, gevent: Any) -> None:
        self.runner, self.spec, self.gevent = runner, spec, gevent
        self.here = clock.Pair(time.monotonic_ns(), time.time_ns())
        self.names: dict[str, str] = {}  # Locust client id -> spamdrill's worker name
        self.samples: dict[str, list[clock.Sample]] = {}
        self.hosts: dict[str, tuple[str, str]] = {}
        self.offsets: dict[str, clock.Offset] = {}
        self.pairs: dict[str, clock.Pair] = {}
        self.releases: dict[str, clock.WorkerRelease] = {}
        self.heard: dict[str, float] = {}
        self.greeted: set[str] = set()
        self.answered: dict[str, int] = {}  # the latest ping each worker answered
        self.tally = tally.Tally()
        self.release_real = 0
        for kind, handler in ((m.HELLO, self.on_hello), (m.PONG, self.on_pong), (m.READY, self.on_ready),
                              (m.RECORDS, self.on_records), (m.DONE, self.on_done),
                              (m.FAILED, self.on_failed)):
            runner.register_message(kind, handler)
        runner.environment.events.heartbeat_sent.add_listener(self.on_heartbeat)

    # -- messages (Locust calls these in its receiving greenlet)
    def on_heartbeat(self, client_id: str, timestamp: float, **_: Any) -> None:
        self.heard[client_id] = timestamp

    def on_hello(self, environment: Any, msg: Any, **_: Any) -> None:
        self.greeted.add(msg.node_id)

    def on_pong(self, environment: Any, msg: Any, **_: Any) -> None:
        now = time.time_ns()
        d = msg.data
        self.samples.setdefault(msg.node_id, []).append(
            clock.Sample(d["sent_ns"], d["peer_ns"], now))
        self.answered[msg.node_id] = max(self.answered.get(msg.node_id, -1), d["seq"])
        self.hosts[msg.node_id] = (d["host"], d["machine"])

    def on_ready(self, environment: Any, msg: Any, **_: Any) -> None:
        self.heard[msg.node_id] = time.time()
        self.pairs[msg.node_id] = clock.Pair(*msg.data["pair"])

    def _shift(self, cid: str) -> clock.Shift:
        return clock.Shift(self.pairs[cid], self.offsets[cid], self.here)

    def on_records(self, environment: Any, msg: Any, **_: Any) -> None:
        cid = msg.node_id
        self.heard[cid] = time.time()
        if cid in self.names and cid in self.pairs:
            self.tally.add(self.names[cid], [tally.from_wire(r) for r in msg.data["records"]],
                           self._shift(cid))

    def on_done(self, environment: Any, msg: Any, **_: Any) -> None:
        cid = msg.node_id
        if cid not in self.names or cid not in self.pairs:
            return
        first, last = msg.data["released"]
        shift = self._shift(cid)
        self.releases[cid] = clock.WorkerRelease(self.names[cid], shift(first), shift(last),
                                                 self.offsets[cid])
        self.tally.finish(self.names[cid])
        emit("done", worker=self.names[cid])

    def on_failed(self, environment: Any, msg: Any, **_: Any) -> None:
        name = self.names.get(msg.node_id, msg.node_id)
        if name in self.tally.workers:
            self.tally.die(name, f"worker {name} failed: {msg.data['error']}")
        emit("failed", worker=name, error=msg.data["error"])

    # -- the run
    def alive(self, cid: str) -> bool:
        c = self.runner.clients.get(cid)
        return c is not None and c.state != "missing"

    def wait_workers(self) -> list[str]:
        deadline = time.monotonic() + self.spec.wait_workers_s
        while time.monotonic() < deadline:
            ids = [cid for cid in self.runner.clients if self.alive(cid) and
                   cid in self.greeted]
            if len(ids) >= self.spec.expect_workers:
                return sorted(ids, key=self.runner.get_worker_index)[:self.spec.expect_workers]
            self.gevent.sleep(READY_POLL_S)
        raise Failed(f"{len(self.runner.clients)} of {self.spec.expect_workers} workers "
                     f"connected within {self.spec.wait_workers_s:g} s")

    def sync(self, ids: list[str]) -> None:
        """Ping every worker, one ping at a time each (a lost ping costs one second, not
        the run), and name it."""
        for seq in range(PINGS):
            for cid in ids:
                self.runner.send_message(m.PING, {"seq": seq, "sent_ns": time.time_ns()}, cid)
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline and \
                    any(self.answered.get(cid, -1) < seq for cid in ids):
                self.gevent.sleep(0.002)
        for cid in ids:
            if not self.samples.get(cid):
                raise Failed(f"worker {cid} did not answer its clock pings")
            self.offsets[cid] = clock.estimate(self.samples[cid])
            host, _ = self.hosts[cid]
            self.names[cid] = f"w{self.runner.get_worker_index(cid)}@{host}"
            o = self.offsets[cid]
            emit("worker", worker=self.names[cid], offset_ms=o.offset_ns / clock.MS,
                 rtt_ms=o.rtt_ns / clock.MS)

    def check_machines(self, ids: list[str]) -> None:
        here = m.machine_id()
        away = [self.names[cid] for cid in ids if self.hosts[cid][1] != here]
        if self.spec.same_machine and away:
            raise Failed(f"the lab target needs every worker on the lab's machine; "
                         f"{', '.join(away)} run elsewhere (flood a --target instead)")

    def send_plans(self, ids: list[str]) -> None:
        s = self.spec
        for cid, share in zip(ids, plan.shares(
                s.run, s.seed, s.kinds, list(s.offsets), s.spamc_args, list(s.targets),
                s.max_wait, len(ids)), strict=True):
            self.tally.expect(self.names[cid], share)
            self.runner.send_message(m.PLAN, msgspec.to_builtins(share), cid)

    def died(self, cid: str) -> str:
        """Which worker, and when: between its last sign of life and Locust's verdict,
        in seconds from the release."""
        name = self.names[cid]
        if not self.release_real:
            return f"worker {name} died before the release"
        now = (time.time_ns() - self.release_real) / 1e9
        last = self.heard.get(cid)
        since = "" if last is None else \
            f"between {(last * 1e9 - self.release_real) / 1e9:+.1f} s and "
        return (f"worker {name} died {since}{now:+.1f} s after the release (its last "
                "heartbeat; then Locust set it missing)")

    def watch(self, ids: list[str]) -> None:
        for cid in ids:
            name = self.names[cid]
            if name in self.tally.pending() and not self.alive(cid):
                why = self.died(cid)
                self.tally.die(name, why)
                emit("died", worker=name, why=why)

    def wait_until(self, ids: list[str], done: Any, seconds: float, poll_s: float) -> None:
        deadline = time.monotonic() + seconds
        last_progress = 0.0
        while time.monotonic() < deadline and not done():
            self.watch(ids)
            if time.monotonic() - last_progress > 1:
                last_progress = time.monotonic()
                emit("progress", done=self.runner.stats.total.num_requests,
                     total=len(self.spec.offsets))
            self.gevent.sleep(poll_s)
        self.watch(ids)

    def release(self, ids: list[str]) -> int:
        living = [cid for cid in ids if self.names[cid] in self.tally.pending()]
        at = clock.release_at(time.time_ns(), [self.offsets[c] for c in living])
        for cid in living:
            self.runner.send_message(m.RELEASE, {"at_real_ns": self.offsets[cid].to_worker(at)},
                                     cid)
        self.release_real = at
        release_mono = self.here.to_mono(at)
        emit("released", at_mono_ns=release_mono, workers=len(living))
        return release_mono

    def run(self) -> dict[str, Any]:
        ids = self.wait_workers()
        self.sync(ids)
        self.check_machines(ids)
        self.send_plans(ids)
        self.wait_until(ids, lambda: all(
            c in self.pairs for c in ids if self.names[c] in self.tally.pending()),
            self.spec.ready_s, READY_POLL_S)
        release_mono = self.release(ids)
        span = max(self.spec.offsets, default=0.0) + self.spec.max_wait + 60
        self.wait_until(ids, lambda: not self.tally.pending(), span, RUN_POLL_S)
        return self.result(release_mono)

    def result(self, release_mono: int) -> dict[str, Any]:
        releases = sorted(self.releases.values(), key=lambda r: r.name)
        records = self.tally.records(release_mono)
        return {
            "records": [tally.to_wire(r) for r in records],
            "release_ns": release_mono,
            "released": [min((r.first_ns for r in releases), default=release_mono),
                         max((r.last_ns for r in releases), default=release_mono)],
            "notes": clock.describe(releases, release_mono) + self.tally.notes(),
            "workers": [{"name": r.name, "offset_ns": r.offset.offset_ns,
                         "rtt_ns": r.offset.rtt_ns, "late_ns": r.late_ns(release_mono),
                         "own_ns": r.own_ns, "first_ns": r.first_ns, "last_ns": r.last_ns}
                        for r in releases],
            "dead": {n: w.died for n, w in self.tally.workers.items() if w.died},
        }


def _stats(env: Any, spec: Spec, gevent: Any) -> tuple[Any, Any]:
    """Locust's headless CSV (and its web UI if asked), fed by the workers' reports."""
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

    writer = greenlet = None
    if spec.csv_prefix:
        writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, spec.csv_prefix,
                                    full_history=True)
        greenlet = gevent.spawn(writer)
    if spec.web:
        host, _, port = spec.web.rpartition(":")
        env.create_web_ui(host=host, port=int(port), stats_csv_writer=writer)
        emit("web", url=f"http://{spec.web}/")
    return writer, greenlet


def _close_stats(writer: Any, greenlet: Any, gevent: Any) -> None:
    if writer is not None:
        gevent.sleep(1.5)  # one more CSV write after the workers' last reports
        greenlet.kill()
        writer.close_files()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = msgspec.json.decode(Path(args[0]).read_bytes(), type=Spec)
    import gevent
    from locust.env import Environment  # gevent's monkey-patching happens here

    env = Environment(user_classes=[])
    runner = env.create_master_runner(spec.bind_host, spec.port)
    emit("listening", port=runner.server.port)
    writer, greenlet = _stats(env, spec, gevent)
    master = Master(runner, spec, gevent)
    try:
        doc = master.run()
    except Failed as exc:
        emit("error", error=str(exc))
        return 2
    finally:
        _close_stats(writer, greenlet, gevent)
        runner.quit()
    doc["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(args[1]).write_text(json.dumps(doc))
    emit("result", path=args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
