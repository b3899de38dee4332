"""The lab's journal: append-only JSON lines of typed records (what was started and
stopped, which namespaces exist, which faults were injected and healed), written *before*
each thing takes effect, so any later process can stop and heal what a killed one left.

One decoder for every record (``Journal.records``). A line that does not decode into a
record whose values make sense *for this lab* is skipped: the journal's values reach
``kill``, ``SET GLOBAL``, ``ip netns`` and file writes when a lab is taken down, so a forged
or corrupt line must never steer them (a path outside the run directory, a namespace
without the lab's tag, a server variable the lab never sets).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Annotated, Literal

import msgspec

Pid = Annotated[int, msgspec.Meta(gt=1)]
# the server variables a fault may change, and so the only ones a heal may set back
DbVariable = Literal["max_connections", "max_user_connections"]


class _Record(msgspec.Struct, kw_only=True, frozen=True, tag_field="event"):
    time: float = 0.0


class StartRecord(_Record, tag="start", frozen=True):
    """A process started (its session leader): pid and kernel start time, so a recycled pid
    is never taken for it."""

    name: str
    pid: Pid
    ticks: int | None
    log: str
    argv: list[str] = []


class StopRecord(_Record, tag="stop", frozen=True):
    name: str
    pid: Pid


class NetnsRecord(_Record, tag="netns", frozen=True):
    ns: str
    host_if: str = ""


class _Fault(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind"):
    pass


class Pause(_Fault, tag="pause", frozen=True):
    pid: Pid
    ticks: int | None


class DbGlobal(_Fault, tag="db-global", frozen=True):
    name: DbVariable
    old: int


class DnsRules(_Fault, tag="dns-rules", frozen=True):
    pass


class Nft(_Fault, tag="nft", frozen=True):
    ns: str


class ProxyShape(_Fault, tag="proxy-shape", frozen=True):
    """A lab proxy process shaped: spamd's way to MariaDB, or rspamd's to Redis."""

    link: Literal["spamd-db", "rspamd-redis"] = "spamd-db"


class Stopped(_Fault, tag="stopped", frozen=True):
    """A lab process stopped by a fault: a heal starts it again as the lab started it."""

    name: Literal["spamd", "mariadb", "rspamd", "redis"]


class QuotaFilled(_Fault, tag="quota-filled", frozen=True):
    """A lab user's Maildir filled to its quota (a filler file and a maildirsize line)."""

    user: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9]+$")]


AnyFault = Pause | DbGlobal | DnsRules | Nft | ProxyShape | Stopped | QuotaFilled


class FaultRecord(_Record, tag="fault", frozen=True):
    id: str
    fault: AnyFault


class HealedRecord(_Record, tag="healed", frozen=True):
    id: str


Record = StartRecord | StopRecord | NetnsRecord | FaultRecord | HealedRecord
_DECODER = msgspec.json.Decoder(Record)
_ENCODER = msgspec.json.Encoder()


class Journal:
    """The journal of the lab in ``path``'s directory. ``tag``: the lab's namespace tag,
    the only prefix a namespace it may delete can carry; ``marker``: the lab's marker, which
    a process must carry before a record about it is acted on (none: nothing is)."""

    def __init__(self, path: Path, tag: str = "", marker: str = "") -> None:
        self.path = path
        self.tag = tag
        self.marker = marker

    @property
    def root(self) -> Path:
        return self.path.parent

    def record(self, rec: Record) -> None:
        if not rec.time:
            rec = msgspec.structs.replace(rec, time=time.time())
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        fd = os.open(self.path, flags, 0o600)
        try:
            os.write(fd, _ENCODER.encode(rec) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[Record]:
        """Every valid record, in order; a line cut by a crash or forged is skipped."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, OSError):
            return []
        with os.fdopen(fd, "rb") as fh:
            lines = fh.read().splitlines()
        out: list[Record] = []
        for line in lines:
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                rec = _DECODER.decode(line)
                if self._plausible(rec):
                    out.append(rec)
        return out

    def _plausible(self, rec: Record) -> bool:
        if isinstance(rec, StartRecord):
            return _inside(Path(rec.log), self.root)
        if isinstance(rec, NetnsRecord):
            return (bool(self.tag) and rec.ns.startswith(f"spamdrill-{self.tag}-")
                    and rec.host_if in ("", f"sd{self.tag}c"))
        if isinstance(rec, FaultRecord) and isinstance(rec.fault, Nft):
            return bool(self.tag) and rec.fault.ns.startswith(f"spamdrill-{self.tag}-")
        return True

    def starts(self) -> list[StartRecord]:
        return [r for r in self.records() if isinstance(r, StartRecord)]

    def running(self) -> list[StartRecord]:
        """Starts not followed by a stop of the same pid, in start order."""
        live: dict[int, StartRecord] = {}
        for r in self.records():
            if isinstance(r, StartRecord):
                live[r.pid] = r
            elif isinstance(r, StopRecord):
                live.pop(r.pid, None)
        return list(live.values())

    def open_faults(self) -> list[FaultRecord]:
        recs = self.records()
        healed = {r.id for r in recs if isinstance(r, HealedRecord)}
        return [r for r in recs if isinstance(r, FaultRecord) and r.id not in healed]

    def namespaces(self) -> list[NetnsRecord]:
        return [r for r in self.records() if isinstance(r, NetnsRecord)]


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False
