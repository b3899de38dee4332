"""The history of a drill: one record per message and one per fault window, on one monotonic
clock (ns), Jepsen-style; checks judge it afterwards. Stored as JSONL next to the run and in
a SQLite database of all runs."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spamdrill.errors import SpamdrillError


@dataclass
class MessageRecord:
    id: str
    kind: str
    size: int
    start_ns: int
    end_ns: int | None
    outcome: str  # spam | ham | unscanned | error | lost
    exit_code: int | None
    reason: str
    spamc_args: list[str]
    score: float | None = None
    case: str = ""  # the sub-case it belongs to (a listener and its flags; a wrapper)
    peer: str = "spamd"  # what spamc talked to: the lab's spamd, a fake's kind; "postfix"
    # end to end (through Postfix): its vocab.Fate, the DSN status of its last verdict,
    # how often Postfix deferred it, whether a delivered copy was intact
    fate: str = ""
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
        return self.outcome in ("spam", "ham")


@dataclass
class FaultWindow:
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
                fh.write(json.dumps({"type": "message", "scenario": scenario, **asdict(m)})
                         + "\n")
            for f in self.faults:
                fh.write(json.dumps({"type": "fault", "scenario": scenario, **asdict(f)})
                         + "\n")


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, started REAL, doc TEXT);
CREATE TABLE IF NOT EXISTS messages (run TEXT, scenario TEXT, case_name TEXT, id TEXT,
  kind TEXT, size INTEGER, start_ns INTEGER, end_ns INTEGER, outcome TEXT,
  exit_code INTEGER, reason TEXT, score REAL, spamc_args TEXT, worker TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS faults (run TEXT, scenario TEXT, name TEXT, start_ns INTEGER,
  end_ns INTEGER, detail TEXT);
"""


MESSAGE_COLUMNS = ("run", "scenario", "case_name", "id", "kind", "size", "start_ns", "end_ns",
                   "outcome", "exit_code", "reason", "score", "spamc_args", "worker")


def _migrate(conn: sqlite3.Connection) -> None:
    """A database written before messages had a worker gets the column (empty for them)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "worker" not in have:
        conn.execute("ALTER TABLE messages ADD COLUMN worker TEXT NOT NULL DEFAULT ''")


def store(db: Path, run: str, started: float, doc: dict[str, Any],
          histories: dict[str, History]) -> None:
    """Append one run to the SQLite database of runs."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
        _migrate(conn)
        conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                     (run, started, json.dumps(doc)))
        insert = (f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                  f"({', '.join('?' * len(MESSAGE_COLUMNS))})")
        for scenario, h in histories.items():
            conn.executemany(
                insert,
                [(run, scenario, m.case, m.id, m.kind, m.size, m.start_ns, m.end_ns,
                  m.outcome, m.exit_code, m.reason, m.score, json.dumps(m.spamc_args),
                  m.worker) for m in h.messages])
            conn.executemany(
                "INSERT INTO faults VALUES (?,?,?,?,?,?)",
                [(run, scenario, f.name, f.start_ns, f.end_ns, f.detail) for f in h.faults])


def list_runs(db: Path) -> list[dict[str, Any]]:
    """Every run the database holds, newest first: what ``store`` kept of each (the run's
    index entry, ``spamdrill.runmodel.index_entry``; runs recorded before the entry had
    scenarios show without them)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT run, started, doc FROM runs ORDER BY started DESC")
            return [{"run": run, "started": started, **_doc(doc)} for run, started, doc in rows]
    except sqlite3.Error as exc:
        raise SpamdrillError(f"{db} is not a spamdrill runs database: {exc}") from None


def _doc(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


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
        if entry["run"] == ref and entry.get("results_dir"):
            found = Path(entry["results_dir"]) / "report.json"
            if found.is_file():
                return found
    raise SpamdrillError(f"no run {ref!r}: not a report.json, a run directory, or a run id "
                         f"under {results_dir}", "list runs with: spamdrill history")
