"""spamdrill doctor --verify, sans-IO: the drill for each diagnosed mode, each change's
mark from the before and after runs' models, the origin message (postcat's output or a
plain message), and a tarball's members judged before anything is unpacked."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest

from spamdrill.doctor import tarball
from spamdrill.doctor import verify as vf
from spamdrill.errors import SpamdrillError
from spamdrill.runmodel import Run

pytestmark = pytest.mark.unit

# the field report's document, as far as --verify reads it
DOC: dict[str, Any] = {
    "why": [{"budget_mode": "spamd-accept-queue-full"}, {"budget_mode": "spamd-overloaded"},
            {"budget_mode": None}],
    "changes": [{"path": "/etc/maildroprc", "modes": ["spamd-accept-queue-full"]},
                {"path": "/etc/postfix/master.cf", "modes": ["spamd-accept-queue-full"]}],
}
SIDES = vf.Sides("maildrop_wrapper", "spamdrill-deliver")


def message(case: str, fate: str, i: int = 0) -> dict[str, Any]:
    return {"id": f"{case}-{fate}-{i}", "kind": "ham", "size": 1, "start_ns": 0,
            "end_ns": 1, "outcome": "lost" if fate == "lost" else "ham", "exit_code": None,
            "reason": "", "spamc_args": [], "case": case, "peer": "postfix", "fate": fate}


def scenario(name: str, fates: dict[str, list[str]], verdict: str = "confirmed",
             error: str = "", checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A drill as a run document holds it: its messages per case and their findings."""
    worst = {"lost": "loses mail", "bounced": "bounces", "duplicated": "duplicates mail",
             "delivered unscanned": "delivers unscanned", "deferred": "defers"}
    findings = []
    for case, fs in fates.items():
        f = next((worst[x] for x in ("lost", "duplicated", "bounced", "deferred",
                                     "delivered unscanned") if x in fs), "within")
        findings.append({"case": case, "mode": None, "finding": f, "fate": fs[0],
                         "fires_first": None, "worst_s": 1.0, "messages": len(fs),
                         "scanned": 0, "unscanned": 0, "lost": 0, "why": "",
                         "crosses_budget": f in ("loses mail", "bounces",
                                                 "duplicates mail")})
    return {"name": name, "hypothesis": "", "stands_for": "", "verdict": verdict,
            "finding": "within", "error": error, "scale": 1.0, "budget_s": 300.0,
            "timing": {"compressed": False, "why": "", "does_not_compress": [],
                       "calibration": None},
            "checks": checks or [], "fault_evidence": [], "findings": findings,
            "notes": [], "faults": [],
            "messages": [message(c, f, i) for c, fs in fates.items()
                         for i, f in enumerate(fs)]}


def run(*scenarios: dict[str, Any]) -> Run:
    return msgspec.convert({"version": 2, "run": "r", "started": 0.0, "results_dir": "",
                            "exit_status": 0, "scenarios": list(scenarios)}, Run)


BEFORE = run(scenario("e2e-field-report-bounce", {"maildrop_wrapper": ["lost"],
                                                  "spamdrill-deliver": ["delivered"]},
                      "refuted"),
             scenario("e2e-spamd-overloaded", {"maildrop_wrapper": ["delivered unscanned"] * 3}))


def marks(after: Run, before: Run = BEFORE) -> list[vf.Mark]:
    plans = vf.plan(DOC)
    return vf.mark(DOC["changes"], plans, vf.drilled(plans, before, after, SIDES))


def test_each_diagnosed_mode_gets_its_end_to_end_drill_once() -> None:
    plans = vf.plan(DOC)
    assert [(p.mode, p.scenario) for p in plans] == [
        ("spamd-accept-queue-full", "e2e-field-report-bounce"),
        ("spamd-overloaded", "e2e-spamd-overloaded")]


