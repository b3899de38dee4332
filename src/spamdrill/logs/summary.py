"""From lines to the report, sans-IO: the analysis pipeline and the JSON contract.

``Analysis`` gives each line to its program's reader (``postfix``, ``spamd``,
``maildrop``), which hands its values to the join (``join``); then it diagnoses
(``diagnose``), clusters episodes (``episodes``) and counts. Memory is bounded: counts are
kept for everything, full detail for at most ``limit`` deliveries per list. The document's
shape is the contract in docs/LOGS.md (``SCHEMA`` names its version).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from spamdrill import fixes
from spamdrill.logs import maildrop, postfix, spamd
from spamdrill.logs.diagnose import (
    LATE,
    NOT_FILTERED,
    SCANNED,
    SKIPPED,
    UNSCANNED,
    Diagnosis,
    Thresholds,
    diagnose,
    plain,
    quiet,
)
from spamdrill.logs.episodes import Episode, Episodes, filter_trouble, scan_trouble
from spamdrill.logs.events import Line, line
from spamdrill.logs.formats import After, Entry, Read, Skip
from spamdrill.logs.join import Attempt, Joiner, Message, Scan, Settings
from spamdrill.logs.spamdhosts import NO_CONTEXT
from spamdrill.vocab import MODE_INFO, Fate, Mode

SCHEMA = "spamdrill.logs/1"
STAGES = ("before_queue_manager", "in_queue_manager", "connection", "transmission")
LISTS = ("deliveries", "wrapper_bounced", "unscanned", "scanned_late", "unexplained")


def reader_for(prog: str, join: Joiner, after: After) -> Read | None:
    """Which program's reader reads a line, from its syslog tag (None: not needed)."""
    name = postfix.daemon(prog)
    if name is not None:
        return postfix.reader(name, join, after)
    name = prog.rsplit("/", 1)[-1]
    if name == "spamd":
        return spamd.reader(join, after)
    if name == "maildrop":
        return maildrop.maildrop_reader(join, after)
    if name in ("spamc", "spamdrill-spamc"):
        return maildrop.spamc_reader(join, after, name)
    if name in ("spamdrill-deliver", "wrapper"):
        return maildrop.wrapper_reader(join, after, prog)
    return None


@dataclass
class Options:
    thresholds: Thresholds = field(default_factory=Thresholds)
    settings: Settings = field(default_factory=Settings)
    episode_gap: float = 300.0
    bucket: float = 3600.0  # seconds per point of the stage-delay series
    limit: int = 200  # deliveries kept in full per list
    top: int = 5  # suspects named per episode
    tz: tzinfo | None = None


