"""``spamdrill replay FILE``: one message through a private lab's real spamd, timed, with
SpamAssassin's debug output read for the rules that took the time.

The lab's spamd runs with ``--debug=rules-all,timing``: ``Plugin/Check.pm`` logs ``rules-all:
running <type> rule NAME`` before each rule, and ``Mail::SpamAssassin::timer_report``
logs ``timing: total N ms - phase: N (P%), ...`` per message. spamd's file log has
one-second stamps (``Logger/File.pm``: ``scalar localtime``), so a rule's time is the
time from its line to the next line of the same child, good to a second: enough to name
the rule a stuck scan was stuck in, which is what the postmaster needs. The sans-IO part
(``read_debug``) reads the log; ``replay`` is the thin I/O around a lab (``lab.up``,
``lab.down``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from spamdrill.errors import SpamdrillError
from spamdrill.logs.formats import Entry, SpamdFileParser
from spamdrill.proto.spamc_result import classify

DEBUG_AREAS = "rules-all,timing"
_RULE = re.compile(r"rules-all: running (?P<type>\S+) rule (?P<name>\S+)")
_TIMING = re.compile(r"timing: total (?P<total>[\d.]+) ms - (?P<phases>.*)")
_PHASE = re.compile(r"(?P<name>[^:,]+): (?P<ms>[\d.]+) \((?P<pc>[\d.]+)%\)")
_MID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.I | re.M)


@dataclass
class Debug:
    """What spamd's debug log says about one message's scan."""

    child: str = ""
    scan_s: float | None = None  # spamd's own scantime
    timing_ms: float | None = None
    phases: list[tuple[str, float]] = field(default_factory=list)  # slowest first
    rules: list[tuple[str, str, float]] = field(default_factory=list)  # (name, type, s)
    rules_run: int = 0


def _ours(entries: list[Entry], mid: str) -> tuple[str, list[Entry]]:
    """The child that scanned ``mid``, and its lines from that scan on."""
    for i, e in enumerate(entries):
        if e.msg.startswith(("spamd: processing message", "spamd: checking message")) \
                and (not mid or mid in e.msg):
            return e.pid, [x for x in entries[i:] if x.pid == e.pid]
    return "", []


def read_debug(entries: list[Entry], mid: str) -> Debug:
    """The scan of ``mid`` in these entries of spamd's log (sans-IO)."""
    child, mine = _ours(entries, mid)
    out = Debug(child=child)
    pending: tuple[str, str, float] | None = None
    durations: dict[tuple[str, str], float] = {}
    for e in mine:
        if pending is not None:  # the previous rule ran until this line
            name, kind, t0 = pending
            durations[(name, kind)] = durations.get((name, kind), 0.0) + e.ts - t0
            pending = None
        m = _RULE.search(e.msg)
        if m is not None:
            out.rules_run += 1
            pending = (m.group("name"), m.group("type"), e.ts)
            continue
        if _other(out, e.msg):
            break  # the timing report closes this scan's lines
    out.rules = sorted(((n, k, s) for (n, k), s in durations.items() if s > 0),
                       key=lambda r: -r[2])
    return out


def _other(out: Debug, msg: str) -> bool:
    """Read a timing report (True: the scan's last line) or the result line."""
    m = _TIMING.search(msg)
    if m is not None:
        out.timing_ms = float(m.group("total"))
        out.phases = sorted(((p.group("name").strip(), float(p.group("ms")))
                             for p in _PHASE.finditer(m.group("phases"))),
                            key=lambda p: -p[1])
        return True
    if msg.startswith("spamd: result: "):
        found = re.search(r"scantime=([\d.]+)", msg)
        if found is not None:
            out.scan_s = float(found.group(1))
    return False


def message_id(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    m = _MID.search(head)
    return m.group(1).decode(errors="replace") if m else ""


@dataclass
class Replay:
    file: str
    message_id: str
    size: int
    user: str
    spamc: list[str]
    seconds: float
    exit_code: int | None
    outcome: str
    reason: str
    score: float | None
    required: float | None
    debug: Debug

    def public(self) -> dict[str, Any]:
        d = self.debug
        return {
            "file": self.file, "message_id": self.message_id or None, "size": self.size,
            "user": self.user, "spamc": self.spamc, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code, "outcome": self.outcome,
            "reason": self.reason or None, "score": self.score, "required": self.required,
            "spamd_child": d.child or None, "spamd_scan_s": d.scan_s,
            "timing_ms": d.timing_ms,
            "phases": [{"phase": n, "ms": ms} for n, ms in d.phases],
            "rules_run": d.rules_run,
            "slow_rules": [{"rule": n, "type": k, "seconds": s} for n, k, s in d.rules],
        }


def _log_entries(path: Path, offset: int) -> list[Entry]:
    parse = SpamdFileParser(None)
    with path.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        entry = parse(line)
        if isinstance(entry, Entry):
            out.append(entry)
    return out


def _wait_for_result(path: Path, offset: int, mid: str, timeout: float) -> list[Entry]:
    """spamd logs its result after it answered, and the timing report after it closed the
    connection: wait for the report (a real check, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = _log_entries(path, offset)
        _, mine = _ours(entries, mid)
        if any(e.msg.startswith("dbg: timing: total") for e in mine):
            return entries
        if time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def replay(file: str, data: bytes, *, user: str, spamc_args: list[str],
           config: Any, timeout: float, progress: Any) -> Replay:
    """Bring a private lab up with spamd's debug areas on, send ``data`` through spamc,
    read the debug log, take the lab down."""
    from spamdrill.lab import lab as lab_ops

    spamd = config.spamd
    config = msgspec.structs.replace(config, spamd=msgspec.structs.replace(
        spamd, extra_args=(*spamd.extra_args, f"--debug={DEBUG_AREAS}")))
    base = Path(tempfile.mkdtemp(prefix="spamdrill-replay-", dir="/tmp"))
    base.chmod(0o755)  # spamd's unprivileged user must reach its run directory
    run_dir = base / "lab"
    try:
        state = lab_ops.up(run_dir, config, progress)
        log = state.layout.spamd_log
        offset = log.stat().st_size
        argv = ["spamc", "-d", state.spamd.host, "-p", str(state.spamd.port), "-u", user,
                *spamc_args]
        progress(f"spamc: {' '.join(argv[1:])}")
        t0 = time.monotonic()
        try:
            done = subprocess.run(state.client_argv(argv), input=data, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpamdrillError(f"spamc did not return within {timeout:g} s",
                                 "raise --timeout, or look at the spamd log") from None
        seconds = time.monotonic() - t0
        mid = message_id(data)
        entries = _wait_for_result(log, offset, mid, 30.0)
    finally:
        lab_ops.down(run_dir)
        shutil.rmtree(base, ignore_errors=True)
    got = classify(data, done.stdout, done.stderr.decode(errors="replace"), done.returncode)
    return Replay(file, mid, len(data), user, argv, seconds, done.returncode, got.outcome,
                  got.reason, got.score, got.required, read_debug(entries, mid))
