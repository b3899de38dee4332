"""The history of a drill: one record per message and one per fault window, on one monotonic
clock (ns), Jepsen-style; checks judge it afterwards. Stored as JSONL next to the run and in
a SQLite database of all runs, whose ``runs`` table keeps each run's index entry
(``IndexEntry``) for ``spamdrill history``.

The records are msgspec Structs: the run document (``spamdrill.runmodel``), the JSONL, the
workers' wire (``spamdrill.dist.tally``) and the database encode and decode these same
types, so none can drift from another."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from spamdrill.errors import SpamdrillError
from spamdrill.vocab import Fate, Finding, Outcome, Verdict


class MessageRecord(msgspec.Struct):
    id: str
    kind: str
    size: int
    start_ns: int
    end_ns: int | None
    outcome: Outcome
    exit_code: int | None
    reason: str
    spamc_args: list[str]
    score: float | None = None
    case: str = ""  # the sub-case it belongs to (a listener and its flags; a wrapper)
    peer: str = "spamd"  # what spamc talked to: the lab's spamd, a fake's kind; "postfix"
    # end to end (through Postfix): its fate (None: it did not go through Postfix), the
    # DSN status of its last verdict, how often Postfix deferred it, whether a delivered
    # copy was intact
    fate: Fate | None = None
    dsn: str = ""
    deferrals: int = 0
    intact: bool | None = None
    # the joins of its story: Postfix's queue id and delays=a/b/c/d of its last attempt,
    # and spamd's own verdict on it (by Message-ID)
    queue_id: str = ""
    delays: str = ""
    spamd: str = ""
    message_id: str = ""  # its Message-ID header: how every log names it
    worker: str = ""  # the load's worker that ran spamc ("" for this process's own load)

    @property
    def seconds(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9

    @property
    def scanned(self) -> bool:
        return self.outcome in (Outcome.SPAM, Outcome.HAM)


class FaultWindow(msgspec.Struct):
    """One fault in effect: from its injection to its lift (``end_ns`` None: never lifted
    during the load, healed after it)."""

    name: str
    start_ns: int
    end_ns: int | None = None
    detail: str = ""


@dataclass
class History:
    messages: list[MessageRecord] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)

    def by_case(self) -> dict[str, list[MessageRecord]]:
        out: dict[str, list[MessageRecord]] = {}
        for m in self.messages:
            out.setdefault(m.case, []).append(m)
        return out

    def to_jsonl(self, path: Path, scenario: str) -> None:
        with path.open("a") as fh:
            for m in self.messages:
                fh.write(_line("message", scenario, m))
            for f in self.faults:
                fh.write(_line("fault", scenario, f))


def _line(kind: str, scenario: str, record: msgspec.Struct) -> str:
    return json.dumps({"type": kind, "scenario": scenario,
                       **msgspec.to_builtins(record)}) + "\n"


class ScenarioLine(msgspec.Struct, frozen=True, kw_only=True):
    """One scenario of a run as ``spamdrill history`` lists it."""

    name: str
    verdict: Verdict
    finding: Finding
    messages: int
    scanned: int
    unscanned: int
    lost: int  # lost or in error
    p50_s: float | None
    p99_s: float | None
    max_s: float | None


class IndexEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What the runs database keeps of a run (its ``runs`` row): the run's own fields
    and one line per scenario. Rows written before a field existed read with its
    default (no scenarios: shown as not recorded)."""

    run: str
    started: float
    version: int | None = None  # of the run's document
    results_dir: str = ""
    exit_status: int | None = None
    kind: str = "run"
    config: dict[str, Any] = {}
    scenarios: list[ScenarioLine] = []


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, started REAL, doc TEXT);
CREATE TABLE IF NOT EXISTS messages (run TEXT, scenario TEXT, case_name TEXT, id TEXT,
  kind TEXT, size INTEGER, start_ns INTEGER, end_ns INTEGER, outcome TEXT,
  exit_code INTEGER, reason TEXT, score REAL, spamc_args TEXT, worker TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS faults (run TEXT, scenario TEXT, name TEXT, start_ns INTEGER,
  end_ns INTEGER, detail TEXT);
"""


# the messages and faults tables: (run, scenario) and every field of the record, in its
# order and by its name (``case`` as ``case_name``, a word SQL keeps); a list as its JSON
_COLUMN = {"case": "case_name"}
MESSAGE_FIELDS = tuple(f.name for f in msgspec.structs.fields(MessageRecord))
MESSAGE_COLUMNS = ("run", "scenario", *(_COLUMN.get(f, f) for f in MESSAGE_FIELDS))
FAULT_FIELDS = tuple(f.name for f in msgspec.structs.fields(FaultWindow))


def _migrate(conn: sqlite3.Connection) -> None:
    """A database written before messages had a field gets its column (NULL for them,
    read as the field's default; a worker: empty)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "worker" not in have:
        conn.execute("ALTER TABLE messages ADD COLUMN worker TEXT NOT NULL DEFAULT ''")
    for column in MESSAGE_COLUMNS:
        if column not in have | {"worker"}:
            conn.execute(f"ALTER TABLE messages ADD COLUMN {column}")


def _row(run: str, scenario: str, record: msgspec.Struct) -> tuple[Any, ...]:
    values = msgspec.to_builtins(record).values()
    return (run, scenario, *(json.dumps(v) if isinstance(v, list) else v for v in values))


def store(db: Path, entry: IndexEntry, histories: dict[str, History]) -> None:
    """Append one run to the SQLite database of runs."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db, timeout=60) as conn:
        # one writer from the schema on: two runs that finish at once (doctor --verify's
        # before and after) would both see a column missing and both add it
        # (executescript would commit the BEGIN first, so the schema goes a statement
        # at a time)
        conn.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        _migrate(conn)
        run = entry.run
        conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                     (run, entry.started, msgspec.json.encode(entry).decode()))
        insert = (f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                  f"({', '.join('?' * len(MESSAGE_COLUMNS))})")
        for scenario, h in histories.items():
            conn.executemany(insert, [_row(run, scenario, m) for m in h.messages])
            conn.executemany("INSERT INTO faults VALUES (?,?,?,?,?,?)",
                             [_row(run, scenario, f) for f in h.faults])


_DEFAULTED = {f.name for f in msgspec.structs.fields(MessageRecord)
              if f.default is not msgspec.NODEFAULT}


def _message(row: tuple[Any, ...]) -> MessageRecord:
    """A messages row as its record: NULL in a column added after the row was written
    is the field's default; 0 and 1 are a bool where the field is one."""
    raw = dict(zip(MESSAGE_FIELDS, row, strict=True))
    raw["spamc_args"] = json.loads(raw["spamc_args"] or "[]")
    return msgspec.convert({k: v for k, v in raw.items()
                            if v is not None or k not in _DEFAULTED}, MessageRecord,
                           strict=False)


def histories(db: Path, run: str) -> dict[str, History]:
    """What ``store`` kept of a run's histories, per scenario, as their records."""
    out: dict[str, History] = {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            have = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
            # a database an older version wrote, not yet migrated: its missing columns NULL
            columns = ", ".join(c if c in have else "NULL" for c in MESSAGE_COLUMNS[2:])
            for scenario, *row in conn.execute(
                    f"SELECT scenario, {columns} FROM messages WHERE run = ? ORDER BY rowid",
                    (run,)):
                out.setdefault(scenario, History()).messages.append(_message(tuple(row)))
            for scenario, *row in conn.execute(
                    f"SELECT scenario, {', '.join(FAULT_FIELDS)} FROM faults WHERE run = ? "
                    "ORDER BY rowid", (run,)):
                out.setdefault(scenario, History()).faults.append(FaultWindow(*row))
    except (sqlite3.Error, msgspec.ValidationError, ValueError) as exc:
        raise SpamdrillError(f"{db} is not a spamdrill runs database: {exc}") from None
    return out


def list_runs(db: Path) -> list[IndexEntry]:
    """Every run the database holds, newest first: what ``store`` kept of each (the run's
    index entry, ``spamdrill.runmodel.index_entry``; runs recorded before the entry had
    scenarios show without them, a row that does not decode as its id and date alone)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT run, started, doc FROM runs ORDER BY started DESC")
            return [_entry(run, started, doc) for run, started, doc in rows]
    except sqlite3.Error as exc:
        raise SpamdrillError(f"{db} is not a spamdrill runs database: {exc}") from None


def _entry(run: str, started: float, text: str) -> IndexEntry:
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            return msgspec.convert({**doc, "run": run, "started": started}, IndexEntry)
    except (TypeError, ValueError, msgspec.ValidationError):
        pass
    return IndexEntry(run=str(run), started=float(started or 0))


def locate(results_dir: Path, ref: str) -> Path:
    """A run's document from what a user names: a report.json, a run directory, or a run
    id (under ``results_dir``, or wherever the runs database says it ran)."""
    path = Path(ref)
    if path.is_file():
        return path
    if path.is_dir() and (path / "report.json").is_file():
        return path / "report.json"
    if "/" not in ref and (results_dir / ref / "report.json").is_file():
        return results_dir / ref / "report.json"
    for entry in list_runs(results_dir / "runs.sqlite"):
        if entry.run == ref and entry.results_dir:
            found = Path(entry.results_dir) / "report.json"
            if found.is_file():
                return found
    raise SpamdrillError(f"no run {ref!r}: not a report.json, a run directory, or a run id "
                         f"under {results_dir}", "list runs with: spamdrill history")
