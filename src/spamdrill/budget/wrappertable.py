"""What a delivery wrapper does with each way its MDA can end, and what Postfix then does
(sans-IO). The wrapper is not read, it is run (``spamdrill.budget.sandbox``): a shell
parser is always one idiom behind (dash's ``[[: not found``, ``case 75|77)``, Perl's
unshifted ``$?``). This module holds the cases the sandbox plays, judges what it saw with
``spamdrill.proto.postfix_pipe``, and answers the budget model's questions: what becomes
of maildrop's "Timeout quota exceeded." (75), of a failed xfilter's 75, of a delivery (0).

A message is **lost** when the wrapper exits 0 (Postfix counts it delivered) while the
stand-in did not deliver it: the stand-in failed, was never called, or got other bytes
than Postfix handed the wrapper. A wrapper that fails after the stand-in delivered makes
Postfix try again: **duplicated** (deferred) or delivered and bounced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spamdrill.proto.postfix_pipe import judge

KILLED = -9  # the stand-in kills itself with SIGKILL (an OOM kill, a kill -9)
TIMEOUT_TEXT = "maildrop: Timeout quota exceeded."
UNABLE_TEXT = "maildrop: Unable to filter message."
TEXTS: dict[int, str] = {  # what maildrop 2.9.3 writes on stderr with each status
    64: "maildrop: Usage: maildrop [options]",
    65: "maildrop: Invalid message format.",
    67: "maildrop: Invalid user specified.",
    69: "maildrop: Service unavailable.",
    75: TIMEOUT_TEXT,
    77: "maildrop: maildir over quota.",
    100: "maildrop: Unable to deliver message.",
    KILLED: "",
}
STATUSES = (0, 64, 65, 67, 69, 75, 77, 100, KILLED)
MESSAGE = (b"From: sender@example.net\nTo: user@example.org\nSubject: spamdrill wrapper "
           b"measurement\nMessage-ID: <wrapper-table@spamdrill.invalid>\n\nOne line.\n")
# pipe(8)'s macros (pipe.c), each given a plain value: the wrapper runs as it would for
# one recipient
MACROS = {"recipient": "user@example.org", "original_recipient": "user@example.org",
          "user": "user", "extension": "", "domain": "example.org",
          "nexthop": "example.org", "mailbox": "user", "sender": "sender@example.net",
          "queue_id": "4ABCDEF123", "size": str(len(MESSAGE)), "client_address": "192.0.2.1",
          "client_hostname": "client.example.net", "client_helo": "client.example.net",
          "client_protocol": "ESMTP", "client_port": "25000", "sasl_method": "",
          "sasl_sender": "", "sasl_username": ""}
_MACRO = re.compile(r"\$(\{(\w+)(?:[?:][^}]*)?\}|\((\w+)\)|(\w+))")


@dataclass(frozen=True)
class Case:
    """One way the MDA ends: ``status`` (``KILLED``: a signal), what it writes on stderr,
    whether it read the message first."""

    status: int
    stderr: str
    reads: bool

    def describe(self) -> str:
        what = "killed (SIGKILL)" if self.status == KILLED else f"exit {self.status}"
        said = f', "{self.stderr}"' if self.stderr else ", silent"
        return f"{what}{said}{'' if self.reads else ', stdin not read'}"


def cases() -> tuple[Case, ...]:
    out = [Case(0, "", True)]
    for status in STATUSES[1:]:
        texts = ["", TEXTS[status]] + ([UNABLE_TEXT] if status == 75 else [])
        for text in dict.fromkeys(texts):
            out += [Case(status, text, True), Case(status, text, False)]
    return tuple(out)


CASES = cases()
# the events the budget model asks about
EVENTS = {"timeout": Case(75, TIMEOUT_TEXT, True),
          "filter-failed": Case(75, UNABLE_TEXT, True),
          "delivered": Case(0, "", True)}


def expand_argv(argv: list[str]) -> list[str]:
    """pipe(8)'s ``argv=`` with its macros replaced as for one ordinary recipient."""
    def one(m: re.Match[str]) -> str:
        name = m.group(2) or m.group(3) or m.group(4)
        return MACROS.get(name, "")
    return [_MACRO.sub(one, w) for w in argv]


@dataclass(frozen=True)
class Observed:
    """One run of the wrapper, as the sandbox saw it."""

    case: Case
    exit_status: int | None  # None: killed by a signal, or hung
    signal: int | None
    timed_out: bool
    output: bytes  # stdout and stderr, one pipe (as pipe(8) reads them)
    calls: int  # how often the stand-in ran
    got: bytes | None  # what the stand-in read (None: it read nothing)


