"""One delivery attempt's fate and the failure modes that explain it, sans-IO.

The modes are ``spamdrill.vocab.Mode``, the words ``spamdrill budget`` predicts with and the
drills inject. An attempt gets a chain, outermost first: what Postfix did (its time limit
fired), what the wrapper or maildrop did (a transient failure turned into a bounce;
maildrop's global timer), then why the filter was slow or failed (spamd silent, overloaded,
a scan past its time limit, the database or DNS), each backed by the lines that show it.
What the lines cannot explain stays unexplained, with the lines.

Readings of the programs' words (their sources, as quoted in ``postfix``, ``spamd``,
``maildrop``): pipe(8)'s ``Command time limit exceeded`` bounces (``pipe_command.c``);
maildrop's ``Timeout quota exceeded.`` is exit 75 (``globaltimer.C``), which Postfix
defers (``sys_exits.c``: 4.3.0) -- so a bounce carrying it was a wrapper's doing, as is a
bounce of ``maildir over quota.`` by ``Command died with status 100``. MariaDB Connector/C's
``Unknown server host 'H' (-3)`` is getaddrinfo's EAI_AGAIN (a resolver that does not
answer, or SERVFAIL: the log cannot tell them apart), ``(-2)`` EAI_NONAME (NXDOMAIN);
``Can't connect to server on 'H' (111)`` (ECONNREFUSED) or ``(115)`` (EINPROGRESS, a
refused non-blocking connect) a database that is not listening, ``(110)`` a connect that
timed out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from spamdrill.logs.events import Line
from spamdrill.logs.join import Attempt, Scan
from spamdrill.proto.postfix_pipe import SYSEXITS
from spamdrill.vocab import Fate, Mode


@dataclass(frozen=True)
class Thresholds:
    slow: float = 60.0  # a delivery (pipe's run time) at least this long is slow
    slow_scan: float = 30.0  # a spamd scan at least this long is slow
    size_limit: int = 250_000  # messages this big skip spamc (the maildroprc's $SIZE test)
    filtered: tuple[str, ...] = ("pipe",)  # delivery agents whose command runs spamc
    maildrop_timeout: float = 300.0  # maildrop's compiled-in global timeout (Debian)
    timeout_slack: float = 5.0  # a pipe time this close to it is taken as that timer


# scanned: the filter's verdict came back in time; late: spamd finished after the delivery;
# unscanned: spamd failed or never had it; skipped: too big to scan; unknown: no spamd log
# covers the delivery; n/a: not a filtered delivery
SCANNED, LATE, UNSCANNED, SKIPPED, UNKNOWN, NOT_FILTERED = (
    "scanned", "late", "unscanned", "skipped", "unknown", "n/a")


@dataclass
class Diagnosis:
    fate: Fate
    scanned: str
    slow: bool
    modes: list[Mode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: list[Line] = field(default_factory=list)

    @property
    def problem(self) -> bool:
        return (self.fate is not Fate.DELIVERED or self.slow
                or self.scanned in (LATE, UNSCANNED))

    @property
    def explained(self) -> bool:
        return bool(self.modes) or not self.problem

    @property
    def cause(self) -> Mode | None:
        """The innermost mode: what the chain comes down to."""
        return self.modes[-1] if self.modes else None


def _has(pattern: str) -> Callable[[str], bool]:
    rx = re.compile(pattern, re.I)
    return lambda text: rx.search(text) is not None


# what the delivery's text (Postfix's reason, the command's output) says: outermost first
_OUTER: tuple[tuple[Callable[[str], bool], Mode, str], ...] = (
    (_has(r"Command time limit exceeded"), Mode.POSTFIX_TIME_LIMIT,
     "pipe(8) killed the command at its time limit, and bounced the mail"),
    (_has(r"Timeout quota exceeded|global timeout"), Mode.MAILDROP_TIMEOUT,
     "maildrop's global timer fired (exit 75)"),
    (_has(r"over ?quota|mailbox full|(?<!timeout )quota exceeded"), Mode.OVER_QUOTA,
     "the recipient's mailbox is over quota"),
    (_has(r"user unknown|Invalid user specified|unknown user|no such user"),
     Mode.UNKNOWN_USER, "no such recipient"),
    (_has(r"error writing to filter|Unable to filter|filter failed"), Mode.FILTER_FAILED,
     "maildrop's xfilter failed"),
)
_said: dict[str, tuple[tuple[Mode, str], ...]] = {}


def _outer_modes(text: str) -> tuple[tuple[Mode, str], ...]:
    """The modes (and notes) ``_OUTER`` finds in a delivery's text, outermost first: the
    same few texts come back on every delivery (pipe's "delivered via ... service"), and
    five case-blind searches of each took more than the rest of counting it. Short texts
    only are kept (at most 1,024 of them): a forged line's long text is searched each time,
    and memory stays bounded."""
    found = _said.get(text)
    if found is None:
        found = tuple((mode, note) for test, mode, note in _OUTER if test(text))
        if len(text) <= 256:
            if len(_said) >= 1024:
                _said.clear()
            _said[text] = found
    return found


_DIED = re.compile(r"Command died with status (\d+)")
_TRANSIENT = (Mode.MAILDROP_TIMEOUT, Mode.OVER_QUOTA, Mode.FILTER_FAILED)

_SQL: tuple[tuple[Callable[[str], bool], Mode, str], ...] = (
    (_has(r"server host '[^']*' \(-?2\)|Name or service not known"), Mode.DNS_DB_NXDOMAIN,
     "the database's name does not exist (NXDOMAIN)"),
    (_has(r"server host '[^']*' \(-?3\)|Temporary failure in name resolution"),
     Mode.DNS_DEAD, "the database's name did not resolve: the resolver did not answer "
                    "(or answered SERVFAIL; the log cannot tell which)"),
    (_has(r"Unknown (MySQL )?server host"), Mode.DNS_DB_NXDOMAIN,
     "the database's name did not resolve"),
    (_has(r"Too many connections|max_user_connections"), Mode.DB_TOO_MANY_CONNECTIONS,
     "the database's connection limit was reached"),
    (_has(r"Lock wait timeout|Deadlock"), Mode.DB_LOCKED, "a query waited on a lock"),
    (_has(r"Can't connect to .*\((110|113)\)|child processing timeout|timed out"),
     Mode.DB_UNREACHABLE, "the database did not answer in time (or its name did not "
                          "resolve in time)"),
    (_has(r"Can't connect|Connection refused|Lost connection|gone away"), Mode.DB_REFUSED,
     "the database refused or dropped the connection"),
)


def plain(attempt: Attempt, th: Thresholds) -> bool:
    """Delivered, not slow, and scanned in time (or not a filtered delivery): the common
    case, which needs no more than its own lines."""
    d = attempt.delivery
    if d.status != "sent" or d.delays[3] >= th.slow:
        return False
    if d.agent not in th.filtered:
        return True
    for scan in attempt.scans:  # noqa: SIM110 - any() of a generator: twice the time
        if in_time(scan, attempt):
            return True
    return False


def quiet(attempt: Attempt, th: Thresholds) -> str | None:
    """An attempt ``plain`` took, with wrapper lines: when they said all was well and its
    text names no mode, ``diagnose`` finds it delivered with nothing to show, and this
    says so without building the diagnosis: its ``scanned``. None: diagnose it."""
    d = attempt.delivery
    if d.dsn == "5.1.1":
        return None
    if _outer_modes(d.text):
        return None
    for w in attempt.wrappers:  # what _wrapper_lost looks for
        if w.mda.startswith("status=") and w.mda != "status=0" and w.outcome != "defer":
            return None
    return _scanned(attempt, th)


def in_time(scan: Scan, attempt: Attempt) -> bool:
    """The scan's verdict came back before the delivery ended: it started before that,
    and its result was logged by the next second (spamd logs after it answered)."""
    return scan.finished and scan.start <= attempt.end and scan.end is not None \
        and scan.end <= attempt.end + 1.0


def diagnose(attempt: Attempt, th: Thresholds) -> Diagnosis:
    d = attempt.delivery
    if plain(attempt, th) and not attempt.wrappers:
        scanned = SCANNED if d.agent in th.filtered else NOT_FILTERED
        return Diagnosis(Fate.DELIVERED, scanned, False, evidence=[d.line])
    diag = Diagnosis(_fate(d.status), _scanned(attempt, th), d.delays[3] >= th.slow)
    diag.evidence.append(d.line)
    diag.evidence.extend(w.line for w in attempt.warnings)
    _outer(attempt, diag)
    if d.agent in th.filtered:
        _silent_timeout(attempt, diag, th)
    if d.agent in th.filtered and _wants_inner(diag):
        _inner(attempt, diag, th)
    if diag.fate is Fate.DELIVERED and diag.scanned in (LATE, UNSCANNED):
        diag.fate = Fate.DELIVERED_UNSCANNED
    _wrapper_lost(attempt, diag)
    if not (diag.modes or diag.slow or diag.problem):
        return diag  # nothing to show (a wrapper's line said all was well): no evidence
    diag.evidence.extend(w.line for w in attempt.wrappers)
    diag.evidence.extend(m.line for m in attempt.maildrop)
    diag.evidence.extend(e.line for e in attempt.spamc)
    diag.notes.extend(f"spamdrill-spamc kept the message: spamdrill replay {e.extra['kept']}"
                      for e in attempt.spamc if e.extra.get("kept"))
    if diag.problem and not diag.modes:
        diag.notes.append("no line explains this: the lines around it are shown")
    diag.evidence = _unique(diag.evidence)[:24]
    return diag


def _fate(status: str) -> Fate:
    return {"sent": Fate.DELIVERED, "deferred": Fate.DEFERRED, "bounced": Fate.BOUNCED,
            "expired": Fate.BOUNCED}.get(status, Fate.DEFERRED)


def _scanned(attempt: Attempt, th: Thresholds) -> str:
    d = attempt.delivery
    if d.agent not in th.filtered:
        return NOT_FILTERED
    size = attempt.message.size
    if size is not None and size >= th.size_limit:
        return SKIPPED
    done = [s for s in attempt.scans if s.finished]
    if any(in_time(s, attempt) for s in done):
        return SCANNED
    if done:
        return LATE
    ctx = attempt.spamd
    if attempt.scans or ctx.covered or ctx.down or ctx.silent:
        return UNSCANNED if d.status == "sent" or attempt.scans or ctx.down else UNKNOWN
    return UNKNOWN


def _outer(attempt: Attempt, diag: Diagnosis) -> None:
    text = attempt.delivery.text
    for mode, note in _outer_modes(text):
        diag.modes.append(mode)
        diag.notes.append(note)
    if attempt.delivery.dsn == "5.1.1" and Mode.UNKNOWN_USER not in diag.modes:
        diag.modes.append(Mode.UNKNOWN_USER)
        diag.notes.append("no such recipient (5.1.1)")
    died = _DIED.search(text)
    transient = [m for m in diag.modes if m in _TRANSIENT]
    if attempt.delivery.status == "bounced" and died and transient and \
            int(died.group(1)) not in SYSEXITS:
        diag.modes.insert(0, Mode.WRAPPER_BOUNCED_TRANSIENT)
        diag.notes.insert(0, f"the command exited {died.group(1)}, which Postfix bounces: "
                             f"maildrop's failure ({transient[0].value}) was temporary "
                             "and Postfix would have retried it")


def _silent_timeout(attempt: Attempt, diag: Diagnosis, th: Thresholds) -> None:
    """A permanent bounce at maildrop's global timeout that carries none of maildrop's
    words: a wrapper (the field report's Perl ones) that exits 100 on maildrop's 75
    without passing its output on. The pipe time is the evidence: maildrop's timer fires
    at its timeout after it starts, a moment after the command did."""
    d = attempt.delivery
    if d.status != "bounced" or diag.modes or d.dsn[:1] != "5":
        return
    died = _DIED.search(d.text)
    if died is None or int(died.group(1)) in SYSEXITS:
        return
    pipe_s, limit = d.delays[3], th.maildrop_timeout
    if abs(pipe_s - limit) > th.timeout_slack:
        return
    diag.modes += [Mode.WRAPPER_BOUNCED_TRANSIENT, Mode.MAILDROP_TIMEOUT]
    diag.notes += [
        f"probably maildrop's timeout turned into a bounce by the wrapper: the command "
        f"ran {pipe_s:g} s (delays=.../{pipe_s:g}), within {th.timeout_slack:g} s of "
        f"maildrop's {limit:g} s global timeout, and exited {died.group(1)} (which "
        "Postfix bounces) with none of maildrop's words",
        "maildrop's global timer fired (exit 75), as far as the time shows"]


def _wants_inner(diag: Diagnosis) -> bool:
    """Whether the filter's side matters: a timeout, a slow or unscanned delivery."""
    timed_out = Mode.MAILDROP_TIMEOUT in diag.modes or Mode.POSTFIX_TIME_LIMIT in diag.modes
    return timed_out or diag.slow or diag.scanned in (LATE, UNSCANNED)


def _inner(attempt: Attempt, diag: Diagnosis, th: Thresholds) -> None:
    found: list[tuple[Mode, str, list[Line]]] = []
    for scan in attempt.scans:
        found += _from_scan(scan, attempt, th)
    # log stamps are whole seconds: a scan is after the delivery only a second past it
    if not attempt.scans or all(s.start > attempt.end + 1.0 for s in attempt.scans):
        found += _without_scan(attempt, th)
    for mode, note, lines in found:
        if mode not in diag.modes:
            diag.modes.append(mode)
            diag.notes.append(note)
        diag.evidence.extend(lines)
    for scan in attempt.scans:
        diag.evidence.extend(scan.lines[:8])


def _sql_modes(scan: Scan) -> list[tuple[Mode, str, list[Line]]]:
    out: list[tuple[Mode, str, list[Line]]] = []
    for err in scan.errors:
        for test, mode, note in _SQL:
            if err.kind == "sql-error" and test(err.text):
                out.append((mode, note, [err.line]))
                break
        if err.kind == "timeout" and "second timeout while trying" in err.text:
            out.append((Mode.SPAMD_CHILD_TIMEOUT, "spamd's child ran past --timeout-child",
                        [err.line]))
    if scan.time_limit:
        out.append((Mode.SPAMD_CHILD_TIMEOUT, "the scan ran past its time limit "
                    "(--timeout-child): spamd skipped the remaining rules", []))
    return out


def _from_scan(scan: Scan, attempt: Attempt, th: Thresholds) -> list[tuple[Mode, str,
                                                                          list[Line]]]:
    out: list[tuple[Mode, str, list[Line]]] = []
    waited = scan.start - attempt.start
    if waited > max(1.0, 0.5 * (attempt.end - attempt.start)):  # queued before its scan
        out += _waiting(attempt, th, f"spamd took the connection {waited:.1f} s after "
                                     "spamc made it")
    out += _sql_modes(scan)
    if scan.duration >= th.slow_scan and not scan.errors:
        out.append((Mode.SPAMD_SLOW_SCAN, f"the scan itself took {scan.duration:.1f} s",
                    []))
    return out


def _waiting(attempt: Attempt, th: Thresholds,
             what: str) -> list[tuple[Mode, str, list[Line]]]:
    """Why spamd did not take the connection: busy children (and what kept them busy),
    silence, or the --max-children line."""
    ctx = attempt.spamd
    if ctx.busy or ctx.all_busy is not None:
        lines = [s.lines[0] for s in ctx.busy] + ([ctx.all_busy] if ctx.all_busy else [])
        held = ", ".join(f"{s.mid or 'a scan'} since {s.duration:.0f} s" for s in ctx.busy)
        out = [(Mode.SPAMD_OVERLOADED, f"{what}: every child was busy"
                + (f" ({held})" if held else ""), lines + ctx.max_children)]
        for scan in ctx.busy:  # why the scan holding the child was slow
            out += [(m, f"the scan holding the child: {note}", ls)
                    for m, note, ls in _sql_modes(scan)]
            if scan.duration >= th.slow_scan and not scan.errors:
                out.append((Mode.SPAMD_SLOW_SCAN, f"the scan holding the child took "
                            f"{scan.duration:.1f} s", []))
        return out
    if ctx.silent:
        return [_silent_mode(attempt)]
    if ctx.max_children:
        return [(Mode.SPAMD_OVERLOADED, f"{what}: every child was busy (--max-children)",
                 ctx.max_children)]
    return []


def _silent_mode(attempt: Attempt) -> tuple[Mode, str, list[Line]]:
    a, b = attempt.spamd.silent or (attempt.start, attempt.end)
    return (Mode.SPAMD_SILENT, f"spamd logged nothing for {b - a:.1f} s while the "
            "delivery waited (stopped, hung, or its accept queue full: the log cannot "
            "tell which)", [])


def _without_scan(attempt: Attempt, th: Thresholds) -> list[tuple[Mode, str, list[Line]]]:
    ctx = attempt.spamd
    if ctx.down:
        if ctx.unlogged:  # a restart with no stop logged before it
            return [(Mode.SPAMD_REFUSED, "spamd stopped without logging it (killed or "
                     "crashed; or hung before that: the log cannot tell) and was started "
                     "again later: spamc's connections were refused", ctx.down[:1])]
        return [(Mode.SPAMD_REFUSED, "spamd had been stopped and not restarted: spamc's "
                 "connections were refused", ctx.down[:1])]
    spamc = _spamc_mode(attempt)
    if spamc is not None:
        return [spamc]
    return _waiting(attempt, th, "spamd never logged this message")


_SPAMC_MODES = {"refused": Mode.SPAMD_REFUSED, "connect-timeout": Mode.SPAMD_ACCEPT_QUEUE_FULL,
                "connect-failed": Mode.SPAMD_REFUSED, "read-timeout": Mode.SPAMD_SILENT}


def _spamc_mode(attempt: Attempt) -> tuple[Mode, str, list[Line]] | None:
    for ev in attempt.spamc:
        mode = _SPAMC_MODES.get(ev.reason)
        if mode is not None:
            return mode, f"spamc: {ev.reason}", [ev.line]
    return None


def _wrapper_lost(attempt: Attempt, diag: Diagnosis) -> None:
    """A wrapper that exited 0 although the MDA failed (the field report's wrapper did,
    for every status but 75 and 77)."""
    if attempt.delivery.status != "sent":
        return
    for w in attempt.wrappers:
        if w.mda.startswith("status=") and w.mda != "status=0" and w.outcome != "defer":
            diag.modes.insert(0, Mode.WRAPPER_LOST)
            diag.notes.insert(0, f"the wrapper reported success, but maildrop's {w.mda}")
            diag.evidence.append(w.line)
            return


def _unique(lines: list[Line]) -> list[Line]:
    """The delivery's own line first, then the rest in file order, each once."""
    seen: set[tuple[int, int]] = set()
    out = []
    for line in lines:
        if (line.src, line.no) not in seen:
            seen.add((line.src, line.no))
            out.append(line)
    return out[:1] + sorted(out[1:], key=lambda ln: (ln.src, ln.no))
