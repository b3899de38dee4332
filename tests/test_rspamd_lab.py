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
    assert tcp_open(proxy["host"], proxy["port"])  # the milter proxy listens too

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
