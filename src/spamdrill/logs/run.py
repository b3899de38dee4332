"""``spamdrill logs`` end to end: read, analyze, and the document (anonymized if asked)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from datetime import datetime, tzinfo
from typing import Any

from spamdrill.errors import SpamdrillError
from spamdrill.logs.anonymize import anonymize
from spamdrill.logs.reader import Filters, Reader
from spamdrill.logs.summary import Analysis, Options, silence


def parse_when(text: str | None, tz: tzinfo | None, name: str) -> float | None:
    """``--since``/``--until``: an ISO 8601 date or date and time, in the logs' zone unless
    it names its own."""
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise SpamdrillError(f"{name} {text!r} is not a date or time",
                             "use ISO 8601, e.g. 2026-11-29 or '2026-11-29 15:55'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz) if tz is not None else dt.astimezone()
    return dt.timestamp()


def analyze(paths: list[str], filters: Filters, options: Options,
            anonymized: bool = False, seen: set[str] | None = None) -> dict[str, Any]:
    """The document of ``paths`` read as one join (``seen``: filled with the host names
    its Postfix messages and spamd lines carried)."""
    reader = Reader(paths, filters)
    analysis = Analysis(options)
    with _fewer_collections():
        reader.run(analysis)
    if seen is not None:
        seen.update(analysis.joiner.hosts_seen())
    examples = sorted(analysis.examples + reader.examples, key=lambda e: (e[0].src, e[0].no))
    analysis.examples[:] = examples[:20]
    analysis.inputs = [_input(inp.public(), analysis) for inp in reader.inputs]
    doc = analysis.document()
    doc["skipped"]["total"] += sum(sum(i.skipped.values()) for i in reader.inputs)
    doc["anonymized"] = False
    doc["empty"] = silence(doc, filters.format)
    return anonymize(doc) if anonymized else doc


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The join makes and drops many small objects, few of them in cycles: with the
    cyclic collector's default threshold it ran every 700 allocations and took a third of
    the time (benchmarks/logs_throughput.py). Less often, memory stays bounded still."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _input(public: dict[str, Any], analysis: Analysis) -> dict[str, Any]:
    for key in ("first", "last", "seen_first", "seen_last"):
        public[key] = analysis.count.iso(public[key])
    return public
