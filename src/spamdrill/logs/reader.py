"""Reading the inputs: plain files, rotated ``.1``, ``.gz``, ``-`` for stdin; each file's
format sniffed (or given), its lines parsed to envelopes, and all inputs merged by time.

Thin I/O around ``formats``: a file is read once, a block at a time (a megabyte, decoded
and split in one go rather than line by line), so memory does not grow with its size;
several files are merged with ``heapq.merge`` (each file is in time order, as its writer
appended it). One file in the classic format without filters -- the common case,
``spamdrill logs /var/log/mail.log`` -- takes a loop of its own that hands each line to its
program's handler by the syslog tag, with no object per line. A line that cannot be read
is counted under its reason and the first few are kept for the report: never an
exception.
"""

from __future__ import annotations

import codecs
import gzip
import heapq
import io
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Protocol, cast

from spamdrill.errors import SpamdrillError
from spamdrill.logs import formats
from spamdrill.logs.events import Line
from spamdrill.logs.formats import GARBLED, Entry, Read, Skip
from spamdrill.logs.maildrop import LogfileParser

SNIFF_LINES = 50
BLOCK = 1 << 20
# what reading a file may raise past its first lines: it ends there, with a note
READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, zlib.error)


@dataclass
class Input:
    """One input and what reading it found."""

    index: int
    path: str
    format: str = ""
    lines: int = 0
    entries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None
    outside_window: int = 0  # envelopes --since/--until left out
    other_hosts: int = 0  # envelopes --host left out
    seen_first: float | None = None  # the first and last envelope read, filters aside
    seen_last: float | None = None

    def public(self) -> dict[str, Any]:
        return {"input": self.index, "path": self.path, "format": self.format,
                "lines": self.lines, "entries": self.entries, "skipped": dict(self.skipped),
                "first": self.first, "last": self.last,
                "outside_window": self.outside_window, "other_hosts": self.other_hosts,
                "seen_first": self.seen_first, "seen_last": self.seen_last}


@dataclass(frozen=True)
class Filters:
    since: float | None = None
    until: float | None = None
    hosts: frozenset[str] = frozenset()
    year: int | None = None  # for year-less stamps (classic syslog); default: the file's
    tz: tzinfo | None = None
    format: str | None = None  # skip sniffing


Examples = list[tuple[Line, str]]


class Sink(Protocol):
    """What takes the lines: the analysis (``summary.Analysis``)."""

    def feed(self, entry: Entry, src: int, no: int, text: str) -> None:
        """One line's envelope, its input, its line number, the line."""

    def handler(self, prog: str) -> Read | None:
        """What takes one program's lines (ts, host, pid, text, input, line number,
        line); None: the program is not read."""


def open_binary(path: str) -> io.BufferedIOBase:
    """``-`` is stdin; ``.gz`` is decompressed (by content, not only by name)."""
    try:
        if path == "-":
            return cast(io.BufferedIOBase, sys.stdin.buffer)
        raw = open(path, "rb")  # noqa: SIM115 - returned open, closed by the caller
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)
    return raw


Block = tuple[list[str], bool]  # lines, and whether any holds a NUL byte


def blocks(fh: io.BufferedIOBase,
           split: Callable[[str], list[str]] | None = None) -> Iterator[Block]:
    """The lines of a file, a block at a time, without their ends: UTF-8 with bad bytes
    replaced, and ``\\r\\n`` or a lone ``\\r`` ending a line as Python's text files read them
    (``io.IncrementalNewlineDecoder``). ``read1``: what a read gets before an error (a
    truncated ``.gz``) is kept, as a text stream keeps it. ``split``: what gives a block's
    text split at each ``\\n`` (the compiled loop's ``split_lines``), else ``str.split``."""
    decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")("replace"),
                                           translate=True)
    carry = ""
    while True:
        data = fh.read1(BLOCK)
        text = decoder.decode(data, final=not data)
        if text:
            text = carry + text if carry else text
            lines = split(text) if split is not None else text.split("\n")
            carry = lines.pop()
            if lines:
                yield lines, "\x00" in text
        if not data:
            break
    if carry:
        yield [carry], "\x00" in carry


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime if path != "-" else time.time()
    except OSError:
        return time.time()