class Analysis:
    """Feed envelopes in time order; ``document()`` at the end."""

    def __init__(self, options: Options | None = None,
                 inputs: list[dict[str, Any]] | None = None) -> None:
        self.o = options or Options()
        self.inputs = inputs if inputs is not None else []
        self.joiner = Joiner(self.o.settings)
        self.count = Counts(self.o)
        self.joiner.on_scan = on_scan = self._scan
        self.joiner.fast_scan = (on_scan, self.count, self.o.thresholds.slow_scan,
                                 self._trouble)
        th = self.o.thresholds
        self.joiner.plain = is_plain = lambda attempt: plain(attempt, th)
        self.episodes = Episodes(self.joiner.scans_between, gap=self.o.episode_gap,
                                 slow_scan=self.o.thresholds.slow_scan,
                                 delay=self.o.settings.late_window + 1, top=self.o.top)
        self.after = self._after  # one object: the compiled loop knows it by identity
        self.joiner.fast_tick = (self.after, self, self.count, is_plain, th.slow,
                                 th.filtered, self.o.bucket, self.episodes, NO_CONTEXT,
                                 SCANNED, Counter, NOT_FILTERED, th.size_limit, SKIPPED)
        self.handlers: dict[str, Read | None] = {}
        self.truncated: Counter[tuple[int, str]] = Counter()  # (input, reason): known lines
        self.examples: list[tuple[Line, str]] = []  # the first few skipped lines

    def handler(self, prog: str) -> Read | None:
        """What reads one program's lines (None: a program the analysis does not read).
        Readers of whole files look it up once per syslog tag, then call it per line."""
        if prog not in self.handlers:
            self.handlers[prog] = reader_for(prog, self.joiner, self.after)
        return self.handlers[prog]

    def feed(self, entry: Entry, src: int, no: int, text: str) -> None:
        """One line's envelope (``text`` is the whole line, kept as evidence)."""
        read = self.handler(entry.prog)
        if read is not None:
            read(entry.ts, entry.host, entry.pid, entry.msg, src, no, text)

    def _after(self, took: bool | Skip, ts: float, src: int, no: int, text: str) -> None:
        """What a program's reader calls unless the join took its line and nothing is due:
        a line cut short is counted; a line the join took moves its clock on."""
        if took is True:
            self._tick(ts)
        elif took:
            self.skipped(line(src, no, text), took.reason)

    def _tick(self, ts: float) -> None:
        """After a line the join took whose time is new (or that queued something): what
        its time releases is diagnosed, and episodes move on."""
        joiner = self.joiner
        joiner.advance(ts)
        if joiner.ready:
            for attempt in joiner.ready:
                self._attempt(attempt)
            joiner.ready.clear()
        heap = self.episodes.heap
        if heap and heap[0][0] + self.episodes.delay < joiner.now:
            self.episodes.advance(joiner.now)

    def skipped(self, line: Line, reason: str) -> None:
        """A line that could not be read: counted per input, the first few kept."""
        self.truncated[(line.src, reason)] += 1
        if len(self.examples) < 20:
            self.examples.append((line, reason))

    def _attempt(self, attempt: Attempt) -> None:
        if attempt.plain:  # most mail: counted, nothing to say
            if not attempt.wrappers:
                self.count.plain(attempt, SCANNED if attempt.delivery.agent in
                                 self.o.thresholds.filtered else NOT_FILTERED)
                attempt.release()
                return
            scanned = quiet(attempt, self.o.thresholds)  # a wrapper said all was well
            if scanned is not None:
                self.count.plain(attempt, scanned)
                attempt.release()
                return
        diag = diagnose(attempt, self.o.thresholds)
        self.count.attempt(attempt, diag)
        if diag.problem and filter_trouble(diag):
            self.episodes.attempt(attempt, diag)
        attempt.release()

    def _scan(self, scan: Scan) -> None:
        self.count.scans += 1
        if scan.time_limit or scan.errors or scan.duration >= self.o.thresholds.slow_scan:
            self._trouble(scan)

    def _trouble(self, scan: Scan) -> None:
        """A scan that ran long, hit its time limit or failed: trouble if ``scan_trouble``
        says so (the compiled loop makes the first test itself)."""
        slow_scan = self.o.thresholds.slow_scan
        if scan_trouble(scan, slow_scan):
            self.count.slow_scans += 1
            self.episodes.scan(scan)
            self.joiner.dirty = True  # the next line's tick may release it

    def document(self) -> dict[str, Any]:
        self.joiner.finish()
        for attempt in self.joiner.ready:
            self._attempt(attempt)
        self.joiner.ready.clear()
        episodes = self.episodes.finish()
        return self.count.document(self, episodes)


def _next(diag: Diagnosis, qid: str) -> list[str]:
    """The commands to run next on this delivery: those of each mode of its chain, each
    once (``postcat -q`` only finds mail still queued: a deferred one)."""
    cmds = [c for m in diag.modes for c in fixes.next_commands(m, qid)]
    if not cmds and diag.problem:
        cmds = [fixes.POSTCAT.format(qid=qid), fixes.BUDGET]
    return list(dict.fromkeys(cmds))


