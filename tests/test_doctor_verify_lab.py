"""spamdrill doctor --verify on the field report's example and its incident (root; about
six minutes: a full accept queue waits out maildrop's compiled-in 300 s, before and after
at once): the drills bounced or lost mail before the change and, after it, nothing
bounces and nothing is lost; each change is marked verified; the origin message went
through both labs' Postfix; the files given are left as they were."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import Early, spamdrill

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


FIELD_FILES = tree_hash(FIELD)  # at collection: before the early --verify starts


def test_a_tarball_of_the_host_files_reads_as_the_directory(tmp_path: Path) -> None:
    """--etc host.tgz (etc/ and usr/local/bin/ in it) gives the document the directory
    gives: the same diagnosis, changes and budget, its files named in the tarball
    (host.tgz!/etc/maildroprc:6), not in the unpacked copy that is gone."""
    import tarfile

    tgz = tmp_path / "host.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for top in ("etc", "usr"):
            tf.add(FIELD / top, top)
    docs = []
    for etc in (tgz, FIELD):
        done = spamdrill("doctor", "--etc", str(etc), "--json", "-",
                         str(FIELD / "incident/mail.log"))
        assert done.returncode == 1, done.stderr
        assert json.loads(done.stdout)["root"] == str(etc)
        docs.append(done.stdout.replace(f"{tgz}!", str(FIELD)))
    assert "/tmp/spamdrill-doctor-etc-" not in docs[0]  # the unpacked copy is gone
    a, b = (json.loads(d) for d in docs)
    assert {**a, "root": ""} == {**b, "root": ""}


def _verify_args(out: Path) -> list[str]:
    return ["doctor", "--verify", "--etc", str(FIELD), "--origin",
            str(FIELD / "incident/origin.eml"), "--results-dir", str(out / "runs"),
            "--json", str(out / "doctor.json"), "--html", str(out / "doctor.html"),
            str(FIELD / "incident/mail.log")]


@pytest.mark.root
@pytest.mark.timeout(1200)
@pytest.mark.early.with_args(_verify_args)  # with_args: a lone callable would be decorated
def test_verify_on_the_field_report_shows_the_loss_before_and_none_after(
        early: Early) -> None:
    """Started when collection ends (conftest's ``early``): its six minutes, most of them
    maildrop's 300 s, overlap the rest of the suite. The files given were hashed when
    this module was collected, before it started."""
    done = early.result(timeout=900)
    if os.geteuid() != 0:
        assert done.returncode == 2 and "--verify needs root" in done.stderr, done.stderr
        return
    out = early.dir
    doc = json.loads((out / "doctor.json").read_text())
    v = doc["verify"]
    assert done.returncode == 1, (done.stderr[-3000:], v["said"])
    assert tree_hash(FIELD) == FIELD_FILES  # the change went into private copies only
    assert v["verified"] and doc["sure"]["verified"]
    assert [(m["path"], m["mark"]) for m in v["marks"]] == [
        ("/etc/maildroprc", "verified"), ("/etc/postfix/master.cf", "verified")]
    assert v["sides"]["before"]["case"] == "maildrop_wrapper"
    assert v["sides"]["after"]["case"] == "spamdrill-deliver"
    assert v["sides"]["after"]["spamc"].endswith("-t 100 -n 89")
    by_mode = {d["mode"]: d for d in v["drills"]}
    bounce = by_mode["spamd-accept-queue-full"]
    # before: the field report's wrapper, under this machine's /bin/sh, lost or bounced
    # the message whose maildrop timed out; after: spamc gave up first, nothing lost
    assert sum(bounce["before"]["fates"].get(f, 0) for f in ("bounced", "lost")) >= 1
    runs = Path(v["runs"]["results_dir"])
    before = json.loads((runs / v["runs"]["before"] / "report.json").read_text())
    after = json.loads((runs / v["runs"]["after"] / "report.json").read_text())
    bad_before = {s["name"] for s in before["scenarios"] for m in s["messages"]
                  if m["case"] == "maildrop_wrapper" and m["fate"] in ("bounced", "lost")}
    assert "e2e-field-report-bounce" in bad_before
    for s in after["scenarios"]:
        fates = [m["fate"] for m in s["messages"]]
        assert fates and not {"bounced", "lost", "duplicated"} & set(fates), (s["name"],
                                                                              fates)
        assert s["verdict"] == "confirmed", (s["name"], s["checks"])
    # the origin message went first through every transport of both labs
    for r in (before, after):
        origins = [m for s in r["scenarios"] for m in s["messages"] if m["kind"] == "origin"]
        assert origins and all(m["fate"] for m in origins)
    assert v["origin"]["started_an_episode"]
    # the compare view, side by side, in the terminal and the page
    assert "e2e-field-report-bounce: A" in done.stdout
    page = (out / "doctor.html").read_text()
    assert "Drilled in a lab, before and after the change" in page


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _until(what: str, ok: object, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.5)


@pytest.mark.root
@pytest.mark.timeout(900)
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_killed_doctor_leaves_no_lab_behind(tmp_path: Path, sig: str) -> None:
    """SIGKILL to doctor --verify while both sides' drills hold their fault: each side
    hears of its parent's death (SIGINT), heals, takes its lab down and exits, rather
    than drilling on for minutes with nobody to report to. SIGTERM (what a service
    manager or ``timeout`` sends, to the doctor alone, where Ctrl-C reaches the whole
    group): the doctor hands it on to its sides, waits for them to take their labs down,
    and exits 130 itself."""
    import signal
    import subprocess
    import sys

    from spamdrill.lab import lab as lab_ops

    if os.geteuid() != 0:
        pytest.skip("--verify needs root")
    labs = lab_ops.drill_labs_dir()
    before = set(labs.iterdir())
    doctor = subprocess.Popen(
        [sys.executable, "-m", "spamdrill", "doctor", "--verify", "--etc", str(FIELD),
         "--results-dir", str(tmp_path / "runs"), "--json", str(tmp_path / "d.json"),
         str(FIELD / "incident/mail.log")], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def mine() -> list[Path]:
            return [p for p in set(labs.iterdir()) - before
                    if p.name.endswith("e2e-field-report-bounce")]

        # both sides' Postfix up: the fault is set and the message is on its way
        _until("both labs' Postfix", lambda: len([
            p for p in mine() if list(p.glob("**/postfix/conf/main.cf"))]) == 2, 240)
        sides = _children(doctor.pid)
        assert len(sides) == 2, sides
        ours = mine()
        doctor.send_signal(getattr(signal, sig))
        rc = doctor.wait(timeout=300)
    finally:
        if doctor.poll() is None:  # a failure above, or a doctor deaf to SIGTERM
            doctor.send_signal(signal.SIGKILL)
            doctor.wait()
    assert rc == (130 if sig == "SIGTERM" else -signal.SIGKILL)
    _until("each side gone", lambda: not any(_alive(p) for p in sides), 120)
    assert not [p for p in ours if p.exists()]  # each lab taken down and removed


def test_an_origin_without_verify_or_not_a_message_is_one_line(tmp_path: Path) -> None:
    log = str(FIELD / "incident/mail.log")
    done = spamdrill("doctor", "--etc", str(FIELD), "--origin",
                     str(FIELD / "incident/origin.eml"), log)
    assert done.returncode == 2 and "add --verify" in done.stderr, done.stderr
    if os.geteuid() == 0:  # --origin is read before anything starts
        junk = tmp_path / "junk"
        junk.write_bytes(b"*** ENVELOPE RECORDS x ***\nsender: a\n")
        done = spamdrill("doctor", "--verify", "--etc", str(FIELD), "--origin", str(junk),
                         log)
        assert done.returncode == 2, done.stderr
        assert "without its MESSAGE CONTENTS" in done.stderr
        assert done.stderr.count("\n") == 1
