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
from spamdrill.logs.reader import Filters, Reader
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Options

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


def _both(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(document, calls) by the compiled loop, then by the pure one."""
    docs, calls = [], []
    for pure in (False, True):
        with _pure(pure):
            assert (reader.compiled() is None) == pure
            doc = analyze([str(path)], Filters(year=2026, tz=UTC), Options(tz=UTC))
            docs.append(json.dumps(doc, sort_keys=True, default=str))
            rec = Calls()
            read = Reader([str(path)], Filters(year=2026, tz=UTC))
            read.run(rec)
            calls.append((rec.seen, [i.public() for i in read.inputs], read.examples))
    return docs, calls


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(DATA)))
def test_the_compiled_loop_reads_every_fixture_as_the_pure_one(path: Path) -> None:
    docs, calls = _both(path)
    assert docs[0] == docs[1]
    assert calls[0] == calls[1]


# what may stand between the envelope's fields: str.split's whitespace, and what is not
SEPARATORS = [" ", "  ", "\t", "\xa0", "\x1c", "\x1f", "\u2003", "\u3000", "\x85", "_", ""]
BAD = [b"\xff", b"\x00", b"\xe2\x82", b"\xc3", b"\r", b"\xed\xa0\x80"]


@st.composite
def _logs(draw: st.DrawFn) -> bytes:
    fields = {name: draw(field_text) for name in FIELDS}
    fields["qid"] = draw(st.sampled_from(["0A1B2C3D4E", "NOQUEUE", "ab", fields["qid"]]))
    lines = [ln.format(**fields) for ln in LINES]
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