# why a document holds no diagnosis: a cause, and what to try (``silence``)
EMPTY_INPUT, UNRECOGNISED, OUTSIDE_WINDOW, OTHER_HOSTS, NO_MAIL = (
    "empty input", "no line recognised", "nothing in the time window",
    "no line from these hosts", "no delivery or scan")


def silence(doc: dict[str, Any], fmt: str | None = None) -> dict[str, str] | None:
    """Why the document says nothing (None: it found deliveries or scans to judge). A log
    that gives no answer must not read as a log without trouble: the cause is named, for
    a warning and an exit status of its own."""
    t, inputs = doc["totals"], doc["inputs"]
    if t["deliveries"] or t["scans"]:
        return None
    lines = sum(i["lines"] for i in inputs)
    entries = sum(i["entries"] for i in inputs)
    outside = sum(i.get("outside_window", 0) for i in inputs)
    elsewhere = sum(i.get("other_hosts", 0) for i in inputs)
    if lines == 0:
        return {"cause": EMPTY_INPUT, "why": "the input is empty: 0 lines read"}
    if entries == 0 and outside:
        span = _span(inputs)
        return {"cause": OUTSIDE_WINDOW, "why": f"all {outside} line(s) read lie outside "
                f"--since/--until (the log runs {span})"}
    if entries == 0 and elsewhere:
        return {"cause": OTHER_HOSTS, "why": f"none of the {elsewhere} line(s) read comes "
                "from a host --host names"}
    if entries == 0:
        said = f"--format {fmt}" if fmt else "the sniffed format"
        return {"cause": UNRECOGNISED, "why": f"{said} recognised none of the {lines} "
                "line(s)" + ("" if fmt else " (try another --format)")}
    return {"cause": NO_MAIL, "why": f"{entries} line(s) read, none of them a Postfix "
            "delivery or a spamd scan: is this the mail log? (journald: journalctl -o json "
            "-u postfix@-.service -u spamd.service)"}


def mode_rows(modes: Counter[str], causes: Counter[str]) -> list[dict[str, Any]]:
    """The modes seen, in the vocabulary's order, each with its fix and next commands."""
    return [{"mode": m.value, "layer": MODE_INFO[m].layer.value,
             "means": MODE_INFO[m].means, "deliveries": modes[m.value],
             "root_cause": causes[m.value], "fix": fixes.fix(m),
             "next": fixes.next_commands(m)}
            for m in Mode if modes[m.value]]


def _span(inputs: list[dict[str, Any]]) -> str:
    firsts = [i["seen_first"] for i in inputs if i.get("seen_first")]
    lasts = [i["seen_last"] for i in inputs if i.get("seen_last")]
    if not firsts or not lasts:
        return "at times unknown"
    return f"from {min(firsts)} to {max(lasts)}"


