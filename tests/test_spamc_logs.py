"""``spamdrill logs`` joins spamdrill-spamc's syslog line to the delivery it filtered.

The lines are the real program's: spamdrill-spamc runs against a spamd that never answers
(a listening socket nobody accepts) and one that refuses, with ``-l`` (the same text it
sends to syslog, spamc.main.log); they are put in a classic mail.log beside the Postfix
lines of the delivery, as syslogd writes them (``host ident[pid]: text``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spamdrill.logs.formats import zone
from spamdrill.logs.maildrop import spamdrill_spamc_reason
from spamdrill.logs.reader import Filters
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Options

pytestmark = pytest.mark.unit

UTC = zone("UTC")
MESSAGE = b"From: a@example.test\r\nMessage-ID: <m1@example.test>\r\n\r\nhello\r\n"
POSTFIX = """\
Nov 29 16:05:28 mx1 postfix/smtpd[19310]: 4CE0F20CC80: client=unknown[127.0.0.1]
Nov 29 16:05:28 mx1 postfix/cleanup[19321]: 4CE0F20CC80: message-id=<m1@example.test>
Nov 29 16:05:28 mx1 postfix/qmgr[19307]: 4CE0F20CC80: from=<a@example.test>, size=992, \
nrcpt=1 (queue active)
Nov 29 16:06:29 mx1 spamdrill-spamc[19340]: {said}
Nov 29 16:06:29 mx1 postfix/pipe[19333]: 4CE0F20CC80: to=<bob@example.test>, \
relay=maildrop, delay=61, delays=0/0/0/61, dsn=2.0.0, status=sent (delivered via maildrop \
service)
Nov 29 16:06:29 mx1 postfix/qmgr[19307]: 4CE0F20CC80: removed
"""


def said(*flags: str, listen: bool, keep: Path | None = None) -> str:
    """What the real spamdrill-spamc logs for one check (its -l line without the ident)."""
    with socket.socket() as spamd:
        spamd.bind(("127.0.0.1", 0))
        if listen:
            spamd.listen()  # connects complete; nobody reads or answers
        args = [sys.executable, "-m", "spamdrill.spamc", "-d", "127.0.0.1", "-p",
                str(spamd.getsockname()[1]), "-l", *flags]
        if keep is not None:
            args.append(f"--keep-slow={keep}")
        done = subprocess.run(args, input=MESSAGE, capture_output=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, MESSAGE)  # failed open, whole
    text = done.stderr.decode()
    assert text.startswith("spamdrill-spamc: ") and text.count("\n") == 1, text
    return text.removeprefix("spamdrill-spamc: ").rstrip("\n")


def delivery(tmp_path: Path, line: str) -> dict[str, Any]:
    log = tmp_path / "mail.log"
    log.write_text(POSTFIX.format(said=line))
    doc = analyze([str(log)], Filters(year=2026, tz=UTC), Options(tz=UTC))
    (rec,) = doc["deliveries"]
    return rec


def test_a_deadline_and_the_kept_message_join_the_delivery(tmp_path: Path) -> None:
    keep = tmp_path / "slow"
    keep.mkdir(mode=0o700)
    text = said("--deadline=0.3", listen=True, keep=keep)
    (eml,) = keep.glob("*.eml")
    assert spamdrill_spamc_reason(text) == "deadline"
    rec = delivery(tmp_path, text)
    assert rec["queue_id"] == "4CE0F20CC80"
    shown = [e["text"] for e in rec["evidence"]]
    assert any("spamdrill-spamc[19340]: deadline:" in t and str(eml) in t for t in shown), shown
    assert f"spamdrill-spamc kept the message: spamdrill replay {eml}" in rec["notes"]


def test_a_refusal_is_spamds_refusal(tmp_path: Path) -> None:
    text = said("--deadline=5", "--connect-retries=1", listen=False)
    assert spamdrill_spamc_reason(text) == "refused", text
    rec = delivery(tmp_path, text)
    assert "spamd-refused" in rec["modes"]
    assert any("spamdrill-spamc[19340]: failed:" in e["text"] for e in rec["evidence"])
    assert not any("kept" in n for n in rec["notes"])


def test_each_line_spamdrill_spamc_writes_has_its_reason() -> None:
    cases = {
        "deadline: reading the message from stdin (20 bytes in 1.002s); nothing written, "
        "exit 75": "stdin-deadline",
        "deadline: connect to spamd timed out at the deadline; message passed through 0 "
        "after 4.001s": "connect-timeout",
        "deadline: connect to spamd timed out at the deadline (no time for another try); "
        "message passed through 0 after 0.004s": "deadline",
        "slow: 12.500s kept=/var/spool/slow/x.eml": "slow",
        "something else": "",
    }
    for text, reason in cases.items():
        assert spamdrill_spamc_reason(text) == reason, text