def test_a_mode_without_a_drill_or_a_wrapper_that_cannot_run_is_not_drillable() -> None:
    doc = {"why": [{"budget_mode": "rspamd-refused"}], "changes": []}
    [p] = vf.plan(doc)
    assert p.scenario is None and "no drill makes rspamd-refused happen" in p.why
    assert "spamc xfilter" in p.why  # why: --verify's labs are shaped from one
    [p] = vf.plan({"why": [{"budget_mode": "made-up"}]})
    assert p.scenario is None and "none is shipped" in p.why
    [p] = vf.plan({"why": [{"budget_mode": "spamd-overloaded"}]}, blocked="no wrapper")
    assert p.scenario is None and p.why == "no wrapper"
    [p] = vf.plan({"why": [{"budget_mode": "spamd-overloaded"}]}, known=set())
    assert p.scenario is None and "not installed" in p.why


def test_verified_when_after_the_change_nothing_bounces_or_is_lost() -> None:
    after = run(scenario("e2e-field-report-bounce",
                         {"spamdrill-deliver": ["delivered unscanned"]}),
                scenario("e2e-spamd-overloaded",
                         {"spamdrill-deliver": ["delivered unscanned"] * 3}))
    got = marks(after)
    assert [m.mark for m in got] == [vf.VERIFIED, vf.VERIFIED]
    assert "before: 1 lost through maildrop_wrapper" in got[0].said
    assert "after: 1 delivered unscanned through spamdrill-deliver" in got[0].said
    plans = vf.plan(DOC)
    assert vf.all_verified(got, vf.drilled(plans, BEFORE, after, SIDES))


@pytest.mark.parametrize("fate", ["bounced", "lost", "duplicated"])
def test_not_verified_when_the_wrapper_after_still_bounces_loses_or_duplicates(
        fate: str) -> None:
    after = run(scenario("e2e-field-report-bounce", {"spamdrill-deliver": [fate]},
                         "refuted"),
                scenario("e2e-spamd-overloaded", {"spamdrill-deliver": ["delivered"]}))
    got = marks(after)
    assert {m.mark for m in got} == {vf.NOT_VERIFIED}
    assert f"after: 1 {fate} through spamdrill-deliver" in got[0].said


def test_a_drill_that_could_not_tell_verifies_nothing() -> None:
    """A verdict of error (its fault did not meet the load, the lab failed), a case
    with no mail, or a drill missing from the run: never verified."""
    cond = [{"name": "the fault held while messages were in flight", "status": "error",
             "ok": False, "detail": "0 of 1 message(s) in flight", "offenders": []}]
    for sc in (scenario("e2e-field-report-bounce",
                        {"spamdrill-deliver": ["delivered unscanned"]}, "error",
                        checks=cond),
               scenario("e2e-field-report-bounce", {}, "confirmed"),
               scenario("e2e-field-report-bounce", {"spamdrill-deliver": ["delivered"]},
                        "error", error="lab failed to start: mariadb")):
        got = marks(run(sc, scenario("e2e-spamd-overloaded",
                                     {"spamdrill-deliver": ["delivered"]})))
        assert {m.mark for m in got} == {vf.NOT_VERIFIED}, got
    got = marks(run(scenario("e2e-spamd-overloaded", {"spamdrill-deliver": ["delivered"]})))
    assert {m.mark for m in got} == {vf.NOT_VERIFIED}
    assert "not run" in got[0].said
    got = marks(run(scenario("e2e-field-report-bounce", {"spamdrill-deliver": ["deferred"]},
                             "error", checks=cond)))
    assert "could not tell: the fault held while messages were in flight" in got[0].said


def test_a_mode_no_change_answers_that_breaks_after_is_a_regression() -> None:
    after = run(scenario("e2e-field-report-bounce", {"spamdrill-deliver": ["delivered"]}),
                scenario("e2e-spamd-overloaded", {"spamdrill-deliver": ["bounced"]}))
    got = marks(after)
    plans = vf.plan(DOC)
    runs = vf.drilled(plans, BEFORE, after, SIDES)
    assert [m.mark for m in got] == [vf.VERIFIED, vf.VERIFIED]
    assert vf.regressions(runs, got) == [
        "spamd-overloaded (e2e-spamd-overloaded): after: 1 bounced through "
        "spamdrill-deliver (bounces)"]
    assert not vf.all_verified(got, runs)
    assert "worse after" in vf.sure_said(got, runs, False)


