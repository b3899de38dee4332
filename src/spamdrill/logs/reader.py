"""Reading the inputs: plain files, rotated ``.1``, ``.gz``, ``-`` for stdin; each file's
format sniffed (or given), its lines parsed to envelopes, and all inputs merged by time.

Thin I/O around ``formats``: a file is read once, line by line, so memory does not grow with
its size; several files are merged with ``heapq.merge`` (each file is in time order, as
its writer appended it). A line that cannot be read is counted under its reason and the
first few are kept for the report: never an exception.
"""

from __future__ import annotations

import gzip
import heapq
import io
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import IO, Any

from spamdrill.errors import SpamdrillError
from spamdrill.logs import formats
from spamdrill.logs.events import Line
from spamdrill.logs.formats import GARBLED, Entry, Skip
from spamdrill.logs.maildrop import LogfileParser

SNIFF_LINES = 50


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

    def public(self) -> dict[str, Any]:
        return {"input": self.index, "path": self.path, "format": self.format,
                "lines": self.lines, "entries": self.entries, "skipped": dict(self.skipped),
                "first": self.first, "last": self.last}


@dataclass(frozen=True)
class Filters:
    since: float | None = None
    until: float | None = None
    hosts: frozenset[str] = frozenset()
    year: int | None = None  # for year-less stamps (classic syslog); default: the file's
    tz: tzinfo | None = None
    format: str | None = None  # skip sniffing


Examples = list[tuple[Line, str]]
Sink = Callable[[Entry, int, int, str], None]  # entry, input, line number, line


def open_text(path: str) -> IO[str]:
    """``-`` is stdin; ``.gz`` is decompressed (by content, not only by name)."""
    try:
        if path == "-":
            return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        raw = open(path, "rb")  # noqa: SIM115 - returned open, closed by the caller
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8",
                                errors="replace")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


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

    def _lines(self, inp: Input) -> tuple[list[str], Iterator[str], IO[str]]:
        fh = open_text(inp.path)
        first: list[str] = []
        try:
            for raw in fh:
                first.append(raw)
                if len(first) >= SNIFF_LINES:
                    break
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise SpamdrillError(f"cannot read {inp.path}: {exc}") from None
        return first, itertools.chain(first, fh), fh

    def _open(self, inp: Input) -> tuple[Iterator[str], IO[str], Parser] | None:
        first, lines, fh = self._lines(inp)
        stripped = [ln.rstrip("\r\n") for ln in first]
        fmt = self.filters.format or formats.sniff(stripped)
        if fmt is None:
            fh.close()
            if not any(s.strip() for s in stripped):
                inp.format = "empty"
                return None
            raise SpamdrillError(f"{inp.path}: not a log format spamdrill reads",
                                 "formats: " + ", ".join(formats.FORMATS) + " (--format)")
        inp.format = fmt
        return lines, fh, make_parser(fmt, stripped, inp.path, self.filters)

    def _other(self, inp: Input, no: int, line: str, got: object) -> list[Entry]:
        """What is not one plain envelope: a maildrop record's entries, or a skip."""
        if type(got) is list:
            return got
        if type(got) is Entry:  # an envelope around NUL bytes
            self.skip(inp, no, line, GARBLED)
        elif isinstance(got, Skip):
            self.skip(inp, no, line, GARBLED if formats.garbled(line) else got.reason)
        return []

    def _entries(self, inp: Input) -> Iterator[tuple[float, int, Entry, int, str]]:
        """One input's envelopes as (ts, input, entry, line number, line): for merging."""
        opened = self._open(inp)
        if opened is None:
            return
        lines, fh, parse = opened
        idx, no = inp.index, 0
        try:
            for no, raw in enumerate(lines, 1):
                line = raw.rstrip("\r\n")
                if not line:
                    continue
                got = parse(line)
                if type(got) is Entry and "\x00" not in line:
                    yield got.ts, idx, got, no, line
                else:
                    for entry in self._other(inp, no, line, got):
                        yield entry.ts, idx, entry, no, entry.msg
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self.skip(inp, no + 1, "", f"unreadable ({exc})")
        finally:
            fh.close()
            inp.lines = no

    def _push(self, inp: Input, sink: Sink) -> None:
        """The fast path for one input without filters: no generator, no merge."""
        opened = self._open(inp)
        if opened is None:
            return
        lines, fh, parse = opened
        idx, no, count = inp.index, 0, 0
        first = last = None
        try:
            for no, raw in enumerate(lines, 1):
                line = raw.rstrip("\r\n")
                if not line:
                    continue
                got = parse(line)
                if type(got) is Entry and "\x00" not in line:
                    sink(got, idx, no, line)
                    count += 1
                    last = got.ts
                    if first is None:
                        first = last
                    continue
                for entry in self._other(inp, no, line, got):
                    sink(entry, idx, no, entry.msg)
                    count += 1
                    last = entry.ts
                    if first is None:
                        first = last
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self.skip(inp, no + 1, "", f"unreadable ({exc})")
        finally:
            fh.close()
            inp.lines, inp.entries, inp.first, inp.last = no, count, first, last

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
            # lines without a host (spamd's and maildrop's own files) pass --host
            if ts < since or ts > until or (hosts and entry.host and entry.host not in hosts):
                continue
            inp = inputs[idx]
            inp.entries += 1
            if inp.first is None:
                inp.first = ts
            inp.last = ts
            sink(entry, idx, no, line)