@dataclass(frozen=True)
class Row:
    case: Case
    wrapper: str  # "exit 100", "killed by signal 13", "hung"
    postfix: str  # delivered | deferred | bounced (pipe(8)'s verdict)
    fate: str  # delivered | deferred | bounced | lost | duplicated
    dsn: str
    output: str


def row(o: Observed) -> Row:
    v = judge(exit_status=o.exit_status, signal=o.signal, output=o.output,
              timed_out=o.timed_out)
    if o.timed_out:
        wrapper = "hung (killed at Postfix's time limit)"
    elif o.signal is not None:
        wrapper = f"killed by signal {o.signal}"
    else:
        wrapper = f"exit {o.exit_status}"
    delivered = o.case.status == 0 and o.calls >= 1 and o.got == MESSAGE
    fate: str = v.action
    if v.action == "delivered" and not delivered:
        fate = "lost"
    elif delivered and v.action == "deferred":
        fate = "duplicated"
    return Row(o.case, wrapper, v.action, fate, v.dsn, v.text)


@dataclass
class Table:
    """The wrapper's measured behaviour, or the worst assumed when it could not be run."""

    wrapper: str  # the command's path
    measured: bool
    how: str  # "measured under /usr/bin/dash in a sandbox ..." or why not
    rows: list[Row] = field(default_factory=list)

    def fate(self, event: str) -> str:
        """What becomes of the mail for one of ``EVENTS``."""
        if not self.measured:
            return "delivered" if event == "delivered" else "lost"
        case = EVENTS[event]
        return next((r.fate for r in self.rows if r.case == case), "lost")

    def exit_of(self, event: str) -> str:
        case = EVENTS[event]
        return next((r.wrapper for r in self.rows if r.case == case), "not measured")

    def problems(self) -> list[str]:
        """Rows that lose or duplicate mail, or bounce a temporary failure."""
        out = []
        for label, r in self.grouped():
            if r.fate in ("lost", "duplicated") or (r.case.status == 75 and
                                                    r.fate == "bounced"):
                out.append(f"{self.wrapper}: maildrop {label} -> wrapper {r.wrapper} -> "
                           f"Postfix {r.postfix}: {r.fate.upper()}")
        if not self.measured:
            out.append(f"{self.wrapper}: {self.how}")
        return out

    def public(self) -> dict[str, object]:
        return {"wrapper": self.wrapper, "measured": self.measured, "how": self.how,
                "rows": [{"mda": r.case.describe(),
                          "mda_status": None if r.case.status == KILLED else r.case.status,
                          "mda_signal": 9 if r.case.status == KILLED else None,
                          "mda_stderr": r.case.stderr, "mda_read_stdin": r.case.reads,
                          "wrapper": r.wrapper, "postfix": r.postfix, "dsn": r.dsn,
                          "fate": r.fate} for r in self.rows]}

    def grouped(self) -> list[tuple[str, Row]]:
        """One line per MDA status when its variants agree, else one per variant."""
        out: list[tuple[str, Row]] = []
        for status in STATUSES:
            rows = [r for r in self.rows if r.case.status == status]
            if not rows:
                continue
            if len({(r.wrapper, r.dsn, r.fate) for r in rows}) == 1:
                label = "killed (SIGKILL)" if status == KILLED else f"exit {status}"
                out.append((label + ("" if len(rows) == 1 else ", any output"), rows[0]))
            else:
                out += [(r.case.describe(), r) for r in rows]
        return out


def unmeasured(wrapper: str, why: str) -> Table:
    return Table(wrapper, False, f"not measured ({why}): the worst assumed, every failure "
                 "of maildrop bounced or lost (rows show lost)")


def interpreter(text: bytes) -> list[str] | None:
    """The ``#!`` line as the kernel reads it: the interpreter and at most one argument;
    None for a file without one."""
    if not text.startswith(b"#!"):
        return None
    line = text[2:].split(b"\n", 1)[0].decode(errors="replace").strip()
    if not line:
        return None
    interp, _, arg = line.partition(" ")
    arg = arg.strip()
    return [interp, arg] if arg else [interp]


MDA_NAME = "maildrop"
_MDA_PATH = re.compile(rb"/[\w./+-]*/maildrop\b")


def mda_paths(argv: list[str], text: bytes) -> list[str]:
    """Absolute paths the wrapper may call maildrop by: only where to put the stand-in
    (the sandbox also puts one first in PATH and over the host's own maildrop)."""
    found = [w for w in argv if w.startswith("/") and w.rsplit("/", 1)[-1] == MDA_NAME]
    found += [m.group(0).decode(errors="replace") for m in _MDA_PATH.finditer(text)]
    return list(dict.fromkeys(found))