def test_a_change_answering_no_mode_is_not_drillable_and_does_not_block() -> None:
    doc = {"why": [{"budget_mode": "spamd-accept-queue-full"}],
           "changes": [*DOC["changes"], {"path": "/etc/postfix/main.cf", "modes": []}]}
    plans = vf.plan(doc)
    after = run(scenario("e2e-field-report-bounce", {"spamdrill-deliver": ["delivered"]}))
    runs = vf.drilled(plans, BEFORE, after, SIDES)
    got = vf.mark(doc["changes"], plans, runs)
    assert [m.mark for m in got] == [vf.VERIFIED, vf.VERIFIED, vf.NOT_DRILLABLE]
    assert "one recipient per run" in got[2].said
    assert vf.all_verified(got, runs)


def test_a_change_whose_mode_has_no_drill_is_not_drillable_and_blocks() -> None:
    doc = {"why": [{"budget_mode": "rspamd-task-timeout"}],
           "changes": [{"path": "/etc/maildroprc", "modes": ["rspamd-task-timeout"]}]}
    plans = vf.plan(doc)
    got = vf.mark(doc["changes"], plans, vf.drilled(plans, BEFORE, BEFORE, SIDES))
    assert [m.mark for m in got] == [vf.NOT_DRILLABLE]
    # a stand-in missing from the runs is not verified, never not drillable
    doc = {"why": [{"budget_mode": "spamd-silent"}],
           "changes": [{"path": "/etc/maildroprc", "modes": ["spamd-silent"]}]}
    plans = vf.plan(doc)
    got = vf.mark(doc["changes"], plans, vf.drilled(plans, BEFORE, BEFORE, SIDES))
    assert [m.mark for m in got] == [vf.NOT_VERIFIED]
    assert not vf.all_verified(got, [])


POSTCAT = b"""*** ENVELOPE RECORDS deferred/4/456C020CA16 ***
message_size:            1011             296               1               0            1011
message_arrival_time: Sun Nov 29 16:09:30 2026
sender: nobody@sender.lab.test
recipient: alice@lab.test
*** MESSAGE CONTENTS deferred/4/456C020CA16 ***
Received: from mail.example.org
Subject: slow
Message-ID: <ham-7008@spamdrill.lab.test>

body line
*** HEADER EXTRACTED deferred/4/456C020CA16 ***
original_recipient: alice@lab.test
*** MESSAGE FILE END deferred/4/456C020CA16 ***
"""


def test_the_origin_message_from_postcat_or_plain() -> None:
    got = vf.origin_message(POSTCAT)
    assert got.startswith(b"Received: from mail.example.org\n")
    assert got.endswith(b"body line\n")
    assert vf.message_id(got) == "<ham-7008@spamdrill.lab.test>"
    plain = b"From: a@b\r\nMessage-ID:\r\n <x@y>\r\n\r\nhi\r\n"
    assert vf.origin_message(plain) == plain
    assert vf.message_id(plain) == "<x@y>"


@pytest.mark.parametrize("data", [b"", b"\n\n", b"hello world\n", b"From: a\x00\n\nx",
                                  b"*** ENVELOPE RECORDS x ***\nsender: a\n"])
def test_what_is_not_a_message_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        vf.origin_message(data)


def test_each_copy_of_the_origin_gets_its_own_message_id_and_keeps_the_old() -> None:
    data = vf.origin_message(POSTCAT)
    copy = vf.as_copy(data, "<origin-1@spamdrill.lab.test>")
    head, _, body = copy.partition(b"\r\n\r\n")
    assert b"\n" not in copy.replace(b"\r\n", b"")
    assert head.count(b"Message-ID:") == 1
    assert b"Message-ID: <origin-1@spamdrill.lab.test>" in head
    assert b"X-Spamdrill-Origin-Id: <ham-7008@spamdrill.lab.test>" in head
    assert body == b"body line\r\n"
    folded = vf.as_copy(b"Message-ID:\n <a@b>\nSubject: s\n\nx\n", "<n@m>")
    assert folded == b"Message-ID: <n@m>\r\nX-Spamdrill-Origin-Id: <a@b>\r\nSubject: s" \
        b"\r\n\r\nx\r\n"


