"""The lab's rspamd and Redis: up through the real command line, scanning with the lab's DNS
only, and down leaving nothing (also after SIGKILL of the ``lab up`` that started them)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import spamdrill

from spamdrill import corpus
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import redis
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.journal import Journal
from spamdrill.lab.net import tcp_open
from spamdrill.lab.procs import session_members, start_ticks

pytestmark = pytest.mark.lab

CONFIG = "[rspamd]\nenabled = true\n"


def _config(tmp_path: Path) -> str:
    path = tmp_path / "lab.toml"
    path.write_text(CONFIG)
    return str(path)


def _queried(run_dir: Path) -> set[str]:
    """Every name the lab DNS was asked."""
    out = set()
    for line in (run_dir / "dns" / "queries.jsonl").read_text().splitlines():
        doc = json.loads(line)
        if "qname" in doc:
            out.add(doc["qname"])
    return out


def test_rspamd_lab_up_scans_with_lab_dns_and_down_leaves_nothing(run_dir: Path,
                                                                  tmp_path: Path) -> None:
    up = spamdrill("lab", "up", "--run-dir", str(run_dir), "--config", _config(tmp_path))
    assert up.returncode == 0, up.stderr
    state = json.loads((run_dir / "lab.json").read_text())
    ref = state["rspamd"]
    comps = {c["name"]: c for c in json.loads(spamdrill(
        "lab", "status", "--json", "--run-dir", str(run_dir)).stdout)["components"]}
    assert comps["rspamd"]["up"] and comps["redis"]["up"], comps
    normal, ctl, proxy, rds = (ref[k] for k in ("normal", "controller", "proxy", "redis"))
    assert all(e["host"] == "127.0.0.1" for e in (normal, ctl, proxy, rds))
    assert rspamd_lab.milter_negotiates(proxy["host"], proxy["port"])  # the milter proxy
    assert not rspamd_lab.milter_negotiates(normal["host"], normal["port"])  # HTTP there

    # a message from a domain only this test names: rspamd's own lookup of its DMARC
    # record must reach the lab DNS, its only resolver
    domain = f"rspamd-{time.monotonic_ns()}.example"
    msg = corpus.ham(7).replace(b"From: ", f"From: someone@{domain}\r\nX-Old-From: ".encode(),
                                1)
    done = rspamd_lab.scan(normal["host"], normal["port"], msg)
    assert done is not None and done.returncode == 0, done
    assert f"_dmarc.{domain}" in _queried(run_dir)
    # Redis is rspamd's: the scan left its history there
    assert redis.command(rds["host"], rds["port"], "DBSIZE") != b":0\r\n"
    # nothing of the machine's own configuration directory was used for writing
    assert f"LOCAL_CONFDIR={run_dir}/rspamd/conf" in " ".join(state["argv"]["rspamd"])

    pids = sorted(lab_ops.lab_pids(run_dir))
    names = {Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0] for p in pids}
    assert any(b"rspamd: normal" in n for n in names), names  # workers are found
    down = spamdrill("lab", "down", "--run-dir", str(run_dir))
    assert down.returncode == 0, down.stderr
    assert "rspamd" in down.stdout and "redis" in down.stdout, down.stdout
    assert [p for p in pids if start_ticks(p) is not None] == []
    for ep in (normal, ctl, proxy, rds):
        assert not tcp_open(ep["host"], ep["port"]), ep


def test_down_after_sigkill_of_lab_up_stops_rspamd_and_redis(run_dir: Path,
                                                             tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "spamdrill", "lab", "up", "--run-dir",
                             str(run_dir), "--config", _config(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = run_dir / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # killed once rspamd runs, before it is awaited
        if any(r.name == "rspamd" for r in Journal(journal).starts()):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("lab up never started rspamd")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rec = next(r for r in Journal(journal).starts() if r.name == "rspamd")
    # rspamd forks its workers (they overwrite their environment with their title)
    deadline = time.monotonic() + 60
    assert rec.ticks is not None
    while time.monotonic() < deadline and len(session_members(rec.pid, rec.ticks)) < 3:
        time.sleep(0.05)
    left = lab_ops.lab_pids(run_dir)
    assert rec.pid in left and len(session_members(rec.pid, rec.ticks)) >= 3
    down = spamdrill("lab", "down", "--run-dir", str(run_dir))
    assert down.returncode == 0, down.stderr
    assert lab_ops.lab_pids(run_dir) == set()
    assert [p for p in left if start_ticks(p) is not None] == []


def test_maildrop_xfilter_rspamc_when_rspamd_fails(run_dir: Path) -> None:
    """maildrop's ``xfilter "rspamc --mime …"`` (the first integration): measured, not
    assumed. rspamc, its rspamd gone, exits 1 and prints the message with an X-Spam-Error
    header; maildrop takes any non-zero exit as a failed filter and keeps the message as it
    was: inside ``exception { }`` it is delivered unscanned (0), outside it maildrop gives
    up with 75 ("Unable to filter message")."""
    from msgspec.structs import replace

    from spamdrill.lab import config as lab_config
    from spamdrill.lab import maildrop

    config = lab_config.from_dict({"rspamd": {"enabled": True},
                                   "maildrop": {"client": "rspamc", "spamc_args": ["-t", "10"]}})
    state = lab_ops.up(run_dir, config)
    layout, ep = state.layout, state.rspamd.normal if state.rspamd else None
    assert ep is not None
    gtube = corpus.gtube(1)
    ok = maildrop.deliver(layout, "alice", gtube)
    assert ok.status == 0 and maildrop.count_messages(layout, "alice", ".Spam") == 1

    lab_ops.stop_named(state, "rspamd")
    raw = subprocess.run([rspamd_lab.rspamc(), "-h", f"{ep.host}:{ep.port}", "--mime"],
                         input=gtube, capture_output=True, timeout=30)
    assert raw.returncode == 1
    assert b"X-Spam-Error: " in raw.stdout and b"GTUBE-STANDARD" in raw.stdout

    caught = maildrop.deliver(layout, "alice", corpus.gtube(2))
    assert caught.status == 0
    inbox = [p for sub in ("new", "cur") for p in (layout.maildir("alice") / sub).iterdir()]
    assert len(inbox) == 1  # the spam, in the inbox, unscanned and without rspamc's header
    text = inbox[0].read_bytes()
    assert b"GTUBE-STANDARD" in text and b"X-Spam" not in text

    maildrop.setup(layout, replace(config, maildrop=replace(config.maildrop,
                                                             in_exception=False)),
                   ep.host, ep.port)
    uncaught = maildrop.deliver(layout, "alice", corpus.gtube(3))
    assert uncaught.status == 75 and "Unable to filter message" in uncaught.stderr
    assert maildrop.count_messages(layout, "alice") == 1


def test_an_orphaned_drill_lab_with_rspamd_is_cleaned(run_dir: Path) -> None:
    """The clean-up a run does for labs whose spamdrill was killed (``down_all``) stops
    rspamd's workers and Redis too."""
    from spamdrill.lab.config import LabConfig, RspamdSettings

    base = run_dir.parent / "drills"
    lab_dir = base / "x-orphan"
    state = lab_ops.up(lab_dir, LabConfig(rspamd=RspamdSettings(enabled=True)))
    state.owner_pid = 2**22 + 12345  # no such process: its spamdrill was killed
    state.save()
    pids = lab_ops.lab_pids(lab_dir)
    assert state.rspamd is not None and state.pids["rspamd"].pid in pids
    assert lab_ops.down_all(base, only_orphans=True)
    assert [p for p in pids if start_ticks(p) is not None] == [] and not lab_dir.exists()
    assert not tcp_open(state.rspamd.redis.host, state.rspamd.redis.port)
