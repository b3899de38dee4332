"""spamdrill-deliver wrapping the real maildrop, with a real xfilter through the real spamc
to the lab's spamd."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spamdrill import corpus
from spamdrill.lab import maildrop
from spamdrill.lab.lab import LabState
from spamdrill.proto.postfix_pipe import judge

pytestmark = pytest.mark.lab

WRAPPER = [sys.executable, "-m", "spamdrill.deliver"]

pytestmark = pytest.mark.lab  # the real wrapper, stand-in or real MDAs


def deliver(lab: LabState, user: str, message: bytes, *mda: str) -> tuple[int, bytes, str]:
    argv = list(mda) or ["maildrop", str(lab.layout.maildroprc), user]
    done = subprocess.run([*WRAPPER, f"--recipient={user}", "--", *argv], input=message,
                          capture_output=True, timeout=120)
    out = done.stdout + done.stderr
    return done.returncode, out, judge(exit_status=done.returncode, signal=None,
                                       output=out).action


def test_delivery_into_maildir_through_spamc(lab: LabState) -> None:
    inbox = maildrop.count_messages(lab.layout, "carol")
    spam = maildrop.count_messages(lab.layout, "carol", ".Spam")
    assert deliver(lab, "carol", corpus.ham(71))[::2] == (0, "delivered")
    assert deliver(lab, "carol", corpus.gtube(71))[::2] == (0, "delivered")
    assert maildrop.count_messages(lab.layout, "carol") == inbox + 1
    assert maildrop.count_messages(lab.layout, "carol", ".Spam") == spam + 1
    filed = next((lab.layout.maildir("carol") / ".Spam" / "new").iterdir()).read_bytes()
    assert b"X-Spam-Flag: YES" in filed  # the real spamc -> spamd scanned it


def test_over_quota_defers_by_default(lab: LabState) -> None:
    maildirsize = lab.layout.maildir("bob") / "maildirsize"
    original = maildirsize.read_text()
    maildirsize.write_text("100S\n")
    try:
        code, out, action = deliver(lab, "bob", corpus.ham(72) + b"x" * 5000 + b"\r\n")
    finally:
        maildirsize.write_text(original)
    assert (code, action) == (75, "deferred")
    assert out.startswith(b"4.2.2 ") and b"maildir over quota" in out


def test_unknown_user_bounces_511(lab: LabState) -> None:
    _code, out, action = deliver(lab, "nosuchuser", corpus.ham(73),
                                "maildrop", "-d", "nosuchuser-spamdrill")
    assert action == "bounced" and out.startswith(b"5.1.1 "), out
    assert b"Invalid user specified" in out


def test_real_maildrop_reads_the_whole_message(lab: LabState) -> None:
    """Exit 0 counts only with the input read to its end: the real maildrop does, also for a
    message far larger than a pipe holds (and than spamc scans)."""
    inbox = maildrop.count_messages(lab.layout, "carol")
    big = corpus.ham(74) + (b"x" * 1000 + b"\r\n") * 1000
    code, out, action = deliver(lab, "carol", big)
    assert (code, action) == (0, "delivered"), out
    assert maildrop.count_messages(lab.layout, "carol") == inbox + 1
