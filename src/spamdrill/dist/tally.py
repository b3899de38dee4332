"""What came back from the workers (sans-IO): records over the wire, each message once,
and a ``lost`` record for every message whose record never arrived -- a dead worker's
messages are reported to the run, never silently dropped.

On the wire a record is ``msgspec.to_builtins(MessageRecord)`` (JSON between a shot and
its worker, msgpack in Locust's messages); it is read back through ``msgspec.convert``, so
a field of the wrong type (or an outcome outside the vocabulary) is refused, not stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from spamdrill.dist import plan
from spamdrill.history import MessageRecord

CHUNK = 500  # records per message: ~200 kB, well inside what ZeroMQ moves at once


def to_wire(record: MessageRecord) -> dict[str, Any]:
    wire: dict[str, Any] = msgspec.to_builtins(record)
    return wire


def from_wire(raw: Any) -> MessageRecord:
    return msgspec.convert(raw, MessageRecord, strict=True)


def chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class _Worker:
    share: plan.Share
    ids: dict[str, int]
    got: dict[str, MessageRecord] = field(default_factory=dict)
    finished: bool = False
    died: str = ""  # why, when it died


@dataclass
class Tally:
    """Records per worker, against what each was given (its share)."""

    workers: dict[str, _Worker] = field(default_factory=dict)
    strays: int = 0  # records for messages the worker was not given
    duplicates: int = 0

    def expect(self, name: str, share: plan.Share) -> None:
        self.workers[name] = _Worker(share, plan.message_ids(share))

    def add(self, name: str, records: Iterable[MessageRecord],
            shift: Callable[[int], int] = lambda ns: ns) -> int:
        """Keep each record of ``name``'s messages once, its stamps moved by ``shift``
        onto the master's clock; returns how many were new."""
        w = self.workers[name]
        new = 0
        for r in records:
            if r.id not in w.ids:
                self.strays += 1
            elif r.id in w.got:
                self.duplicates += 1
            else:
                w.got[r.id] = msgspec.structs.replace(
                    r, worker=name, start_ns=shift(r.start_ns),
                    end_ns=None if r.end_ns is None else shift(r.end_ns))
                new += 1
        return new

    def finish(self, name: str) -> None:
        self.workers[name].finished = True

    def die(self, name: str, why: str) -> None:
        if not self.workers[name].finished:
            self.workers[name].died = why

    def pending(self) -> list[str]:
        return [n for n, w in self.workers.items() if not w.finished and not w.died]

    def records(self, release_ns: int) -> list[MessageRecord]:
        """Every message of every share once: its record, or ``lost`` saying why."""
        out: list[MessageRecord] = []
        for name, w in self.workers.items():
            out += w.got.values()
            missing = [i for mid, i in w.ids.items() if mid not in w.got]
            why = w.died or ("its record never came back" if w.finished else
                             f"worker {name} did not finish in time")
            out += plan.lost(w.share, missing, name, why, release_ns)
        return out

    def notes(self) -> list[str]:
        lines = []
        for name, w in self.workers.items():
            missing = len(w.ids) - len(w.got)
            if w.died:
                lines.append(f"{w.died}: {missing} of its {len(w.ids)} messages lost")
            elif missing:
                lines.append(f"worker {name}: {missing} of its {len(w.ids)} messages never "
                             "reported back (lost)")
        if self.strays or self.duplicates:
            lines.append(f"ignored {self.strays} records of messages no worker was given "
                         f"and {self.duplicates} repeated records")
        return lines
