"""How ``spamdrill logs`` reads: a block at a time, and one classic file's lines through a
loop of their own (``reader.Feed``). Each must give what the line-by-line way gives: the
lines of Python's text files, and the envelopes of ``formats.ClassicParser``."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from spamdrill.errors import SpamdrillError
from spamdrill.logs import reader
from spamdrill.logs.diagnose import Thresholds
from spamdrill.logs.formats import ClassicParser, Entry, YearClock, zone
from spamdrill.logs.join import Joiner, Settings
from spamdrill.logs.reader import Filters, Reader, blocks
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Analysis, Options

DATA = Path(__file__).parent / "data" / "logs"
UTC = zone("UTC")

pytestmark = pytest.mark.unit


def _text_lines(data: bytes) -> list[str]:
    """What a text file gives, line by line, without the line ends."""
    fh = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")
    return [ln[:-1] if ln.endswith("\n") else ln for ln in fh]


def _block_lines(data: bytes) -> list[str]:
    return [ln for lines, _ in blocks(io.BufferedReader(io.BytesIO(data))) for ln in lines]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_blocks_give_the_lines_of_a_text_file(monkeypatch: pytest.MonkeyPatch,
                                              size: int) -> None:
    data = ("a\r\nb\rc\n\nd é\r\r\nlast é€ without end".encode()
            + b"\xff\xfe bad \xe2\x82 cut\n\r\x00nul\n")
    monkeypatch.setattr(reader, "BLOCK", size)  # ends, bad bytes, a character across blocks
    assert _block_lines(data) == _text_lines(data)


def test_blocks_say_which_hold_a_nul(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "BLOCK", 8)
    got = list(blocks(io.BufferedReader(io.BytesIO(b"clean\nline\nwith\x00nul\nend\n"))))
    assert any(nul for _, nul in got) and not got[0][1]
    assert [ln for lines, _ in got for ln in lines] == ["clean", "line", "with\x00nul", "end"]


class Recorder:
    """A sink that records what each line was handed as: by the fast loop (through a
    program's handler) or the careful way (an envelope)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def feed(self, entry: Entry, src: int, no: int, text: str) -> None:
        self.seen.append((no, entry.ts, entry.host, entry.prog, entry.pid, entry.msg, text))

    def handler(self, prog: str) -> Any:
        if prog.endswith("-unread"):
            return None  # a program nothing reads: counted, handed to no one

        def handle(ts: float, host: str, pid: str, msg: str, src: int, no: int,
                   text: str) -> None:
            self.seen.append((no, ts, host, prog, pid, msg, text))

        return handle


def _careful(lines: list[str]) -> list[tuple[Any, ...]]:
    """Each line through ``ClassicParser`` on its own, as every line was read before."""
    parse = ClassicParser(YearClock(2026, UTC))
    out = []
    for no, line in enumerate(lines, 1):
        got = parse(line)
        if type(got) is Entry and "\x00" not in line and not got.prog.endswith("-unread"):
            out.append((no, got.ts, got.host, got.prog, got.pid, got.msg, line))
    return out


@pytest.mark.parametrize("name", ["mail.log", "malformed.log", "raw/syslog.log"])
def test_the_fast_loop_hands_over_what_the_parser_reads(name: str) -> None:
    lines = _text_lines((DATA / name).read_bytes())
    rec = Recorder()
    read = Reader([str(DATA / name)], Filters(year=2026, tz=UTC))
    read.run(rec)
    assert rec.seen == _careful(lines)
    assert read.inputs[0].lines == len(lines)


def test_odd_shapes_go_the_careful_way(tmp_path: Path) -> None:
    lines = [
        "Dec 20 00:00:01 mx1 postfix/smtpd[1]: 0A1B2C3D4E: client=a[1.2.3.4]",
        "Dec 20 00:00:01.250 mx1 postfix/smtpd[1]: fractional seconds",
        "Dec 20 00:00:02 mx1 postfix/smtpd[1] : a space before the colon",
        "Dec 20 00:00:02 mx1 postfix/smtpd: no pid",
        "Dec 20 00:00:02 mx1 other-unread[7]: a program nothing reads",
        "Dec 20 00:00:02 mx1 ]: a tag of a bracket",
        "Dec 20 00:00:02 mx1 : a tag of a colon",
        "Dec 20 00:00:02\tmx1\tpostfix/qmgr[2]:\ttabs between the fields",  # unrecognized
        "Dec 20 00:00:02 mx1 postfix/qmgr[2]:   spaces before the text",
        "Dec 20 00:00:03 mx1 postfix/qmgr[2]:",
        "Dec 20  0:0:inf mx1 postfix/qmgr[2]: seconds of infinity",
        "Feb 30 00:00:03 mx1 postfix/qmgr[2]: no such day",
        "Jun  1 00:00:03 mx1 postfix/qmgr[2]: months ahead: a wrong year",
        "",
        "Dec 20 00:00:04 mx1 postfix/qmgr[2]: 0A1B2C3D4E: removed",
        "Dec 20 02:00:04.5 mx1 postfix/qmgr[2]: two hours later, the careful way",
        "Dec 20 00:00:04 mx1 postfix/qmgr[2]: the stamp before it: now two hours back",
    ]
    path = tmp_path / "odd.log"
    path.write_text("\n".join(lines) + "\n")
    rec = Recorder()
    read = Reader([str(path)], Filters(year=2026, tz=UTC))
    read.run(rec)
    assert rec.seen == _careful(lines)
    inp = read.inputs[0]
    assert inp.lines == len(lines) and inp.skipped == {"bad time": 4, "unrecognized": 1}
    assert inp.entries == len(lines) - 6  # five skipped, one empty


def _doc(path: Path) -> dict[str, Any]:
    return analyze([str(path)], Filters(year=2026, tz=UTC), Options(tz=UTC))


def test_a_nul_byte_sends_its_block_the_careful_way(tmp_path: Path) -> None:
    lines = (DATA / "mail.log").read_bytes().splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if b"smtpd" in ln and b"connect from" in ln)
    path = tmp_path / "nul.log"  # a line of a well-formed envelope, with a NUL in its text
    path.write_bytes(b"".join(lines[:at]) + lines[at].replace(b"connect", b"con\x00nect")
                     + b"".join(lines[at + 1:]))
    doc, clean = _doc(path), _doc(DATA / "mail.log")
    assert doc["inputs"][0]["skipped"] == {"garbled": 1}
    assert doc["inputs"][0]["entries"] == clean["inputs"][0]["entries"] - 1
    assert doc["totals"] == clean["totals"] and doc["episodes"] == clean["episodes"]


