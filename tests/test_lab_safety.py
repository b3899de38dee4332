"""A lab runs as root on mail hosts: its run directory, journal and database must not be
turned against the machine (issue 15, the lab's half). Each test plants what a hostile
local user could, and checks that nothing outside the lab is touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
from conftest import spamdrill

from spamdrill.drills.scenario import parse
from spamdrill.errors import SpamdrillError
from spamdrill.lab import faults, mariadb, postfix
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig
from spamdrill.lab.journal import Journal
from spamdrill.lab.layout import Layout, secure_dir
from spamdrill.lab.procs import session_members, start_ticks

pytestmark = pytest.mark.lab
ROOT = os.geteuid() == 0


def victim() -> subprocess.Popen[bytes]:
    """An unrelated process, leader of a session of its own, as a recycled pid would be."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            start_new_session=True)


def test_a_planted_lock_symlink_truncates_nothing(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    run_dir = tmp_path / "lab"
    run_dir.mkdir(mode=0o755)
    (run_dir / ".lock").symlink_to(precious)
    with pytest.raises(SpamdrillError, match="cannot be the lab's lock"):
        lab_ops.down(run_dir)
    assert precious.read_text() == "keep me\n"


def test_a_planted_run_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("x")
    link = tmp_path / "lab"
    link.symlink_to(elsewhere)
    with pytest.raises(SpamdrillError, match="is a symlink"):
        lab_ops.up(link, LabConfig())
    assert (elsewhere / "keep").exists()  # nothing under it was cleared
    open_dir = tmp_path / "shared"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    with pytest.raises(SpamdrillError, match="writable by others"):
        secure_dir(open_dir)
    done = spamdrill("lab", "down", "--run-dir", str(link))
    assert done.returncode == 2 and "is a symlink" in done.stderr


def test_a_forged_journal_kills_no_unrelated_process(tmp_path: Path) -> None:
    run_dir = secure_dir(tmp_path / "lab")
    other = victim()
    try:
        ticks = start_ticks(other.pid)
        forged = {"event": "start", "name": "spamd", "pid": other.pid, "ticks": ticks,
                  "log": str(run_dir / "spamd.out"), "argv": ["spamd"]}
        (run_dir / "journal.jsonl").write_text(json.dumps(forged) + "\n")
        (run_dir / "lab.json").write_text(json.dumps(
            {"run_dir": str(run_dir), "marker": "f" * 32, "started": 1.0}))
        lab_ops.down(run_dir)  # stop() waits for what it signals: done when it returns
        assert other.poll() is None, "lab down killed a process that was not the lab's"
    finally:
        other.kill()
        other.wait()


def test_a_recycled_session_leader_is_not_its_old_session(tmp_path: Path) -> None:
    other = victim()
    try:
        ticks = start_ticks(other.pid)
        assert ticks is not None
        # the journal says our leader started earlier: this pid is someone else's now
        assert session_members(other.pid, ticks - 1) == []
        assert other.pid in session_members(other.pid, ticks)
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("line", [
    # a server variable the lab never sets
    {"event": "fault", "id": "a", "fault": {"kind": "db-global", "name": "sql_mode",
                                            "old": 0}},
    # a namespace or interface that is not this lab's
    {"event": "netns", "ns": "production", "host_if": "eth0"},
    {"event": "fault", "id": "b", "fault": {"kind": "nft", "ns": "production"}},
    # a process whose log lives outside the run directory
    {"event": "start", "name": "x", "pid": 4242, "ticks": 1, "log": "/etc/shadow"},
    # a user name that is a path
    {"event": "fault", "id": "c", "fault": {"kind": "quota-filled", "user": "../../etc"}},
], ids=["sql-variable", "netns", "nft", "log-path", "quota-user"])
def test_forged_journal_values_are_refused(tmp_path: Path, line: dict[str, object]) -> None:
    root = tmp_path / "lab"
    root.mkdir()
    journal = Journal(root / "journal.jsonl", tag="abcdef")
    (root / "journal.jsonl").write_text(json.dumps(line) + "\n")
    assert journal.records() == []
    assert faults.heal_journaled(journal) == []


def test_a_forged_proxy_path_writes_nowhere_else(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    root = tmp_path / "lab"
    (root / "mariadb").mkdir(parents=True)
    line = {"event": "fault", "id": "p", "fault": {"kind": "proxy-shape",
                                                   "path": str(target)}}
    (root / "journal.jsonl").write_text(json.dumps(line) + "\n")
    faults.heal_journaled(Journal(root / "journal.jsonl"))
    assert target.read_text() == "root:x:0:0\n"


def test_the_database_is_locked_down(run_dir: Path) -> None:
    state = lab_ops.up(run_dir, LabConfig())
    for user, password in (("root", ""), ("root", "spamdrill-lab"), ("", "")):
        with pytest.raises(pymysql.MySQLError, match="Access denied"):
            pymysql.connect(host="127.0.0.1", port=state.db.port, user=user,
                            password=password, connect_timeout=2)
    assert (run_dir / "mariadb").stat().st_mode & 0o077 == 0  # the socket's dir: private
    assert (run_dir / "db-secrets.json").stat().st_mode & 0o077 == 0
    local_cf = state.layout.spamd_site / "local.cf"
    assert local_cf.stat().st_mode & 0o007 == 0  # the SQL password is not world-readable
    secret = mariadb.secrets_of(state.layout)
    assert secret.sa != "spamdrill-lab" and len(secret.sa) >= 16
    if ROOT:  # mariadbd as the package's unprivileged user, never as root
        uid = Path(f"/proc/{state.pids['mariadb'].pid}/status").read_text()
        assert "Uid:\t0\t" not in uid
    other = lab_ops.up(run_dir.parent / "lab2", LabConfig())
    try:
        assert mariadb.secrets_of(other.layout).sa != secret.sa  # random per lab
    finally:
        lab_ops.down(run_dir.parent / "lab2")


def test_a_clean_teardown_leaves_no_journal(run_dir: Path) -> None:
    lab_ops.up(run_dir, LabConfig())
    lab_ops.down(run_dir)
    assert not (run_dir / "journal.jsonl").exists()
    assert not (run_dir / "lab.json").exists()


def test_a_chown_never_follows_a_planted_symlink(run_dir: Path, tmp_path: Path) -> None:
    if not ROOT:  # only root hands the Maildirs to pipe(8)'s user
        with pytest.raises(SpamdrillError, match="needs root"):
            postfix.up(tmp_path, postfix.Settings(transports=(postfix.Transport(
                "t", ("/bin/true",)),)), marker="x")
        return
    state = lab_ops.up(run_dir, LabConfig())
    target = tmp_path / "root-only"
    target.write_text("x")
    before = target.stat()
    (state.layout.maildir("alice") / "cur" / "planted").symlink_to(target)
    postfix.grant_mail(state.layout)
    after = target.stat()
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


@pytest.mark.parametrize("host", ["192.0.2.7", "spamd.example.net"])
def test_a_scenario_target_off_loopback_needs_the_owners_word(host: str) -> None:
    raw = {"name": "x", "hypothesis": "h", "target": {"kind": "address", "host": host,
                                                      "port": 783}}
    with pytest.raises(SpamdrillError, match="is not on loopback"):
        parse(raw)
    owned = parse({**raw, "target": {**raw["target"], "i_own_this_target": True}})
    assert owned.target.host == host  # type: ignore[union-attr]


def test_layout_paths_stay_in_the_run_directory(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    for name in ("journal", "state", "lock", "db_secrets", "db_socket", "maildroprc"):
        assert getattr(layout, name).is_relative_to(tmp_path)