def _year(first: list[str], path: str, filters: Filters) -> int:
    if filters.year is not None:
        return filters.year
    for line in first:
        if formats._looks_classic(line):
            day = line[4:6].strip()
            if day.isdigit():
                return formats.year_for(formats.MONTHS[line[:3]], int(day), _mtime(path))
    return time.localtime(_mtime(path)).tm_year


Parser = Any  # a callable line -> Entry | list[Entry] | Skip | None


def make_parser(fmt: str, first: list[str], path: str, filters: Filters) -> Parser:
    tz = filters.tz
    if fmt == "classic":
        return formats.ClassicParser(formats.YearClock(_year(first, path, filters), tz))
    if fmt == "iso":
        return formats.IsoParser()
    if fmt == "rfc5424":
        return formats.Rfc5424Parser()
    if fmt == "journal-json":
        return formats.journal_json
    if fmt == "spamd-file":
        return formats.SpamdFileParser(tz)
    if fmt == "maildrop-file":
        return LogfileParser(tz)
    raise SpamdrillError(f"unknown log format {fmt!r}", "known: " + ", ".join(
        formats.FORMATS))


class Reader:
    """Every input's envelopes, merged by time and filtered."""

    def __init__(self, paths: list[str], filters: Filters) -> None:
        if not paths:
            raise SpamdrillError("no log files given", "e.g. spamdrill logs /var/log/mail.log")
        if paths.count("-") > 1:
            raise SpamdrillError("stdin ('-') can be read only once")
        self.filters = filters
        self.inputs = [Input(i, p) for i, p in enumerate(paths)]
        self.examples: Examples = []
        for inp in self.inputs:  # fail early, before any reading: one clear line
            if inp.path != "-" and not Path(inp.path).is_file():
                raise SpamdrillError(f"cannot read {inp.path}: no such file")

    def skip(self, inp: Input, no: int, line: str, reason: str) -> None:
        inp.skipped[reason] = inp.skipped.get(reason, 0) + 1
        if len(self.examples) < 20:
            self.examples.append((Line(inp.index, no, line[:300]), reason))

    def _lines(self, inp: Input) -> tuple[list[str], Iterator[Block], io.BufferedIOBase]:
        """The first lines (for sniffing), and every block of lines from the first on."""
        fh = open_binary(inp.path)
        read = blocks(fh, _splitter())
        first: list[Block] = []
        try:
            while sum(len(b[0]) for b in first) < SNIFF_LINES:
                first.append(next(read))
        except StopIteration:
            pass
        except READ_ERRORS as exc:
            fh.close()
            raise SpamdrillError(f"cannot read {inp.path}: {exc}") from None
        head = [ln for b in first for ln in b[0]][:SNIFF_LINES]
        return head, _chain(first, read), fh

    def _open(self, inp: Input) -> tuple[Iterator[Block], io.BufferedIOBase, Parser] | None:
        first, lines, fh = self._lines(inp)
        fmt = self.filters.format or formats.sniff(first)
        if fmt is None:
            fh.close()
            if not any(s.strip() for s in first):
                inp.format = "empty"
                return None
            raise SpamdrillError(f"{inp.path}: not a log format spamdrill reads",
                                 "formats: " + ", ".join(formats.FORMATS) + " (--format)")
        inp.format = fmt
        return lines, fh, make_parser(fmt, first, inp.path, self.filters)

    def other(self, inp: Input, no: int, line: str, got: object) -> list[Entry]:
        """What is not one plain envelope: a maildrop record's entries, or a skip."""
        if type(got) is list:
            return got
        if type(got) is Entry:  # an envelope around NUL bytes
            self.skip(inp, no, line, GARBLED)
        elif isinstance(got, Skip):
            self.skip(inp, no, line, GARBLED if formats.garbled(line) else got.reason)
        return []

    def envelopes(self, inp: Input, parse: Parser, lines: list[str],
                  no: int) -> Iterator[tuple[Entry, int, str]]:
        """A block's envelopes as (entry, line number, line), line by line through the
        format's parser; ``no`` is the number of the line before the block."""
        for line in lines:
            no += 1
            if not line:
                continue
            got = parse(line)
            if type(got) is Entry and "\x00" not in line:
                yield got, no, line
            else:
                for entry in self.other(inp, no, line, got):
                    yield entry, no, entry.msg

    def _entries(self, inp: Input) -> Iterator[tuple[float, int, Entry, int, str]]:
        """One input's envelopes as (ts, input, entry, line number, line): for merging."""
        opened = self._open(inp)
        if opened is None:
            return
        read, fh, parse = opened
        idx, no = inp.index, 0
        try:
            for lines, _ in read:
                for entry, at, line in self.envelopes(inp, parse, lines, no):
                    yield entry.ts, idx, entry, at, line
                no += len(lines)
        except READ_ERRORS as exc:
            self.skip(inp, no + 1, "", f"unreadable ({exc})")
        finally:
            fh.close()
            inp.lines = no

    def _push(self, inp: Input, sink: Sink) -> None:
        """The fast path for one input without filters: no generator, no merge."""
        opened = self._open(inp)
        if opened is None:
            return
        read, fh, parse = opened
        feed = Feed(inp, sink, parse, self)
        try:
            for lines, nul in read:
                feed.block(lines, nul)
        except READ_ERRORS as exc:
            self.skip(inp, feed.no + 1, "", f"unreadable ({exc})")
        finally:
            fh.close()
            inp.lines, inp.entries, inp.first, inp.last = (feed.no, feed.entries, feed.first,
                                                           feed.last)
            inp.seen_first, inp.seen_last = inp.first, inp.last

    def run(self, sink: Sink) -> None:
        """Every input's envelopes, in time order, through the filters, to ``sink``."""
        f = self.filters
        if len(self.inputs) == 1 and f.since is None and f.until is None and not f.hosts:
            self._push(self.inputs[0], sink)
            return
        streams = [self._entries(inp) for inp in self.inputs]
        merged = streams[0] if len(streams) == 1 else heapq.merge(
            *streams, key=lambda item: item[0])
        since = f.since if f.since is not None else float("-inf")
        until = f.until if f.until is not None else float("inf")
        hosts, inputs = f.hosts, self.inputs
        for ts, idx, entry, no, line in merged:
            inp = inputs[idx]
            if inp.seen_first is None:
                inp.seen_first = ts
            inp.seen_last = ts
            if ts < since or ts > until:
                inp.outside_window += 1
                continue
            # lines without a host (spamd's and maildrop's own files) pass --host
            if hosts and entry.host and entry.host not in hosts:
                inp.other_hosts += 1
                continue
            inp.entries += 1
            if inp.first is None:
                inp.first = ts
            inp.last = ts
            sink.feed(entry, idx, no, line)


