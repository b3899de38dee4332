"""The compiled reader loop (``spamdrill/logs/_fastloop.pyx``) against its reference, the
pure-Python ``reader.Feed.fast``: the same calls to the programs' readers, line for line,
and the same document, byte for byte, on every fixture and on generated logs (hostile
fields, odd whitespace between the envelope's fields, lines cut short, bad bytes, NUL
bytes, shuffled, CRLF ends, gzipped). Skipped where the extension is not built (no C
compiler): then only the pure path runs, and every other test covers it."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hostile import FIELDS, LINES, field_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill.logs import reader
from spamdrill.logs.formats import Entry, zone
from spamdrill.logs.join import Scan
from spamdrill.logs.reader import Filters, Reader
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Analysis, Options

DATA = Path(__file__).parent / "data" / "logs"
UTC = zone("UTC")
FIXTURES = [*sorted(p for p in DATA.rglob("*.log")), DATA / "mail.journal.json"]

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(importlib.util.find_spec("spamdrill.logs._fastloop") is None,
                                 reason="the compiled reader loop is not built")]


@contextmanager
def _pure(on: bool) -> Iterator[None]:
    old = os.environ.get(reader.PURE_ENV)
    os.environ[reader.PURE_ENV] = "1" if on else ""
    try:
        yield
    finally:
        if old is None:
            del os.environ[reader.PURE_ENV]
        else:
            os.environ[reader.PURE_ENV] = old


class Calls:
    """Every call the loop makes: to a program's reader, and each careful envelope."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def feed(self, entry: Entry, src: int, no: int, text: str) -> None:
        self.seen.append(("feed", no, entry, text))

    def handler(self, prog: str) -> Any:
        if prog.startswith("x"):
            return None  # a program nothing reads

        def handle(*args: Any) -> None:
            self.seen.append((prog, *args))

        return handle


def _scan(scan: Scan) -> tuple[Any, ...]:
    return (scan.host, scan.pid, scan.start, scan.last, scan.end, scan.mid, scan.user,
            scan.seconds, scan.size, scan.spam, scan.tests, scan.time_limit, scan.finished,
            scan.errors, [tuple(ln) for ln in scan.lines])


def _state(path: Path) -> tuple[Any, ...]:
    """What the join holds after reading ``path``, beyond what the document shows: every
    scan as it was filed, the lines kept for joining, the messages, the spamd hosts (the
    twins of the compiled loop write these)."""
    analysis = Analysis(Options(tz=UTC))
    join = analysis.joiner
    filed: list[tuple[Any, ...]] = []
    keep = join.on_scan

    def record(scan: Scan) -> None:
        filed.append(_scan(scan))
        if keep is not None:
            keep(scan)

    join.on_scan = record
    Reader([str(path)], Filters(year=2026, tz=UTC)).run(analysis)
    messages = [(m.key, m.last, m.client, m.mid, m.sender, m.size, m.removed)
                for m in join.messages.values()]
    kept = (join.maildrop.ts, join.maildrop.items, join.spamd.states.ts,
            join.spamd.states.items, join.spamd.max_children.items)
    hosts = (join.spamd.first, join.spamd.last,
             {h: g.items for h, g in join.spamd.gaps.items()}, join.hosts_seen(),
             join.evicted, [_scan(s) for s in join.children.values()],
             {mid: _scan(s) for mid, s in join.open_mids.items()})
    analysis.document()
    return filed, messages, kept, hosts


def _both(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(document, calls and the join's state) by the compiled loop, then by the pure one."""
    docs, calls = [], []
    for pure in (False, True):
        with _pure(pure):
            assert (reader.compiled() is None) == pure
            doc = analyze([str(path)], Filters(year=2026, tz=UTC), Options(tz=UTC))
            docs.append(json.dumps(doc, sort_keys=True, default=str))
            rec = Calls()
            read = Reader([str(path)], Filters(year=2026, tz=UTC))
            read.run(rec)
            calls.append((rec.seen, [i.public() for i in read.inputs], read.examples,
                          _state(path)))
    return docs, calls


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(DATA)))
def test_the_compiled_loop_reads_every_fixture_as_the_pure_one(path: Path) -> None:
    docs, calls = _both(path)
    assert docs[0] == docs[1]
    assert calls[0] == calls[1]