# forged lines of a known shape whose numbers Python cannot convert ("1.2.3"; more digits
# than int() takes): each a line cut short, never a traceback
FORGED = [
    "Nov 29 16:10:28 mx1 postfix/pipe[1]: 456C020CA16: to=<a@b>, relay=maildrop, "
    "delay=3.1.1, delays=0/0/0/3, dsn=2.0.0, status=sent (ok)",
    "Nov 29 16:10:28 mx1 postfix/qmgr[2]: 456C020CA16: from=<a@b>, size=" + "9" * 5000
    + ", nrcpt=1 (queue active)",
    "Nov 29 16:10:29 spamd1 spamd[3]: spamd: connection from x [127.0.0.1]:1 to port 2, fd 5",
    "Nov 29 16:10:30 spamd1 spamd[3]: spamd: clean message (2.1/5.0) for a:1 in 1.2.3 "
    "seconds, 5 bytes.",
    "Nov 29 16:10:31 spamd1 spamd[3]: spamd: result: .  2 - X scantime=1.2.3,size=5,user=a,"
    "uid=1,mid=<x@y>,autolearn=no",
    "Nov 29 16:10:31 spamd1 spamd[3]: spamd: result: .  2 - X scantime=1,size=" + "9" * 5000
    + ",user=a,uid=1,mid=<x@y>,autolearn=no",
]


@pytest.mark.parametrize("pure", ["1", ""], ids=["pure", "compiled"])
def test_forged_numbers_are_lines_cut_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            pure: str) -> None:
    monkeypatch.setenv(reader.PURE_ENV, pure)
    path = tmp_path / "forged.log"
    path.write_text("\n".join(FORGED) + "\n")
    doc = _doc(path)
    assert doc["inputs"][0]["skipped"] == {"truncated": 4}  # qmgr's: not a line it reads
    assert doc["totals"]["deliveries"] == 0


def test_a_corrupt_gzip_is_a_note_or_one_line(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "BLOCK", 4096)  # the good member spans many blocks
    raw = (DATA / "mail.log").read_bytes()
    lines = raw.count(b"\n") * 4
    late = tmp_path / "late.log.gz"  # a second gzip member whose data is not deflate's
    late.write_bytes(gzip.compress(raw * 4) + b"\x1f\x8b\x08\x00\0\0\0\0\0\xff"
                     + b"\xff" * 64)
    doc = _doc(late)
    assert doc["inputs"][0]["lines"] == lines  # all of the first member, then a note
    assert doc["inputs"][0]["skipped"] == {
        "unreadable (Error -3 while decompressing data: invalid block type)": 1}
    packed = gzip.compress(raw)
    early = tmp_path / "early.log.gz"  # bad at once: nothing to read
    early.write_bytes(packed[:200] + bytes(b ^ 0xA5 for b in packed[200:240]) + packed[240:])
    with pytest.raises(SpamdrillError, match=r"cannot read .*early\.log\.gz: Error -3"):
        _doc(early)  # the command line's one line, exit 2