# ---- tarballs -----------------------------------------------------------------------

M = tarball.Member


@pytest.mark.parametrize("member, why", [
    (M("/etc/passwd", "file"), "absolute"),
    (M("etc/../../root/.ssh/authorized_keys", "file"), "'..'"),
    (M("../x", "dir"), "'..'"),
    (M("etc/localtime", "symlink", "/usr/share/zoneinfo/UTC"), "out of the tarball"),
    (M("etc/x", "symlink", "../../etc/shadow"), "out of the tarball"),
    (M("x", "symlink", ".."), "out of the tarball"),
    (M("etc/h", "hardlink", "/etc/shadow"), "out of the tarball"),
    (M("etc/h", "hardlink", "etc/../../x"), "out of the tarball"),
    (M("dev/sda", "special"), "device"),
    (M("etc/l", "symlink", ""), "nothing"),
])
def test_unsafe_members_are_refused(member: tarball.Member, why: str) -> None:
    said = tarball.refusal(member)
    assert said is not None and why in said
    with pytest.raises(SpamdrillError) as exc:
        tarball.check([M("etc/ok", "file"), member])
    assert member.name in exc.value.one_line() and "\n" not in exc.value.one_line()


@pytest.mark.parametrize("member", [
    M("etc/postfix/main.cf", "file"), M("./etc/maildroprc", "file"), M("etc", "dir"),
    M("etc/alternatives/x", "symlink", "../postfix/main.cf"),
    M("etc/a", "symlink", "b/c"), M("etc/h", "hardlink", "etc/postfix/main.cf"),
])
def test_members_inside_the_tarball_are_fine(member: tarball.Member) -> None:
    assert tarball.refusal(member) is None


def test_a_tarball_past_its_bounds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tarball, "MAX_BYTES", 10)
    with pytest.raises(SpamdrillError, match="more than"):
        tarball.check([M("a", "file", size=6), M("b", "file", size=6)])


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)
    return path


def test_a_tarball_unpacks_privately_and_is_gone_afterwards(tmp_path: Path) -> None:
    mrc = tarfile.TarInfo("etc/maildroprc")
    link = tarfile.TarInfo("etc/link")
    link.type, link.linkname = tarfile.SYMTYPE, "maildroprc"
    path = _tar(tmp_path / "etc.tgz", [(mrc, b"xfilter \"spamc\"\n"), (link, b"")])
    with tarball.root_of(path) as root:
        assert (root / "etc/maildroprc").read_bytes() == b"xfilter \"spamc\"\n"
        assert (root / "etc/link").read_bytes() == b"xfilter \"spamc\"\n"
        assert os.stat(root).st_mode & 0o077 == 0
        kept = root
    assert not kept.exists()
    bare = _tar(tmp_path / "bare.tgz", [(tarfile.TarInfo("maildroprc"), b"x\n")])
    with tarball.root_of(bare) as root:  # /etc's contents alone: put under etc/
        assert (root / "etc/maildroprc").read_bytes() == b"x\n"


def test_an_unsafe_tarball_writes_nothing(tmp_path: Path) -> None:
    good = tarfile.TarInfo("etc/maildroprc")
    bad = tarfile.TarInfo("etc/zz")
    bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/shadow"
    path = _tar(tmp_path / "etc.tgz", [(good, b"x\n"), (bad, b"")])
    before = set(Path(tempfile.gettempdir()).glob("spamdrill-doctor-etc-*"))
    with pytest.raises(SpamdrillError, match="'etc/zz': a link out of the tarball"), \
            tarball.root_of(path):
        pass
    assert set(Path(tempfile.gettempdir()).glob("spamdrill-doctor-etc-*")) == before
    (tmp_path / "junk").write_bytes(b"not a tarball")
    with pytest.raises(SpamdrillError, match="nor a tarball"), \
            tarball.root_of(tmp_path / "junk"):
        pass
    with pytest.raises(SpamdrillError, match="no such directory or tarball"), \
            tarball.root_of(tmp_path / "missing"):
        pass