def hosts_named(path: str, filters: Filters) -> frozenset[str]:
    """The host names a file's first lines carry (empty: none, as in spamd's own file, or
    stdin, which is read once only): what ``cluster`` groups files by."""
    if path == "-":
        return frozenset()
    reader = Reader([path], filters)
    inp = reader.inputs[0]
    head, _, fh = reader._lines(inp)
    fh.close()
    fmt = filters.format or formats.sniff(head)
    if fmt is None:
        return frozenset()  # the run itself says what is wrong with it
    parse = make_parser(fmt, head, path, filters)
    found: set[str] = set()
    for line in head:
        got = parse(line) if line else None
        for entry in got if type(got) is list else [got]:
            if type(entry) is Entry and entry.host:
                found.add(entry.host)
    return frozenset(found)


_tag = formats.ClassicParser.tag
_UNSEEN: Any = object()
PURE_ENV = "SPAMDRILL_PURE"  # set (to anything but "" or "0"): the pure-Python loop


def compiled() -> Any:
    """The compiled loop (``_fastloop.fast``), or None: not built, built from an older
    ``_fastloop.pyx`` than the one beside it (a checkout not rebuilt), or ``SPAMDRILL_PURE``
    set. Asked per input, so a test can compare both paths in one process."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None
    try:
        from spamdrill.logs import _fastloop
    except ImportError:
        return None
    return None if _stale(_fastloop.__file__) else _fastloop.fast


def _splitter() -> Callable[[str], list[str]] | None:
    """The compiled loop's ``split_lines`` when the loop is there, else None."""
    if compiled() is None:
        return None
    from spamdrill.logs import _fastloop
    return cast(Callable[[str], list[str]], _fastloop.split_lines)


def _stale(built: str | None) -> bool:
    """A source beside the built module (the ``.pyx`` or a ``.pxi`` it includes) is newer
    than it (installed packages carry no source: never stale)."""
    try:
        made = os.stat(built or "").st_mtime
    except OSError:
        return False
    here = Path(__file__).parent
    for source in (here / "_fastloop.pyx", *here.glob("_*.pxi")):
        try:
            if os.stat(source).st_mtime > made:
                return True
        except OSError:
            continue
    return False


