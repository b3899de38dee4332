"""Hostile recipient and sender text reaches the MDA byte for byte and is never executed,
and a 100 MB message passes through with flat memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.lab

WRAPPER = [sys.executable, "-m", "spamdrill.deliver"]

pytestmark = pytest.mark.lab  # the real wrapper, stand-in or real MDAs
CANARY = Path(tempfile.gettempdir()) / "spamdrill-pwned"

# pieces a shell would act on, mixed with arbitrary bytes (no NUL: argv cannot hold one)
SHELLISH = [b"$(touch " + bytes(CANARY) + b")", b"`touch " + bytes(CANARY) + b"`",
            b"; touch " + bytes(CANARY), b"'", b'"', b"\\", b"\n", b"|", b"&", b"*", b"~",
            b"-", b"--", b"--recipient=x", b"$HOME", b"\xff\xfe", b"\xc3\x28"]
hostile = st.lists(st.one_of(st.sampled_from(SHELLISH),
                             st.binary(min_size=1, max_size=20).filter(lambda b: 0 not in b)),
                   min_size=1, max_size=12).map(b"".join)


@settings(max_examples=60, deadline=None)
@given(recipient=hostile, sender=hostile)
def test_hostile_addresses_reach_the_mda_verbatim(recipient: bytes, sender: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "argv"
        # the stand-in MDA records its argv, NUL-separated, and reads the message
        mda = [b"/bin/sh", b"-c", b'printf "%s\\0" "$@" > "$0"; cat >/dev/null', bytes(out),
               b"-f", sender, b"-d", recipient]
        done = subprocess.run(
            [*map(os.fsencode, WRAPPER), b"--recipient=" + recipient, b"--sender=" + sender,
             b"--", *mda], input=b"msg\n", capture_output=True, timeout=60)
        assert done.returncode == 0, done.stdout
        assert out.read_bytes().split(b"\0")[:-1] == [b"-f", sender, b"-d", recipient]
    assert not CANARY.exists()


def test_100mb_message_with_flat_memory(tmp_path: Path) -> None:
    size = 100 * 1024 * 1024
    message = tmp_path / "big.eml"
    with message.open("wb") as fh:
        fh.write(b"Subject: big\n\n")
        chunk = b"x" * 1023 + b"\n"
        for _ in range(size // len(chunk)):
            fh.write(chunk)
    received = tmp_path / "received"
    rss = tmp_path / "rss"
    # GNU time forks the wrapper from a small process, so the peak it reports is the
    # wrapper's own (a fork of this test's interpreter would start from pytest's size)
    with message.open("rb") as stdin:
        done = subprocess.run(["/usr/bin/time", "-o", str(rss), "-f", "%M", *WRAPPER, "--",
                               "/bin/sh", "-c", 'cat > "$0"', str(received)],
                              stdin=stdin, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert received.stat().st_size == message.stat().st_size
    peak_kib = int(rss.read_text().split()[-1])
    assert peak_kib < 40 * 1024, peak_kib  # the message is 100 MiB
