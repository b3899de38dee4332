"""A lab runs as root on mail hosts: its run directory, journal and database must not be
turned against the machine (issue 15, the lab's half). Each test plants what a hostile
local user could, and checks that nothing outside the lab is touched."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
from conftest import spamdrill

from spamdrill.drills import lablogs
from spamdrill.drills.scenario import parse
from spamdrill.errors import SpamdrillError
from spamdrill.lab import faults, maildir, maildrop, mariadb, postfix, safefs
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig
from spamdrill.lab.journal import Journal
from spamdrill.lab.layout import Layout, secure_dir
from spamdrill.lab.procs import proc_state, session_members, spawn, start_ticks

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
    # the Maildirs are pipe(8)'s user's now: root's maildrop would write through its links
    with pytest.raises(SpamdrillError, match="will not deliver"):
        maildrop.deliver(state.layout, "alice", b"Subject: x\n\nhi\n")
    done = spamdrill("lab", "check", "--run-dir", str(run_dir))
    assert done.returncode == 2 and "will not deliver" in done.stderr, done.stderr


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


# --- issue 21: a lab run as root is no way in -------------------------------------------

HOSTILE_USER = "x;touch${IFS}%s;#"


def test_a_hostile_recipient_reaches_no_shell_in_the_maildroprc(tmp_path: Path) -> None:
    """The generated maildroprc, run by the real maildrop as pipe(8) runs it (``maildrop
    FILTER ${user}``): a local part holding shell text is refused as unknown (67), and
    nothing it says runs. (Run as the test's user: the shell would run as whoever runs
    maildrop, nobody under Postfix.)"""
    layout = Layout(secure_dir(tmp_path / "lab"))
    layout.maildrop_dir.mkdir()
    config = LabConfig()
    rc = layout.maildrop_dir / "hostile-rc"
    rc.write_text(maildrop.render_filter(layout, config, maildrop.spamc_command(
        config, "127.0.0.1", 9)))
    os.chmod(rc, 0o600)
    planted = tmp_path / "p"
    for user in (HOSTILE_USER % planted, f"alice\n;touch {planted}", "-d", ""):
        done = subprocess.run(["maildrop", str(rc), user], input=b"Subject: x\n\nhi\n",
                              capture_output=True, timeout=30)
        assert not planted.exists(), f"maildrop ran the shell text in {user!r}"
        assert done.returncode == 67, (user, done.returncode, done.stderr)
    ok = subprocess.run(["maildrop", str(rc), "alice"], input=b"Subject: x\n\nhi\n",
                        capture_output=True, timeout=30)
    assert ok.returncode != 67  # a lab user passes the check (its Maildir is not made here)


@pytest.mark.parametrize("arg", ["$1", "${FROM}", "-t'5", '-t"5', "a b", "\\x", "`id`"])
def test_the_lab_xfilter_takes_no_spamc_word_maildrop_would_expand(
        tmp_path: Path, arg: str) -> None:
    """A lab shaped like a system (``--etc``) takes that system's spamc words into its
    xfilter: one maildrop would expand (``$1`` is the recipient) or sh would split is
    refused in one line."""
    layout = Layout(secure_dir(tmp_path / "lab"))
    config = LabConfig()
    with pytest.raises(SpamdrillError, match="spamc argument"):
        maildrop.render_filter(layout, config, ["/usr/bin/spamc", "-t", arg])


def _precious(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_a_quota_fill_follows_no_planted_symlink(tmp_path: Path) -> None:
    """``fill_quota``/``unfill_quota`` write in the pipe user's Maildir: a symlink planted
    there (filler, maildirsize, or the Maildir itself) reaches nothing outside."""
    layout = Layout(secure_dir(tmp_path / "lab"))
    maildir_path = layout.maildir("alice")
    (maildir_path / "cur").mkdir(parents=True)
    victim_file = _precious(tmp_path / "victim", "10000S\nsecret\n")
    (maildir_path / "maildirsize").write_text("10000S\n")
    (maildir_path / "cur" / maildir.FILLER).symlink_to(victim_file)
    with pytest.raises(OSError):
        maildir.fill_quota(layout.root, maildir_path)
    assert victim_file.read_text() == "10000S\nsecret\n"  # not truncated, not grown
    (maildir_path / "cur" / maildir.FILLER).unlink()
    (maildir_path / "maildirsize").unlink()
    (maildir_path / "maildirsize").symlink_to(victim_file)
    for act in (maildir.fill_quota, maildir.unfill_quota):
        with pytest.raises(OSError):
            act(layout.root, maildir_path)
        assert victim_file.read_text() == "10000S\nsecret\n"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "cur").mkdir(parents=True)
    _precious(elsewhere / "maildirsize", "10000S\n")
    other = layout.maildir("bob")
    other.parent.mkdir(parents=True)
    other.symlink_to(elsewhere)
    with pytest.raises(OSError):
        maildir.fill_quota(layout.root, other)
    assert (elsewhere / "maildirsize").read_text() == "10000S\n"
    assert not (elsewhere / "cur" / maildir.FILLER).exists()


def test_a_quota_fill_and_unfill_still_work(tmp_path: Path) -> None:
    layout = Layout(secure_dir(tmp_path / "lab"))
    md = layout.maildir("alice")
    (md / "cur").mkdir(parents=True)
    (md / "maildirsize").write_text("10000S\n12 1\n")
    maildir.fill_quota(layout.root, md)
    assert (md / "cur" / maildir.FILLER).stat().st_size == 10000
    assert (md / "maildirsize").read_text() == "10000S\n12 1\n10000 1\n"
    maildir.unfill_quota(layout.root, md)
    assert (md / "maildirsize").read_text() == "10000S\n12 1\n"
    assert not (md / "cur" / maildir.FILLER).exists()


def test_lab_logs_copy_no_planted_symlink(tmp_path: Path) -> None:
    """MariaDB's directory is mysql's: a ``mariadb.log`` symlink there must not copy any
    file into the run's (world-readable) results or its report."""
    lab_dir = secure_dir(tmp_path / "lab")
    secret = _precious(tmp_path / "shadow", "root:$6$secret:19000:0:99999:7:::\n")
    (lab_dir / "mariadb").mkdir()
    (lab_dir / "mariadb" / "mariadb.log").symlink_to(secret)
    (lab_dir / "spamd").mkdir()
    (lab_dir / "spamd" / "spamd.log").write_text("info: ok\n")
    kept = lablogs.keep(lab_dir, tmp_path / "run" / "logs")
    assert [k.name for k in kept] == ["spamd"]
    for f in (tmp_path / "run" / "logs").iterdir():
        assert "secret" not in f.read_text()


