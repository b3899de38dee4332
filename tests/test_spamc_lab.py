"""spamdrill-spamc against the real programs: the same output bytes and exit status as the
real spamc (/usr/bin/spamc) with the lab's real spamd, for each flag combination people
use in an xfilter; and against the protocol fakes, its worst case is its --deadline plus
MARGIN, where spamc's is a multiple of -t or unbounded.

spamd's answers carry a date and a random MIME boundary, so two scans of one message differ
there: the real-spamd comparison replaces just those (and each message is scanned once
before, so Bayes' autolearn has learned it: "autolearn=ham" the first time, "unavailable"
after); the replay comparison sends both
programs spamd's recorded answer and compares every byte.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from spamdrill import corpus
from spamdrill.drills.fakes import Fake
from spamdrill.lab import lab as lab_ops
from spamdrill.proto import spamd_wire

if TYPE_CHECKING:
    from spamdrill.drills.runner import ScenarioResult

pytestmark = pytest.mark.lab

SPAMC = shutil.which("spamc") or "/usr/bin/spamc"
OURS = [sys.executable, "-m", "spamdrill.spamc"]
MARGIN = 1.0  # s past --deadline: Python's start-up and exit on a loaded machine included
MESSAGES = {"ham": corpus.ham(11), "gtube": corpus.gtube(12), "multipart": corpus.multipart(13)}
COMBOS = [[], ["-c"], ["-R"], ["-r"], ["-y"], ["-E"], ["-x"], ["-x", "-X"], ["-c", "-E"],
          ["-R", "-E"], ["-r", "-E"], ["-y", "-x"], ["-s", "900"], ["-u", "bob"],
          ["-t", "30", "-n", "5", "--connect-retries", "2", "--retry-sleep", "1",
           "--filter-retries", "2", "--filter-retry-sleep", "1"]]
VOLATILE = [(re.compile(rb"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}"),
             b"DATE"), (re.compile(rb"=_[0-9A-F]{8}\.[0-9A-F]{8}"), b"=_BOUNDARY")]


def run(cmd: list[str], message: bytes, timeout: float = 120
        ) -> tuple[bytes, int, float, bytes]:
    t = time.monotonic()
    done = subprocess.run(cmd, input=message, capture_output=True, timeout=timeout)
    return done.stdout, done.returncode, time.monotonic() - t, done.stderr


def stable(out: bytes) -> bytes:
    for pattern, text in VOLATILE:
        out = pattern.sub(text, out)
    return out


def where(state: lab_ops.LabState) -> list[str]:
    return ["-d", state.spamd.host, "-p", str(state.spamd.port), "-u", "alice"]


@pytest.fixture(scope="module")
def learned(lab: lab_ops.LabState) -> lab_ops.LabState:
    for message in MESSAGES.values():
        for user in ("alice", "bob"):
            run([SPAMC, *where(lab), "-u", user], message)
    return lab


@pytest.mark.parametrize("flags", COMBOS, ids=lambda f: " ".join(f) or "plain")
def test_same_bytes_and_status_as_spamc_with_the_real_spamd(
        learned: lab_ops.LabState, flags: list[str]) -> None:
    lab = learned
    for name, message in MESSAGES.items():
        theirs = run([SPAMC, *where(lab), *flags], message)
        ours = run([*OURS, "--deadline", "60", *where(lab), *flags], message)
        assert ours[1] == theirs[1], (name, theirs, ours)
        assert stable(ours[0]) == stable(theirs[0]), name
        if flags[:1] not in (["-r"], ["-y"]):  # these print nothing for ham
            assert theirs[0], name


def test_a_host_list_with_a_refusing_first_host_and_h(learned: lab_ops.LabState) -> None:
    """-d a,b: a refused connect moves to the next host at once ("innocent"); -H rotates
    the list; both programs end up scanning."""
    # nothing listens on 127.0.0.2 at spamd's port: refused at once
    for extra in ([], ["-H"]):
        flags = ["-d", f"127.0.0.2,{learned.spamd.host}", "-p", str(learned.spamd.port), "-u",
                 "alice", *extra]
        theirs = run([SPAMC, *flags], MESSAGES["gtube"])
        ours = run([*OURS, *flags], MESSAGES["gtube"])
        assert (ours[1], stable(ours[0])) == (theirs[1], stable(theirs[0]))
        assert b"X-Spam-Flag: YES" in ours[0]


@pytest.mark.parametrize("flags", [[], ["-x"], ["-x", "-X"], ["-E"], ["-c"], ["-R"], ["-y"],
                                   ["-x", "-c"]], ids=lambda f: " ".join(f) or "plain")
def test_same_failure_as_spamc_when_spamd_refuses(flags: list[str]) -> None:
    fake = Fake("refuse")
    try:
        common = ["-d", "127.0.0.1", "-p", str(fake.port), "--retry-sleep", "0",
                  "--connect-retries", "1", *flags]
        theirs = run([SPAMC, *common], MESSAGES["ham"])
        ours = run([*OURS, *common], MESSAGES["ham"])
        assert (ours[0], ours[1]) == (theirs[0], theirs[1])
    finally:
        fake.close()


class Replay:
    """A spamd that answers every request with one recorded answer of the real spamd."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                got = b""
                while not spamd_wire.request_complete(got):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                conn.sendall(self.answer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self.sock.close()
        self.thread.join(5)


def recorded(state: lab_ops.LabState, verb: str, message: bytes) -> bytes:
    with socket.create_connection((state.spamd.host, state.spamd.port), timeout=60) as s:
        s.sendall(spamd_wire.build_request(verb, {"User": "alice"}, message))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.fixture(scope="module")
def answers(lab: lab_ops.LabState) -> Iterator[dict[tuple[str, str], bytes]]:
    yield {(verb, name): recorded(lab, verb, message) for name, message in MESSAGES.items()
           for verb in ("PROCESS", "CHECK", "REPORT", "REPORT_IFSPAM", "SYMBOLS")}


@pytest.mark.parametrize(("verb", "flags"), [("PROCESS", []), ("PROCESS", ["-E"]),
                                             ("CHECK", ["-c"]), ("REPORT", ["-R"]),
                                             ("REPORT_IFSPAM", ["-r"]), ("SYMBOLS", ["-y"])])
def test_every_byte_the_same_as_spamc_on_spamds_recorded_answers(
        answers: dict[tuple[str, str], bytes], verb: str, flags: list[str]) -> None:
    for name, message in MESSAGES.items():
        replay = Replay(answers[(verb, name)])
        try:
            common = ["-d", "127.0.0.1", "-p", str(replay.port), "-u", "alice", *flags]
            theirs = run([SPAMC, *common], message)
            ours = run([*OURS, *common], message)
        finally:
            replay.close()
        assert (ours[0], ours[1]) == (theirs[0], theirs[1]), name


FAKE_CASES = [("drip", ["-t", "2"], 0.5), ("silent", ["-t", "2", "--filter-retries", "3"], 0),
              ("queue-full", ["-t", "2"], 0), ("refuse", ["--retry-sleep", "2"], 0),
              ("nonreader", ["-t", "2", "-s", "4000000"], 0), ("empty", [], 0)]


@pytest.mark.parametrize(("kind", "flags", "interval"), FAKE_CASES, ids=[c[0] for c in FAKE_CASES])
def test_its_worst_case_against_each_fake_is_the_deadline_plus_margin(
        kind: str, flags: list[str], interval: float) -> None:
    """Fail open with the message byte for byte within --deadline + MARGIN; with -x
    nothing and a non-zero status (maildrop keeps the message), as quickly."""
    deadline = 3.0
    message = corpus.large(5, 3_000_000) if kind == "nonreader" else MESSAGES["ham"]
    fake = Fake(kind, drip_interval=interval or 0.5)
    try:
        for extra in ([], ["-x"]):
            out, code, took, err = run([*OURS, f"--deadline={deadline:g}", "-l", "-d",
                                        "127.0.0.1", "-p", str(fake.port), *flags, *extra],
                                       message, timeout=60)
            assert took <= deadline + MARGIN, (kind, extra, took, err)
            if extra:
                assert (out, code != 0) == (b"", True), (kind, code, err)
            else:
                assert (out == message, code) == (True, 0), (kind, len(out), code, err)
            assert err.count(b"\n") == 1 and b"Traceback" not in err, err
    finally:
        fake.close()


def test_the_spamc_timeouts_drill_with_spamdrill_spamc_side_by_side(tmp_path: Path) -> None:
    """The shipped spamc-timeouts drill, its fakes met by spamc and by spamdrill-spamc
    --deadline at once (scale 100: -t 1, deadline 2 s): spamc's worst cases are
    multiples of -t or unbounded; spamdrill-spamc's are within its deadline plus MARGIN,
    every message comes back whole (unscanned), and the budget's prediction for each of
    its cases (its own core on a clock only the waits move) agrees with the measurement."""
    import tomllib

    from spamdrill.drills import runner
    from spamdrill.drills.scenario import builtin_dir, parse
    from spamdrill.lab.config import LabConfig

    raw = tomllib.loads((builtin_dir() / "spamc-timeouts.toml").read_text())
    raw["target"]["cases"].append({
        "listeners": ["refuse", "queue-full", "silent", "drip", "nonreader"],
        "flag_sets": [["-t", "{t:100}", "--deadline", "{t:200}"],
                      ["-t", "{t:100}", "--filter-retries", "2", "--deadline", "{t:300}"]],
        "count": 1, "client": "spamdrill-spamc"})
    [r] = runner.run_scenario(parse(raw, "spamc-timeouts + spamdrill-spamc"), scale=100,
                              base=LabConfig(), workdir=tmp_path)
    checks = {c.name: c for c in r.checks}
    assert checks["nothing lost"].ok and checks["all came back unscanned (fail-open)"].ok
    model = checks["budget model agrees with the measurements"]
    assert model.ok, model.detail
    worst = {f.case: f.worst_s for f in r.findings}
    ours = {case: s for case, s in worst.items() if "spamdrill-spamc" in case}
    assert len(ours) == 10, worst
    for case, seconds in ours.items():
        deadline = 3 if "--filter-retries" in case else 2
        assert seconds is not None and seconds <= deadline + MARGIN, (case, seconds)
    assert worst["drip -t 1"] > 2 + MARGIN  # spamc, beside it: no bound
    assert worst["queue-full -t 1"] > 2 + MARGIN


def test_the_message_that_met_the_deadline_is_kept_with_its_story(tmp_path: Path) -> None:
    import json

    keep = tmp_path / "slow"
    keep.mkdir(mode=0o700)
    fake = Fake("drip", drip_interval=0.3)
    try:
        message = MESSAGES["ham"]
        out, code, took, err = run([*OURS, "--deadline=1.5", f"--keep-slow={keep}", "-l",
                                    "-d", "127.0.0.1", "-p", str(fake.port), "-t", "1"],
                                   message)
    finally:
        fake.close()
    assert (out, code) == (message, 0) and took <= 1.5 + MARGIN
    [eml] = keep.glob("*.eml")
    assert eml.read_bytes() == message and (eml.stat().st_mode & 0o777) == 0o600
    story = json.loads(eml.with_suffix(".json").read_text())
    assert "at the deadline" in story["stopped"] and story["message_id"].startswith("<")
    assert story["events"][0]["result"] == "ok" and story["bytes_sent"] > len(message)
    assert 0 < story["bytes_received"] < 100 and story["deadline_s"] == 1.5
    assert story["user"]  # the effective user, as spamc sends it without -u
    assert f"kept={keep}/" in err.decode()


def test_the_spamd_dropped_drill_run_with_spamdrill_spamc(tmp_path: Path) -> None:
    """spamd's port dropped on its host (root: the hosts topology, nftables): spamc's
    connects wait out 3 x -t + 2 s (the shipped drill, tests/test_topology.py); the same
    drill with spamdrill-spamc --deadline ends within the deadline plus MARGIN, every
    message back whole, as the budget predicts (its core on a clock)."""
    import os
    import tomllib

    from spamdrill.drills import runner
    from spamdrill.drills.scenario import DEFAULT_SCALE, builtin_dir, parse
    from spamdrill.drills.timing import Scale
    from spamdrill.lab.config import LabConfig

    if os.geteuid() != 0:
        pytest.skip("the hosts topology needs root")
    raw = tomllib.loads((builtin_dir() / "spamd-dropped.toml").read_text())
    raw["load"]["client"] = "spamdrill-spamc"
    raw["load"]["spamc_args"] = ["-t", "{t:100}", "--deadline", "{t:150}"]
    [r] = runner.run_scenario(parse(raw, "spamd-dropped with spamdrill-spamc"),
                              scale=DEFAULT_SCALE, base=LabConfig(), workdir=tmp_path)
    checks = {c.name: c for c in r.checks}
    assert checks["budget model agrees with the measurements"].ok, checks
    assert checks["nothing lost"].ok and checks["all came back unscanned (fail-open)"].ok
    deadline = Scale(DEFAULT_SCALE).whole_seconds(150)  # -t 3, --deadline 4: spamc's is 11 s
    assert all((m.seconds or 0) <= deadline + MARGIN for m in r.history.messages), \
        [(m.seconds, m.reason) for m in r.history.messages]
    assert all(m.reason == "connect-timeout" for m in r.history.messages)


def test_end_to_end_the_field_report_case_with_spamdrill_spamc_does_not_bounce(
        tmp_path: Path) -> None:
    """Through the lab's Postfix (root): the field report's own case (a full accept
    queue, spamc -t 100: 302 s, past maildrop's 300 s, which its wrapper bounced), with
    spamdrill-spamc --deadline 60 in the maildroprc instead of spamc: under the field
    report's wrapper and under spamdrill-deliver alike the message is delivered, unscanned
    and intact, after about a minute; nothing bounces, nothing is lost. (The shipped
    e2e-field-report-bounce drill, --long, shows the bounce with spamc.)"""
    import os
    import tomllib

    from spamdrill.drills import runner
    from spamdrill.drills.scenario import builtin_dir, parse
    from spamdrill.lab.config import LabConfig

    if os.geteuid() != 0:
        pytest.skip("the lab's Postfix needs root")
    raw = tomllib.loads((builtin_dir() / "e2e-field-report-bounce.toml").read_text())
    raw["name"] = "e2e-field-report-spamdrill-spamc"
    raw["hypothesis"] = ("with spamdrill-spamc --deadline 60 in the xfilter, the field "
                         "report's full accept queue neither bounces nor waits for maildrop")
    raw["long"] = False
    raw["lab"] = {"maildrop": {"client": "spamdrill-spamc",
                               "spamc_args": ["-t", "100", "--deadline", "60"]}}
    raw["target"]["settle"] = 200
    raw["checks"] = [{"kind": "no_bounce"}, {"kind": "nothing_lost"},
                     {"kind": "fate_is", "fates": ["delivered unscanned"]},
                     {"kind": "delivered_intact"}]
    [r] = runner.run_scenario(parse(raw, "e2e with spamdrill-spamc"), scale=1,
                              base=LabConfig(), workdir=tmp_path)
    assert r.verdict == "confirmed", [(c.name, c.ok, c.detail) for c in r.checks]
    assert {m.case for m in r.history.messages} == {"spamdrill-deliver",
                                                    "maildrop_wrapper.bash"}
    for m in r.history.messages:
        assert m.fate == "delivered unscanned" and m.seconds is not None, m
        assert 55 <= m.seconds <= 60 + 30, m  # the deadline, plus Postfix's own steps


@pytest.mark.long
@pytest.mark.timeout(1200)
def test_end_to_end_at_production_timings_a_deadline_below_maildrops_does_not_bounce(
        tmp_path: Path) -> None:
    """``--long`` (about five minutes): the shipped e2e-field-report-spamdrill-spamc
    drill, the field report's case at production timings (a full accept queue, -t 100,
    where spamc takes 302 s and maildrop's 300 s timer fires first, so the report's
    wrapper bounces: e2e-field-report-bounce) with spamdrill-spamc --deadline 270 in the
    maildroprc. Under the report's own wrapper and under spamdrill-deliver the message is
    delivered unscanned and intact once the deadline ends the check, before maildrop's
    timer; nothing bounces, nothing is lost."""
    import os

    from spamdrill.drills import runner
    from spamdrill.drills.scenario import load_all
    from spamdrill.lab.config import LabConfig

    if os.geteuid() != 0:
        pytest.skip("the lab's Postfix needs root")
    scenario = load_all()["e2e-field-report-spamdrill-spamc"]
    assert scenario.long and "--deadline" in scenario.lab.maildrop["spamc_args"]
    [r] = runner.run_scenario(scenario, scale=1, base=LabConfig(), workdir=tmp_path)
    assert r.verdict == "confirmed", [(c.name, c.ok, c.detail) for c in r.checks]
    assert {m.case for m in r.history.messages} == {"spamdrill-deliver",
                                                    "maildrop_wrapper.bash"}
    for m in r.history.messages:
        print(f"{m.case}: {m.fate} after {m.seconds} s, dsn {m.dsn}, delays {m.delays}")
        assert m.fate == "delivered unscanned" and m.intact and m.deferrals == 0, m
        # the deadline, plus Postfix's own steps; maildrop's timer (300 s) never fired
        assert m.seconds is not None and 270 <= m.seconds <= 270 + 30, m


def test_its_launcher_is_installed_whole_and_fails_open(tmp_path: Path) -> None:
    """``--make-launcher``: the script lands whole (no temporary file left), refuses to
    overwrite what it did not write, and the check it starts fails open as spamc does."""
    target = tmp_path / "spamdrill-spamc-launcher"
    done = subprocess.run([*OURS, "--make-launcher", str(target)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    fake = Fake("refuse")
    try:
        out = run([str(target), "-d", "127.0.0.1", "-p", str(fake.port), "--retry-sleep", "0",
                   "--connect-retries", "1"], MESSAGES["ham"])
        assert out[0] == MESSAGES["ham"] and out[1] == 0
    finally:
        fake.close()
    other = tmp_path / "not-ours"
    other.write_text("#!/bin/sh\n")
    refused = subprocess.run([*OURS, "--make-launcher", str(other)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and other.read_text() == "#!/bin/sh\n"


def drill(raw: dict[str, Any], label: str, tmp_path: Path, client: str,
          spamc_args: list[str], checks: list[dict[str, Any]] | None = None
          ) -> list[ScenarioResult]:
    """The shipped scenario ``raw`` with its load run by ``client`` (its own run directory):
    the same lab, fault and conditions (its fault must still be shown to have occurred),
    its checks replaced where the shipped ones speak of spamc's -t."""
    import copy

    from spamdrill.drills import runner
    from spamdrill.drills.scenario import parse
    from spamdrill.lab.config import LabConfig

    raw = copy.deepcopy(raw)
    raw["load"] = {**raw["load"], "client": client, "spamc_args": spamc_args}
    if checks is not None:
        raw["checks"] = checks
        for v in raw.get("variants", []):  # what they say of spamc's -t goes with it
            v["checks"] = [c for c in v.get("checks", []) if c["kind"] in KEPT]
    where_ = tmp_path / client
    where_.mkdir()
    return list(runner.run_scenario(parse(raw, f"{label} with {client}"), scale=1,
                                    base=LabConfig(), workdir=where_))


KEPT = ("kernel_counter",)  # variants' checks about the fault, not the client


def worst(r: ScenarioResult) -> float:
    ms = r.history.messages
    return max(m.seconds if m.seconds is not None else float("inf") for m in ms)


# the net-slow drill's link, and the same link slow only on the way back: the answer
# drips at 8,000 B/s, every read gets a few bytes, and -t never fires
NET_SLOW_LINKS = {
    "both-ways": None,
    "answer-drips": {"kind": "proxy", "toxics": {"downstream": [
        {"type": "bandwidth", "rate": 8000}]}},
}


@pytest.mark.parametrize("link", list(NET_SLOW_LINKS))
def test_the_net_slow_drill_with_spamdrill_spamc_side_by_side(link: str,
                                                             tmp_path: Path) -> None:
    """The net-slow drill (production timings, -t 15, 8,000 B/s), run by spamc and by
    spamdrill-spamc --deadline 12 on the same link: spamc's 180 kB message comes back at
    -t when the upload is slow, and *after* -t (scanned, 180 kB dripping back for 22 s)
    when only the answer is slow; spamdrill-spamc's worst case is within its deadline
    plus MARGIN on both, the 180 kB message back unscanned, nothing lost. The fault is
    shown to have met the load in every run (the drill's condition)."""
    import tomllib

    from spamdrill.drills.scenario import builtin_dir

    deadline = 12
    raw = tomllib.loads((builtin_dir() / "net-slow.toml").read_text())
    if NET_SLOW_LINKS[link] is not None:
        raw["fault"] = NET_SLOW_LINKS[link]
        raw["load"]["kinds"] = ["ham", "large:180000"]
        raw["load"]["count"] = 4
    theirs = [{"kind": "nothing_lost"}] + (
        [] if NET_SLOW_LINKS[link] is None else
        [{"kind": "scanned_fraction", "of": "large:180000", "min": 1.0}])
    [spamc] = drill(raw, f"net-slow/{link}", tmp_path, "spamc", ["-t", "15"],
                    None if NET_SLOW_LINKS[link] is None else theirs)
    [ours] = drill(raw, f"net-slow/{link}", tmp_path, "spamdrill-spamc",
                   ["-t", "15", "--deadline", str(deadline)],
                   [{"kind": "nothing_lost"},
                    {"kind": "scanned_fraction", "of": "large:180000", "max": 0.0},
                    {"kind": "latency_bound", "max_s": deadline + MARGIN}])
    for r in (spamc, ours):
        assert r.verdict == "confirmed", (r.name, [(c.name, c.ok, c.detail)
                                                   for c in r.checks])
    print(f"net-slow/{link}: spamc worst {worst(spamc):.1f} s, spamdrill-spamc worst "
          f"{worst(ours):.1f} s; its scans: "
          + ", ".join(f"{m.kind} {m.outcome} {m.seconds or 0:.1f} s"
                      for m in ours.history.messages))
    assert worst(ours) <= deadline + MARGIN
    big = [m for m in spamc.history.messages if m.kind == "large:180000"]
    if NET_SLOW_LINKS[link] is not None:  # scanned, long past -t: -t bounds no drip
        assert all(m.scanned and (m.seconds or 0) > 15 + 3 for m in big), big
    else:
        assert all(m.outcome == "unscanned" for m in big), big


def test_the_backlog_full_drill_with_spamdrill_spamc_side_by_side(tmp_path: Path) -> None:
    """The backlog-full drill (root: spamd on its own host, somaxconn 5 and 4096, a burst
    of 15 at one child, -t 15, production timings), run by spamc and by spamdrill-spamc
    --deadline 8: each run keeps the drill's conditions (the accept queue overflowed; one
    child served in turn), so the fault is shown to have occurred for both; spamdrill-
    spamc's worst case is its deadline plus MARGIN where spamc's is the whole queue's
    wait, and nothing is lost."""
    import os
    import tomllib

    from spamdrill.drills.scenario import builtin_dir

    if os.geteuid() != 0:
        pytest.skip("the hosts topology needs root")
    deadline = 3
    raw = tomllib.loads((builtin_dir() / "backlog-full.toml").read_text())
    theirs = drill(raw, "backlog-full", tmp_path, "spamc", ["-t", "15"])
    ours = drill(raw, "backlog-full", tmp_path, "spamdrill-spamc",
                 ["-t", "15", "--deadline", str(deadline)],
                 [{"kind": "nothing_lost"},
                  {"kind": "kernel_counter", "counter": "TcpExtSyncookiesSent", "max": 0},
                  {"kind": "latency_bound", "max_s": deadline + MARGIN}])
    for r in (*theirs, *ours):
        assert r.verdict == "confirmed", (r.name, [(c.name, c.ok, c.detail)
                                                   for c in r.checks])
    for spamc, mine in zip(theirs, ours, strict=True):
        scanned = sum(m.scanned for m in mine.history.messages)
        print(f"{spamc.name}: spamc worst {worst(spamc):.1f} s, spamdrill-spamc worst "
              f"{worst(mine):.1f} s ({scanned}/15 scanned)")
        assert worst(mine) <= deadline + MARGIN, mine.name