def test_many_small_blocks_read_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = json.dumps(_doc(DATA / "mail.log"), sort_keys=True)
    monkeypatch.setattr(reader, "BLOCK", 997)  # lines cut across blocks, everywhere
    assert json.dumps(_doc(DATA / "mail.log"), sort_keys=True) == whole


class EveryLine(Joiner):
    """A join whose clock is asked after every line it takes, as it was before it was
    asked only when a line's time is new or something was queued."""

    __slots__ = ()  # swapped in for a Joiner: the same layout

    @property  # type: ignore[override]
    def dirty(self) -> bool:
        return True

    @dirty.setter
    def dirty(self, value: bool) -> None:
        pass


def _docs_by_joiner(path: Path) -> list[str]:
    options = Options(Thresholds(slow=5, slow_scan=4), Settings(late_window=0, horizon=100),
                      episode_gap=4, bucket=60, tz=UTC)
    docs = []
    for joiner in (Joiner, EveryLine):
        analysis = Analysis(options)
        analysis.joiner.__class__ = joiner
        read = Reader([str(path)], Filters(year=2026, tz=UTC))
        read.run(analysis)
        analysis.inputs = [i.public() for i in read.inputs]
        docs.append(json.dumps(analysis.document(), sort_keys=True, default=str))
    return docs


def test_the_clock_is_asked_whenever_it_could_release(tmp_path: Path) -> None:
    """A delivery line a second back in time (merged files), with nothing else pending:
    its late window (0 here) has passed already, so it is joined at once -- before the
    scan logged just after it -- as when every line asked the clock."""
    mid = "<m1@lab.test>"
    lines = [
        "Dec 20 00:00:10 mx1 postfix/smtpd[1]: 0A1B2C3D4E: client=a[192.0.2.1]",
        f"Dec 20 00:00:10 mx1 postfix/cleanup[2]: 0A1B2C3D4E: message-id={mid}",
        "Dec 20 00:00:10 mx1 postfix/qmgr[3]: 0A1B2C3D4E: from=<s@example.org>, size=900, "
        "nrcpt=1 (queue active)",
        "Dec 20 00:00:12 spamd1 spamd[9]: spamd: connection from localhost [127.0.0.1]:1 "
        "to port 783, fd 5",
        "Dec 20 00:00:11 mx1 postfix/pipe[4]: 0A1B2C3D4E: to=<alice@lab.test>, "
        "relay=maildrop, delay=0.5, delays=0/0/0/0.5, dsn=2.0.0, status=sent (delivered)",
        f"Dec 20 00:00:11 spamd1 spamd[5]: spamd: processing message {mid} for alice:104",
        "Dec 20 00:00:11 spamd1 spamd[5]: spamd: result: .  0 - NONE scantime=0.4,size=900,"
        f"user=alice,uid=104,required_score=5.0,rhost=localhost,mid={mid},autolearn=no",
        "Dec 20 00:00:13 mx1 postfix/qmgr[3]: 0A1B2C3D4E: removed",
    ]
    path = tmp_path / "back.log"
    path.write_text("\n".join(lines) + "\n")
    now, every_line = _docs_by_joiner(path)
    assert now == every_line
    [delivery] = json.loads(now)["deliveries"]  # joined before its scan was logged
    assert delivery["queue_id"] == "0A1B2C3D4E" and delivery["scans"] == []


def test_a_compiled_loop_older_than_its_source_is_not_used(tmp_path: Path) -> None:
    """A checkout whose ``_fastloop.pyx``, or a ``.pxi`` it includes, changed after the
    module was built runs the pure loop, not the old compiled one."""
    built = tmp_path / "_fastloop.so"
    built.write_bytes(b"")
    source = Path(reader.__file__).with_name("_fastloop.pyx")
    include = source.with_name("_spamdlines.pxi")
    newest = max(p.stat().st_mtime for p in (source, *source.parent.glob("_*.pxi")))
    os.utime(built, (0, source.stat().st_mtime - 1))
    assert reader._stale(str(built))
    os.utime(built, (0, newest + 1))
    assert not reader._stale(str(built))
    os.utime(built, (0, include.stat().st_mtime - 1))
    assert reader._stale(str(built))  # only the included file changed
    assert not reader._stale(None)