def test_a_restart_appends_to_no_planted_log(tmp_path: Path) -> None:
    """``procs.spawn`` opens a component's log again on each (re)start: a symlink there
    (mariadb/ is mysql's) must not be created through or appended to."""
    root = secure_dir(tmp_path / "lab")
    (root / "mariadb").mkdir()
    target = _precious(tmp_path / "precious", "keep me\n")
    (root / "mariadb" / "mariadb.out").symlink_to(target)
    journal = Journal(root / "journal.jsonl")
    with pytest.raises(SpamdrillError, match=r"mariadb\.out"):
        spawn("mariadb", ["/bin/echo", "appended"], log=root / "mariadb" / "mariadb.out",
              journal=journal, marker="m")
    (root / "mariadb" / "new.out").symlink_to(tmp_path / "created")
    with pytest.raises(SpamdrillError):
        spawn("mariadb", ["/bin/echo", "x"], log=root / "mariadb" / "new.out",
              journal=journal, marker="m")
    assert target.read_text() == "keep me\n"
    assert not (tmp_path / "created").exists()
    assert journal.records() == []  # nothing started


def _forged_lab(tmp_path: Path) -> Path:
    run_dir = secure_dir(tmp_path / "lab")
    (run_dir / "lab.json").write_text(json.dumps(
        {"run_dir": str(run_dir), "marker": "f" * 32, "started": 1.0}))
    return run_dir