def _chain(first: list[Block], rest: Iterator[Block]) -> Iterator[Block]:
    yield from first
    yield from rest


class Feed:
    """One input's lines to the sink, a block at a time, counting what it reads.

    A classic syslog file takes ``fast``: each line split once, its stamp converted only
    when it changes, its syslog tag looked up in a table of handlers (one per tag), and
    handed to its program's handler as plain values. Any line that loop does not take
    goes the careful way (``one``), as every line of the other formats does (``slow``)."""

    def __init__(self, inp: Input, sink: Sink, parse: Parser, reader: Reader) -> None:
        self.inp, self.sink, self.parse, self.reader = inp, sink, parse, reader
        self.no = self.entries = 0
        self.first: float | None = None
        self.last: float | None = None
        self.classic = parse if isinstance(parse, formats.ClassicParser) else None
        # syslog tag -> handler, pid (the compiled loop keeps a third: the reader's inline)
        self.tags: dict[str, tuple[Read | None, str]] = {}
        self.handlers: dict[str, Read | None] = {}  # program -> handler
        self.inlines: dict[str, Any] = {}  # program -> what the compiled loop reads itself
        self.loop = compiled()

    def block(self, lines: list[str], nul: bool) -> None:
        if self.classic is None or nul:
            self.slow(lines)
            return
        start = 0
        while self.first is None and start < len(lines):  # the fast loop counts from one
            self.one(lines[start])
            start += 1
        rest = lines[start:] if start else lines
        if self.loop is not None:
            self.loop(self, rest, self.classic)
        else:
            self.fast(rest, self.classic)

    def _entry(self, entry: Entry, no: int, line: str) -> None:
        self.sink.feed(entry, self.inp.index, no, line)
        self.entries += 1
        self.last = entry.ts
        if self.first is None:
            self.first = entry.ts

    def slow(self, lines: list[str]) -> None:
        """Line by line through the format's parser (NUL bytes make a line garbled)."""
        for entry, no, line in self.reader.envelopes(self.inp, self.parse, lines, self.no):
            self._entry(entry, no, line)
        self.no += len(lines)

    def one(self, line: str) -> None:
        """A line the fast loop does not take, the careful way."""
        self.no += 1
        if not line:
            return
        got = self.parse(line)
        if type(got) is Entry:
            self._entry(got, self.no, line)
            return
        for entry in self.reader.other(self.inp, self.no, line, got):
            self._entry(entry, self.no, entry.msg)

    def learn(self, tag: str) -> tuple[Read | None, str] | None:
        """A syslog tag not seen yet: its program's handler and its pid (None: not a tag
        that ends the envelope). Tags are many (a pid each), programs few."""
        parsed = _tag(tag)
        if parsed is None:
            return None
        prog, pid = parsed
        handle = self.handlers.get(prog, _UNSEEN)
        if handle is _UNSEEN:
            handle = self.handlers[prog] = self.sink.handler(prog)
        if len(self.tags) > 50_000:
            self.tags.clear()
        info = self.tags[tag] = handle, pid
        return info

    def fast(self, lines: list[str], parser: formats.ClassicParser) -> None:
        """``Mon dd hh:mm:ss host tag[pid]: text`` with a stamp the clock takes: what
        ``ClassicParser`` does with it, inline. The reference of the compiled loop
        (``_fastloop.pyx``), which must give the same calls, line for line."""
        src, no, tags, stamp_of = self.inp.index, self.no, self.tags, parser.stamp
        prev, ts, last, entries = "\x00", None, self.last, self.entries
        for line in lines:
            no += 1
            parts = line.split(None, 5)
            if len(parts) == 6 and len(line) > 16 and line[15] == " ":
                if not line.startswith(prev):
                    prev = line[:15]
                    ts = stamp_of(prev)
                info = tags.get(parts[4]) or self.learn(parts[4])
                if info is not None and ts is not None:
                    entries += 1
                    last = ts
                    if info[0] is not None:
                        info[0](ts, parts[3], info[1], parts[5], src, no, line)
                    continue
            self.no, self.last, self.entries = no - 1, last, entries
            self.one(line)
            prev, last, entries = "\x00", self.last, self.entries
        self.no, self.last, self.entries = no, last, entries
