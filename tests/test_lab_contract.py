"""One contract for the lab seam: the same verbs, in the same order, on the unit tier's
fake (``RecordingLab``) and on a real lab, must answer the same. The fake models a lab
(a global set reads back and its heal restores it, a paused server shows state T, a
stopped spamd or a killed database refuses until started again, a held lock is released
once however often it is healed); this is where that model is held to the lab it stands
for."""

from __future__ import annotations

import pytest

from spamdrill.drills.control import DbLock, LabControl, RealLab
from spamdrill.drills.nemesis.base import until
from spamdrill.drills.recording import RecordingLab
from spamdrill.lab.state import LabState

pytestmark = pytest.mark.lab


def walk(ctl: LabControl) -> list[object]:
    """Every database verb a fault uses, and what each answers."""
    seen: list[object] = [ctl.db_variable("max_connections"),
                          ctl.db_variable("max_user_connections"),
                          ctl.db_variable("lock_wait_timeout")]
    undo = ctl.set_db_variable("max_user_connections", 7)
    seen.append(ctl.db_variable("max_user_connections"))
    undo.heal()
    undo.heal()  # a second heal does nothing
    seen.append(ctl.db_variable("max_user_connections"))
    locks: tuple[DbLock, ...] = ("global-read", "bayes-write", "userpref-write")
    for lock in locks:
        held = ctl.hold_db_lock(lock)
        with ctl.db_sessions() as sessions:
            seen += [sessions.list(), sessions.kill(2**31 - 1)]  # no such session
        held.heal()
        held.heal()
    paused = ctl.pause_db()
    seen.append(until(lambda: ctl.db_process_state() == "T", 5))
    paused.heal()
    seen.append(until(lambda: ctl.db_process_state() in ("R", "S"), 5))
    seen.append(ctl.db_variable("max_connections"))  # it answers again
    seen += [ctl.accepts(ctl.db_endpoint()), ctl.spamd_answers(), ctl.db_link_counters()]
    seen.append(ctl.dns_actions_since(ctl.dns_mark()))
    stopped = ctl.stop_spamd()  # returns once spamd has exited
    seen += [ctl.accepts(ctl.spamd_endpoint()), ctl.spamd_answers()]
    stopped.heal()
    ctl.start_spamd()  # not awaited
    seen.append(until(ctl.spamd_answers, 60))
    killed = ctl.kill_db()
    seen.append(until(lambda: not ctl.accepts(ctl.db_endpoint()), 5))
    killed.heal()
    ctl.start_db()  # awaited: SELECT 1
    seen += [ctl.accepts(ctl.db_endpoint()), ctl.db_variable("max_connections")]
    return seen


def test_the_fake_lab_answers_as_a_real_lab_does(lab: LabState) -> None:
    fake = walk(RecordingLab())
    real = walk(RealLab(lab))
    assert fake == real
    assert real[:5] == [151, 100000, 86400, 7, 100000]  # and not because both are wrong