def test_a_before_that_did_not_go_wrong_is_said_with_the_mark() -> None:
    """Verified after, but the lab made nothing bounce or get lost before either: the
    mark says the incident did not happen in the lab, rather than claim a mend."""
    calm = run(scenario("e2e-field-report-bounce", {"maildrop_wrapper": ["delivered"]}),
               scenario("e2e-spamd-overloaded", {"maildrop_wrapper": ["delivered"]}))
    after = run(scenario("e2e-field-report-bounce", {"spamdrill-deliver": ["delivered"]}),
                scenario("e2e-spamd-overloaded", {"spamdrill-deliver": ["delivered"]}))
    got = marks(after, calm)
    assert "the lab did not make the incident happen" in got[0].said
    assert "did not make" not in marks(after)[0].said


def test_a_shipped_drill_is_judged_for_the_doctor_through_the_wrapper_under_test() -> None:
    """The drill's own conditions stay (a fault that met no mail tells nothing); its
    checks become the doctor's, on the wrapper under test; spamdrill-deliver gets the
    flags the changed master.cf gives it; the origin rides along; no --long needed."""
    from spamdrill.checks import NoBounce, NothingDuplicated, NothingLost
    from spamdrill.doctor import drills
    from spamdrill.drills.scenario import load_all

    shipped = load_all()["e2e-field-report-bounce"]
    side = drills.Side("after", None, "-t 100 -n 89", [], "spamdrill-deliver",
                       deliver_flags=("--deadline=870",))
    sc = drills.for_doctor(shipped, side, b"Subject: x\n\nbody\n")
    assert sc.name == shipped.name and not sc.long
    assert sc.conditions == shipped.conditions and sc.conditions
    assert sc.checks == (NothingLost(case="spamdrill-deliver"),
                         NoBounce(case="spamdrill-deliver"),
                         NothingDuplicated(case="spamdrill-deliver"))
    assert isinstance(sc.target, drills.DoctorTarget)
    assert sc.target.wrappers == ("spamdrill-deliver",)
    assert sc.target.deliver_flags == ("--deadline=870",)
    assert sc.target.settle == shipped.target.settle  # type: ignore[union-attr]
    assert sc.target.origin == b"Subject: x\n\nbody\n"
    quota = drills.for_doctor(load_all()["e2e-over-quota"], side, None)
    [nb] = [c for c in quota.checks if isinstance(c, NoBounce)]
    assert nb.allowed == ("5.2.2",)  # a full mailbox bounces, saying so: as meant


def test_a_full_mailbox_bouncing_is_meant_but_no_other_bounce() -> None:
    doc = {"why": [{"budget_mode": "over-quota"}],
           "changes": [{"path": "/etc/postfix/master.cf", "modes": ["over-quota"]}]}
    plans = vf.plan(doc)
    sc = scenario("e2e-over-quota", {"spamdrill-deliver": ["delivered", "bounced"]})
    sc["messages"][1]["dsn"] = "5.2.2"
    [m] = vf.mark(doc["changes"], plans, vf.drilled(plans, run(sc), run(sc), SIDES))
    assert m.mark == vf.VERIFIED and "1 bounced as meant" in m.said
    sc["messages"][1]["dsn"] = "5.3.0"
    [m] = vf.mark(doc["changes"], plans, vf.drilled(plans, run(sc), run(sc), SIDES))
    assert m.mark == vf.NOT_VERIFIED