def test_lab_dns_writes_through_no_planted_symlink(tmp_path: Path) -> None:
    run_dir = _forged_lab(tmp_path)
    (run_dir / "dns").mkdir()
    target = _precious(tmp_path / "root-only", "keep me\n")
    (run_dir / "dns" / "rules.tmp").symlink_to(target)
    (run_dir / "dns" / "rules.json").symlink_to(target)
    done = spamdrill("lab", "dns", "--run-dir", str(run_dir), "*", "nxdomain")
    assert target.read_text() == "keep me\n"
    assert done.returncode in (0, 2), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["status"], ["check"], ["dns", "*", "drop"],
                                     ["down"]])
def test_every_lab_subcommand_checks_the_run_directory(tmp_path: Path,
                                                       command: list[str]) -> None:
    """A run directory that is a symlink (to a directory holding a lab.json) is refused by
    every subcommand, in one line, before anything in it is read or written."""
    elsewhere = _forged_lab(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    done = spamdrill("lab", command[0], "--run-dir", str(link), *command[1:])
    assert done.returncode == 2 and "is a symlink" in done.stderr, (done.stdout,
                                                                    done.stderr)
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_lab_heal_and_status_check_the_run_directory(tmp_path: Path) -> None:
    elsewhere = _forged_lab(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    for act in (lab_ops.heal, lab_ops.status, lab_ops.lab_pids):
        with pytest.raises(SpamdrillError, match="is a symlink"):
            act(link)


def test_the_run_directory_check_makes_nothing_before_it_refuses(tmp_path: Path) -> None:
    """A symlink on the way to the run directory whose target no one should trust: refused,
    and ``<target>/lab`` was never made."""
    target = tmp_path / "open"
    target.mkdir()
    os.chmod(target, 0o777)  # anyone may write here: not a place for a run directory
    (tmp_path / "way").symlink_to(target)
    with pytest.raises(SpamdrillError, match=r"writable by others|symlink"):
        secure_dir(tmp_path / "way" / "lab")
    assert not (target / "lab").exists()
    with pytest.raises(SpamdrillError, match=r"writable by others|symlink"):
        secure_dir(tmp_path / "way" / "deeper" / "lab")
    assert not (target / "deeper").exists()


def test_a_forged_postfix_start_record_signals_nothing(tmp_path: Path) -> None:
    run_dir = _forged_lab(tmp_path)
    (run_dir / "postfix").mkdir()
    other = victim()
    try:
        forged = {"event": "start", "name": "postfix", "pid": other.pid,
                  "ticks": start_ticks(other.pid), "log": str(run_dir / "postfix" / "x.out")}
        (run_dir / "journal.jsonl").write_text(json.dumps(forged) + "\n")
        (run_dir / "postfix" / "state.json").write_text(json.dumps({
            "run_dir": str(run_dir), "address": "127.0.0.1", "port": 1, "marker": "e" * 32,
            "pid": other.pid, "ticks": start_ticks(other.pid), "pipe_user": "nobody"}))
        lab_ops.down(run_dir)
        assert other.poll() is None, "lab down signalled a process that was not the lab's"
    finally:
        other.kill()
        other.wait()


def test_a_session_whose_leader_exited_is_not_killed_unmarked(tmp_path: Path) -> None:
    """A start record naming a session whose leader has exited: what the session still
    holds is not the lab's unless it proves it (marker, or the component's log)."""
    run_dir = _forged_lab(tmp_path)
    leader = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys\n"
         "p = subprocess.Popen(['sleep', '120'])\nprint(p.pid, flush=True)\n"
         "sys.stdin.read()"], start_new_session=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    assert leader.stdout is not None and leader.stdin is not None
    member = int(leader.stdout.readline())
    ticks = start_ticks(leader.pid)
    try:
        leader.stdin.close()
        leader.wait()
        assert member in session_members(leader.pid, ticks or 0)
        forged = {"event": "start", "name": "spamd", "pid": leader.pid, "ticks": ticks,
                  "log": str(run_dir / "spamd.out")}
        (run_dir / "journal.jsonl").write_text(json.dumps(forged) + "\n")
        pidfd = os.pidfd_open(member)
        stopped = lab_ops.down(run_dir)
        # a SIGKILL takes effect when the kernel next runs the process: wait for an exit
        # (the pidfd turns readable) rather than look once
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert not poller.poll(3000), f"killed an unmarked session ({stopped})"
        os.close(pidfd)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def test_a_forged_pause_record_resumes_no_process(tmp_path: Path) -> None:
    run_dir = _forged_lab(tmp_path)
    other = victim()
    try:
        ticks = start_ticks(other.pid)
        os.killpg(other.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while proc_state(other.pid, ticks) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)  # the stop takes effect when the kernel schedules it
        assert proc_state(other.pid, ticks) == "T"
        forged = {"event": "fault", "id": "z", "fault": {"kind": "pause", "pid": other.pid,
                                                         "ticks": ticks}}
        (run_dir / "journal.jsonl").write_text(json.dumps(forged) + "\n")
        lab_ops.down(run_dir)
        assert proc_state(other.pid, ticks) == "T", "a forged pause record sent SIGCONT"
    finally:
        other.kill()
        other.wait()




def test_safefs_takes_only_regular_files_of_their_own(tmp_path: Path) -> None:
    """What root may open in a service user's directory: not a FIFO (never waited on),
    not a hard link to another file, nothing outside the base; a replaced file is renamed
    over a planted symlink, never written through it."""
    base = secure_dir(tmp_path / "lab")
    (base / "d").mkdir()
    os.mkfifo(base / "d" / "fifo")
    with pytest.raises(safefs.UnsafePath):
        safefs.read_bytes(base, base / "d" / "fifo")  # returns at once: no reader waits
    other = _precious(tmp_path / "other", "keep\n")
    os.link(other, base / "d" / "hard")
    with pytest.raises(safefs.UnsafePath):
        safefs.open_fd(base, base / "d" / "hard", os.O_WRONLY | os.O_TRUNC)
    assert other.read_text() == "keep\n"
    for outside in (tmp_path / "other", base / "d" / ".." / ".." / "other"):
        with pytest.raises(safefs.UnsafePath):
            safefs.read_bytes(base, outside)
    (base / "d" / "link").symlink_to(other)
    safefs.write_atomic(base, base / "d" / "link", b"new\n")
    assert other.read_text() == "keep\n"
    assert (base / "d" / "link").read_text() == "new\n"
    assert not (base / "d" / "link").is_symlink()


def test_what_a_dead_leader_left_is_killed_when_it_proves_it_is_the_labs(
        tmp_path: Path) -> None:
    """The other side of the rule: a lab process whose leader died (spamd's children,
    whose environment no longer shows the marker) is still stopped by ``lab down``,
    because its output is the component's own log, and ``lab down`` says so."""
    run_dir = _forged_lab(tmp_path)
    (run_dir / "spamd").mkdir()
    log = run_dir / "spamd" / "spamd.out"
    leader = spawn("spamd", [sys.executable, "-c", "import subprocess, sys\n"
                             "p = subprocess.Popen(['sleep', '120'], env={})\n"
                             "print(p.pid, flush=True)"],
                   log=log, journal=Journal(run_dir / "journal.jsonl"), marker="f" * 32)
    assert leader.popen is not None
    leader.popen.wait()
    member = int(log.read_text().split()[0])
    pidfd = os.pidfd_open(member)
    try:
        assert proc_state(member, start_ticks(member)) != ""  # it runs, unmarked
        stopped = lab_ops.down(run_dir)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(10_000), "what the lab's spamd left still runs"
        assert stopped == ["1 process(es) spamd left"], stopped
    finally:
        os.close(pidfd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