@dataclass
class Counts:
    o: Options
    attempts: int = 0
    scans: int = 0
    slow_scans: int = 0
    fates: Counter[str] = field(default_factory=Counter)
    scanned: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    causes: Counter[str] = field(default_factory=Counter)
    slow: int = 0
    unexplained_count: int = 0
    hours: dict[int, Counter[str]] = field(default_factory=dict)
    buckets: dict[int, list[float]] = field(default_factory=dict)
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    listed: Counter[str] = field(default_factory=Counter)

    def plain(self, attempt: Attempt, scanned: str) -> None:
        """A delivery in time, scanned: only counted (``diagnose`` says the same)."""
        self.attempts += 1
        self.fates["delivered"] += 1
        self.scanned[scanned] += 1
        key = int(attempt.end // 3600)
        hour = self.hours.get(key)
        if hour is None:
            hour = self.hours[key] = Counter()
        hour["delivered"] += 1
        self._bucket(attempt)

    def attempt(self, attempt: Attempt, diag: Diagnosis) -> None:
        self.attempts += 1
        self.fates[diag.fate.value] += 1
        self.scanned[diag.scanned] += 1
        hour = self.hours.get(int(attempt.end // 3600))
        if hour is None:
            hour = self.hours[int(attempt.end // 3600)] = Counter()
        hour[diag.fate.value] += 1
        self._bucket(attempt)
        if diag.modes or diag.slow or diag.problem:  # the common delivery stops here
            self.modes.update(m.value for m in diag.modes)
            if diag.cause is not None:
                self.causes[diag.cause.value] += 1
            self.slow += diag.slow
            hour["slow"] += diag.slow
            hour.update(f"mode:{m.value}" for m in diag.modes)
            for name in self._lists_for(diag):
                self._keep(name, attempt, diag)

    def _lists_for(self, diag: Diagnosis) -> list[str]:
        names = []
        if diag.problem:
            names.append("deliveries")
        if Mode.WRAPPER_BOUNCED_TRANSIENT in diag.modes:
            names.append("wrapper_bounced")
        if diag.scanned == UNSCANNED and diag.fate is not Fate.BOUNCED:
            names.append("unscanned")
        if diag.scanned == LATE:
            names.append("scanned_late")
        if not diag.explained:
            self.unexplained_count += 1
            names.append("unexplained")
        return names

    def _keep(self, name: str, attempt: Attempt, diag: Diagnosis) -> None:
        self.listed[name] += 1
        kept = self.lists.setdefault(name, [])
        if len(kept) < self.o.limit:
            kept.append(self.record(attempt, diag, full=name == "deliveries"))

    def _bucket(self, attempt: Attempt) -> None:
        key = int(attempt.end // self.o.bucket)
        b = self.buckets.get(key)
        if b is None:  # count, 4 sums, 4 maxima, scan sum, scan max, scan count
            b = self.buckets[key] = [0.0] * 12
        a, q, c, d = attempt.delivery.delays
        b[0] += 1
        b[1] += a
        b[2] += q
        b[3] += c
        b[4] += d
        b[5], b[6], b[7], b[8] = max(b[5], a), max(b[6], q), max(b[7], c), max(b[8], d)
        for scan in attempt.scans:
            duration = scan.duration
            b[9] += duration
            b[10] = max(b[10], duration)
            b[11] += 1

    # -- the document ------------------------------------------------------------------

    def iso(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        return datetime.fromtimestamp(ts, self.o.tz).astimezone(self.o.tz).isoformat(
            timespec="seconds")

    def record(self, attempt: Attempt, diag: Diagnosis, full: bool) -> dict[str, Any]:
        d, msg = attempt.delivery, attempt.message
        rec: dict[str, Any] = {
            "time": self.iso(attempt.end), "host": msg.key[0], "queue_id": msg.key[1],
            "message_id": msg.mid or None, "from": msg.sender, "to": d.to,
            "orig_to": d.orig_to or None, "size": msg.size, "client": msg.client or None,
            "relay": d.relay, "attempt": attempt.number, "status": d.status, "dsn": d.dsn,
            "text": d.text, "delay": d.delay, "delays": dict(zip(STAGES, d.delays,
                                                               strict=True)),
            "fate": diag.fate.value, "scanned": diag.scanned, "slow": diag.slow,
            "modes": [m.value for m in diag.modes],
            "cause": diag.cause.value if diag.cause else None,
            "explained": diag.explained, "notes": diag.notes,
        }
        rec["fixes"] = [{"mode": m.value, "fix": fixes.fix(m)} for m in diag.modes]
        rec["next"] = _next(diag, msg.key[1])
        rec["scans"] = [self.scan(s, attempt) for s in attempt.scans]
        rec["evidence"] = [self.line(ln) for ln in diag.evidence]
        return rec

    def scan(self, s: Scan, attempt: Attempt) -> dict[str, Any]:
        return {"spamd_host": s.host, "child": s.pid, "started": self.iso(s.start),
                "seconds": round(s.duration, 2), "spamd_seconds": s.seconds,
                "finished": s.finished, "spam": s.spam, "time_limit": s.time_limit,
                "errors": [e.text for e in s.errors], "joined_by": attempt.joined_by,
                "spamd_user": s.user or None}

    def line(self, ln: Line) -> dict[str, Any]:
        return {"input": ln.src, "line": ln.no, "text": ln.text[:600]}

    def document(self, a: Analysis, episodes: list[Episode]) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "settings": self.settings(),
            "inputs": a.inputs,
            "totals": self.totals(a),
            "modes": self.mode_table(),
            "per_hour": self.per_hour(),
            "episodes": [self.episode(e) for e in episodes[-self.o.limit:]],
            "episodes_total": a.episodes.total,
        }
        for name in LISTS:
            doc[name] = self.lists.get(name, [])
            doc[f"{name}_total"] = self.listed[name]
        doc["still_queued"] = self.still_queued(a.joiner.open_messages())
        for (src, reason), n in a.truncated.items():
            if src < len(a.inputs):
                skipped = a.inputs[src].setdefault("skipped", {})
                skipped[reason] = skipped.get(reason, 0) + n
        doc["skipped"] = {
            "total": sum(a.truncated.values()),
            "examples": [{**self.line(ln), "reason": why} for ln, why in a.examples]}
        doc["plot"] = {"stage_delays": self.stage_delays(),
                       "outcomes_per_hour": self.per_hour()}
        return doc

    def settings(self) -> dict[str, Any]:
        th, s = self.o.thresholds, self.o.settings
        return {"slow_s": th.slow, "slow_scan_s": th.slow_scan, "size_limit": th.size_limit,
                "filtered_agents": list(th.filtered), "episode_gap_s": self.o.episode_gap,
                "late_window_s": s.late_window, "skew_s": s.skew,
                "bucket_s": self.o.bucket, "limit": self.o.limit}

    def totals(self, a: Analysis) -> dict[str, Any]:
        return {"deliveries": self.attempts, "fates": dict(self.fates),
                "scanned": dict(self.scanned), "slow": self.slow, "scans": self.scans,
                "slow_scans": self.slow_scans, "unexplained": self.unexplained_count,
                "messages_closed_early": a.joiner.evicted}

    def mode_table(self) -> list[dict[str, Any]]:
        return mode_rows(self.modes, self.causes)

    def per_hour(self) -> list[dict[str, Any]]:
        out = []
        for hour in sorted(self.hours):
            c = self.hours[hour]
            out.append({"hour": self.iso(hour * 3600),
                        **{f.value: c[f.value] for f in Fate if c[f.value]},
                        "slow": c["slow"],
                        "modes": {k[5:]: v for k, v in c.items() if k.startswith("mode:")}})
        return out

    def stage_delays(self) -> list[dict[str, Any]]:
        out = []
        for key in sorted(self.buckets):
            b = self.buckets[key]
            n = b[0]
            point: dict[str, Any] = {"t": self.iso(key * self.o.bucket), "deliveries": int(n)}
            for i, stage in enumerate(STAGES):
                point[stage] = {"mean": round(b[1 + i] / n, 3), "max": b[5 + i]}
            point["scan"] = ({"mean": round(b[9] / b[11], 3), "max": round(b[10], 2)}
                             if b[11] else None)
            out.append(point)
        return out

    def episode(self, ep: Episode) -> dict[str, Any]:
        doc = ep.public(self.o.top)
        for key in ("start", "end", "first_failure"):
            doc[key] = self.iso(doc[key])  # type: ignore[arg-type]
        for s in doc["started_by"]:  # type: ignore[attr-defined]
            s["scan_started"] = self.iso(s["scan_started"])
        return doc

    def still_queued(self, messages: list[Message]) -> list[dict[str, Any]]:
        out = []
        for msg in messages:
            if msg.attempts and msg.attempts[-1].delivery.status == "deferred":
                last = msg.attempts[-1]
                out.append({"host": msg.key[0], "queue_id": msg.key[1],
                            "message_id": msg.mid or None, "to": last.recipient,
                            "attempts": len(msg.attempts), "last": self.iso(last.end),
                            "text": last.delivery.text})
        return out[: self.o.limit]