def test_the_command_refuses_an_unsafe_tarball_in_one_line(
        tmp_path: Path) -> None:
    from conftest import spamdrill_here as spamdrill

    bad = tarfile.TarInfo("etc/localtime")
    bad.type, bad.linkname = tarfile.SYMTYPE, "/usr/share/zoneinfo/UTC"
    path = _tar(tmp_path / "etc.tgz", [(tarfile.TarInfo("etc/maildroprc"), b"x\n"),
                                       (bad, b"")])
    done = spamdrill("doctor", "--etc", str(path), str(tmp_path / "mail.log"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "'etc/localtime': a link out of the tarball (to /usr/share/zoneinfo/UTC)" \
        in done.stderr


# ---- modes no end-to-end drill makes happen: a drill stands for each ----------------

STOOD_FOR = {"spamd-silent": "spamc-timeouts-silent", "spamd-slow-drip": "spamc-timeouts-drip",
             "spamd-rejected": "spamd-unreachable",
             "db-too-many-connections": "db-max-connections",
             "dns-db-servfail": "dns-db-servfail", "dns-db-nxdomain": "dns-db-nxdomain",
             "net-slow": "net-slow"}


def test_each_mode_without_an_end_to_end_drill_gets_the_drill_that_stands_for_it() -> None:
    """The plan: which drill for which mode. Each stand-in is shipped and makes that
    mode (its own failure mode, or for spamc-timeouts' fakes the listeners' mode);
    a mode with an end-to-end drill keeps it."""
    from spamdrill.drills.findings import LISTENER_MODE
    from spamdrill.drills.scenario import load_all

    known = load_all()
    doc = {"why": [{"budget_mode": m} for m in [*STOOD_FOR, "db-refused"]]}
    plans = vf.plan(doc, set(known))
    assert {p.mode: p.as_run for p in plans if not p.end_to_end} == STOOD_FOR
    assert [(p.mode, p.scenario, p.end_to_end) for p in plans if p.end_to_end] == [
        ("db-refused", "e2e-db-refused", True)]
    for p in plans:
        assert "stands for it" in p.why or p.end_to_end, p
        sc = known[str(p.scenario)]
        if p.mode in vf.LISTENERS:
            assert {LISTENER_MODE[n] for n in vf.LISTENERS[p.mode]} == {p.mode}
        else:
            assert sc.failure_mode() == p.mode, (p.mode, sc.name)
    # the wrapper that cannot run, or the drill missing: said, as for end-to-end ones
    [p] = vf.plan({"why": [{"budget_mode": "net-slow"}]}, blocked="no wrapper")
    assert p.scenario is None and p.why == "no wrapper"
    [p] = vf.plan({"why": [{"budget_mode": "net-slow"}]}, known=set())
    assert p.scenario is None and "not installed" in p.why


def test_a_stand_in_runs_with_the_sides_own_spamc() -> None:
    """spamc-timeouts' fakes narrowed to the mode's listeners, with the side's flags
    (scalable, spamdrill-spamc's deadline too) and the program they are for; a lab drill
    with no flags of its own gets the side's program (its flags: the runner's system
    flags); the drill's own checks and conditions stay; no --long needed."""
    from spamdrill.doctor import drills
    from spamdrill.drills.scenario import load_all
    from spamdrill.drills.targets import FakesTarget
    from spamdrill.lab.config import LabConfig

    known = load_all()
    base = LabConfig()
    after = msgspec.structs.replace(base, maildrop=msgspec.structs.replace(
        base.maildrop, spamc_args=("-t", "100", "--deadline=269")))
    side = drills.Side("after", after, "-t 100 --deadline=269", [], "spamdrill-deliver")
    [drip] = vf.plan({"why": [{"budget_mode": "spamd-slow-drip"}]})
    sc = drills.stand_in(known["spamc-timeouts"], side, drip)
    assert sc.name == "spamc-timeouts-drip" and not sc.long
    assert isinstance(sc.target, FakesTarget)
    [case] = sc.target.cases
    assert case.listeners == ("drip",) and case.client == "spamdrill-spamc"
    assert case.flag_sets == (("-t", "{t:100}", "--deadline={t:269}"),)
    assert sc.checks == known["spamc-timeouts"].checks
    [servfail] = vf.plan({"why": [{"budget_mode": "dns-db-servfail"}]})
    sc = drills.stand_in(known["dns-db-servfail"], side, servfail)
    assert sc.load.client == "spamdrill-spamc" and sc.target == known["dns-db-servfail"].target
    assert sc.conditions == known["dns-db-servfail"].conditions
    before = drills.Side("before", base, "-t 100", [], "maildrop_wrapper")
    assert drills.stand_in(known["dns-db-servfail"], before, servfail).load.client == "spamc"


def stood(name: str, rows: list[tuple[str, str, int]], verdict: str = "confirmed"
          ) -> dict[str, Any]:
    """A stand-in drill as a run holds it: spamc's outcomes, no fate (no Postfix), and
    its findings per case through the budget's layers: (case, finding, messages)."""
    fate = {"bounces": "bounced", "defers": "deferred", "loses mail": "lost",
            "delivers unscanned": "delivered unscanned"}
    sc = scenario(name, {}, verdict)
    sc["findings"] = [{"case": c, "mode": None, "finding": f, "fate": fate[f],
                       "fires_first": None, "worst_s": 9.0, "messages": n, "scanned": 0,
                       "unscanned": n, "lost": 0, "why": f"why {f}",
                       "crosses_budget": f in ("bounces", "loses mail")}
                      for c, f, n in rows]
    sc["messages"] = [{**message(c, "x", i), "fate": None, "outcome": "unscanned",
                       "peer": "drip"} for c, _f, n in rows for i in range(n)]
    return sc


def test_a_stand_in_verifies_by_the_wrappers_fate_read_off_the_budgets_layers() -> None:
    """Before: the drip outlives maildrop's timer and the wrapper bounces it; after:
    spamdrill-deliver defers at its deadline: verified. Still bouncing after: not
    verified. A drill's variants are one drill's results (db-max-connections/...)."""
    doc = {"why": [{"budget_mode": "spamd-slow-drip"}, {"budget_mode":
                                                         "db-too-many-connections"}],
           "changes": [{"path": "/etc/maildroprc", "modes": ["spamd-slow-drip"]},
                       {"path": "/etc/postfix/master.cf",
                        "modes": ["db-too-many-connections"]}]}
    plans = vf.plan(doc)
    before = run(stood("spamc-timeouts-drip", [("drip -t 3", "bounces", 2)]),
                 stood("db-max-connections/max-children-5", [("all", "bounces", 4)]),
                 stood("db-max-connections/max-children-50", [("all", "delivers unscanned",
                                                               4)]))
    after = run(stood("spamc-timeouts-drip", [("drip -t 3 --deadline=8", "defers", 2)]),
                stood("db-max-connections/max-children-5", [("all", "defers", 4)]),
                stood("db-max-connections/max-children-50", [("all", "bounces", 4)]))
    runs = vf.drilled(plans, before, after, SIDES)
    got = vf.mark(doc["changes"], plans, runs)
    assert [m.mark for m in got] == [vf.VERIFIED, vf.NOT_VERIFIED]
    assert "before: spamc: 2 unscanned; through maildrop_wrapper, by the budget's " \
        "layers: bounces (bounced: why bounces" in got[0].said
    assert "after: spamc: 2 unscanned; through spamdrill-deliver, by the budget's " \
        "layers: defers" in got[0].said
    assert "after: spamc: 8 unscanned" in got[1].said and "max-children-50" in got[1].said
    assert not vf.all_verified(got, runs)
    # a stand-in whose condition did not hold tells nothing, as an end-to-end drill
    after = run(stood("spamc-timeouts-drip", [("drip", "defers", 2)], "error"))
    [d, _] = vf.drilled(plans, before, after, SIDES)
    assert not d.after.could_tell and not d.after.within
    # missing from the run: not run
    [d, _] = vf.drilled(plans, before, run(), SIDES)
    assert d.after.said() == "not run"
