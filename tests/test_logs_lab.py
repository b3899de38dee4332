"""``spamdrill replay`` on a real lab, and ``spamdrill logs`` on what an end-to-end drill
left: Postfix's, spamd's and maildrop's real logs (root: a private Postfix)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import spamdrill

from spamdrill import corpus

pytestmark = pytest.mark.lab


def test_replay_names_the_slow_rule(tmp_path: Path) -> None:
    message = tmp_path / "slow.eml"
    message.write_bytes(corpus.slow(4242, 2.0))
    done = spamdrill("replay", str(message), "--json", timeout=240,
                     env={"TMPDIR": "/tmp"})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "ham" and doc["seconds"] >= 2.0
    assert doc["message_id"].startswith("<ham-4242-")
    assert doc["spamd_scan_s"] is not None and doc["spamd_scan_s"] >= 2.0
    assert doc["rules_run"] > 100  # every rule was logged (rules-all)
    top = doc["slow_rules"][0]
    assert top["rule"] == "SPAMDRILL_SLEEP" and top["seconds"] >= 1.0
    assert all(r["seconds"] <= top["seconds"] for r in doc["slow_rules"])
    assert doc["timing_ms"] is not None and doc["timing_ms"] >= 2000


def test_replay_of_a_missing_file_is_one_line() -> None:
    done = spamdrill("replay", "/nonexistent/message.eml", timeout=60)
    assert done.returncode == 2 and "cannot read" in done.stderr
    assert "Traceback" not in done.stderr


# -- end to end: a drill through a private Postfix, then its logs ------------------------

ROOT = os.geteuid() == 0


def _e2e_drill(scenario: str, tmp_path: Path) -> tuple[list[Path], dict[str, Any]]:
    """Run one end-to-end drill; return the logs it kept in its run directory (Postfix's
    ``maillog_file``, spamd's and maildrop's) and its results document."""
    done = spamdrill("run", scenario, "--results-dir", str(tmp_path), "--json",
                     str(tmp_path / "run.json"), timeout=900)
    assert done.returncode in (0, 1), done.stderr
    logs = sorted(p for p in tmp_path.rglob("*") if p.name in (
        "postfix.log", "spamd.log", "maildrop.log"))
    return logs, json.loads((tmp_path / "run.json").read_text())


# drill -> the mode its fault must be named by, for the messages it affected
E2E_FAULTS = {
    "e2e-spamd-outage": "spamd-refused",
    "e2e-over-quota": "over-quota",
}


@pytest.mark.root
@pytest.mark.parametrize("scenario,mode", sorted(E2E_FAULTS.items()))
def test_e2e_drill_logs_name_the_injected_fault(tmp_path: Path, scenario: str,
                                                mode: str) -> None:
    if not ROOT:  # the drill needs a private Postfix: refused in one line
        done = spamdrill("run", scenario)
        assert done.returncode == 2 and "need(s) root" in done.stderr
        return
    logs, _ = _e2e_drill(scenario, tmp_path)
    assert logs, "the drill left no logs"
    done = spamdrill("logs", "--json", "-", "--slow", "1", "--slow-scan", "1",
                     *map(str, logs), timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    affected = [r for r in doc["deliveries"] if r["fate"] != "delivered"]
    assert affected, "the drill's fault affected no delivery"
    assert all(mode in r["modes"] for r in affected), [(r["modes"], r["notes"], r["time"])
                                                       for r in affected]


@pytest.mark.root
def test_e2e_slow_first_message_starts_the_episode(tmp_path: Path) -> None:
    """A drill whose first message is made slow (the lab's sleeping rule) names that
    message as the start of the episode."""
    if not ROOT:
        done = spamdrill("run", "e2e-slow-first")
        assert done.returncode == 2 and "need(s) root" in done.stderr
        return
    logs, results = _e2e_drill("e2e-slow-first", tmp_path)
    done = spamdrill("logs", "--json", "-", "--slow", "1", "--slow-scan", "1",
                     *map(str, logs), timeout=300, env={"TZ": os.environ.get("TZ", "UTC")})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    first = results["scenarios"][0]["messages"][0]["message_id"]
    episode = max(doc["episodes"], key=lambda e: e["deliveries"])
    assert episode["started_by"][0]["message_id"].strip("<>") == first.strip("<>")