# what may stand between the envelope's fields: str.split's whitespace, and what is not
SEPARATORS = [" ", "  ", "\t", "\xa0", "\x1c", "\x1f", "\u2003", "\u3000", "\x85", "_", ""]
BAD = [b"\xff", b"\x00", b"\xe2\x82", b"\xc3", b"\r", b"\xed\xa0\x80"]


# lines the compiled loop reads itself (twins of their Python steps), with hostile fields
_READ_HERE = [
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: checking message <{mid}> for {user}:104",
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: clean message (2.1/5.0) for {user}:104 in "
    "6.2 seconds, 1058 bytes.",
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: identified spam (999.0/5.0) for {user}:104 "
    "in 0.2 seconds, 994 bytes.",
    "Nov 29 16:10:30 spamd1 spamd[18810]: spamd: result: Y 999 - GTUBE,{text} scantime=0.2,"
    "size=994,user={user},uid=104,required_score=5.0,rhost=localhost,raddr=127.0.0.1,"
    "rport=1,mid=<{mid}>,autolearn=no",
    "Nov 29 16:10:30 spamd1 spamd[18786]: prefork: child states: {text}",
    "Nov 29 16:10:30 spamd1 spamd[18786]: prefork: child states: BI \t",
    "Nov 29 16:10:30 spamd1 spamd[18786]: prefork: server reached --max-children setting, "
    "consider raising it",
    "Nov 29 16:10:31 mx1 maildrop[19327]: File: /srv/mail/{user}/Maildir ({orig})",
    "Nov 29 16:10:31 mx1 maildrop[19327]: !Err: /srv/mail/{user}/Maildir (12)",
    "Nov 29 16:10:31 mx1 maildrop[19327]: Delivering: {sender} {user} /srv/mail/{user}/",
    "Nov 29 16:10:31 mx1 postfix/smtpd[19322]: disconnect from {host}[{ip}] ehlo=1 mail=1",
    "Nov 29 16:10:31 mx1 postfix/pipe[19323]: warning: {text}",
    "Nov 29 16:10:31 mx1 postfix/pipe[19323]: {qid}: {text}",
]


@st.composite
def _logs(draw: st.DrawFn) -> bytes:
    fields = {name: draw(field_text) for name in FIELDS}
    fields["qid"] = draw(st.sampled_from(["0A1B2C3D4E", "NOQUEUE", "ab", fields["qid"]]))
    lines = [ln.format(**fields) for ln in (*LINES, *_READ_HERE)]
    lines += draw(st.lists(st.sampled_from(_FIXTURE_LINES), max_size=12))
    lines = draw(st.permutations(lines))
    out = []
    for line in lines:
        how = draw(st.integers(0, 9))
        if how == 1:  # another separator between two of the envelope's fields
            at = draw(st.sampled_from([15, *[i for i, c in enumerate(line[:60]) if c == " "]]))
            line = line[:at] + draw(st.sampled_from(SEPARATORS)) + line[at + 1:]
        elif how == 2:  # cut short
            line = line[:draw(st.integers(0, len(line)))]
        elif how == 3:  # another pid, tag or program
            line = line.replace("[", draw(st.sampled_from(["[", "", "[[", "]["])), 1)
        elif how == 4:
            line = line.replace("mx1 ", draw(st.sampled_from(["x-unread[1]: ", "mx1  "])), 1)
        data = line.encode("utf-8", "surrogatepass")
        if how == 5:  # bad bytes
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from(BAD)) + data[at:]
        out.append(data)
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    return end.join(out) + draw(st.sampled_from([end, b""]))


_FIXTURE_LINES = (DATA / "mail.log").read_text().splitlines()[::7]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_logs(), packed=st.booleans())
def test_the_compiled_loop_reads_generated_logs_as_the_pure_one(data: bytes,
                                                                 packed: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mail.log"
        path.write_bytes(gzip.compress(data) if packed else data)
        docs, calls = _both(path)
    assert calls[0] == calls[1]
    assert docs[0] == docs[1]
