"""``spamdrill doctor --verify``'s judgement, sans-IO: which drill stands for each diagnosed
mode, what the lab showed for the wrapper under test before and after the change, and
each proposed hunk's mark.

A hunk is *verified* when every mode it answers was drilled end to end, before and after
the whole patch, and after it the wrapper the changed master.cf runs neither bounced,
lost nor duplicated a message, with the drill's own condition met (its fault met the
load); *not verified* says what happened instead; *not drillable* says why no drill
could stand for it. Nothing here runs a drill: ``lab`` does, and hands the recorded runs'
models in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spamdrill.runmodel import Run, Scenario

VERIFIED, NOT_VERIFIED, NOT_DRILLABLE = "verified", "not verified", "not drillable"

# the budget's mode -> the shipped end-to-end drill that makes it happen through the
# lab's Postfix (a wrapper decides a message's fate only there)
E2E_DRILLS: dict[str, str] = {
    "spamd-accept-queue-full": "e2e-field-report-bounce",
    "spamd-overloaded": "e2e-spamd-overloaded",
    "spamd-refused": "e2e-spamd-down",
    "db-refused": "e2e-db-refused",
    "db-locked": "e2e-db-locked",
    "db-unreachable": "e2e-db-dropped",
    "dns-dead": "e2e-dns-dead",
    "over-quota": "e2e-over-quota",
    "filter-empty": "e2e-xfilter-empty",
}
# modes no end-to-end drill makes happen, and the shipped drill of the mode's spamc and
# spamd side that stands for it: spamc against the lab shaped like the host's files (the
# host's own spamc flags, before or after the change, where the drill has none of its
# own), each message's fate through the wrapper master.cf runs read off the budget's
# layers from the times measured (``drills.findings``: maildrop's timer, the wrapper as
# the budget's sandbox measured it, Postfix's time limit)
STAND_INS: dict[str, str] = {
    "spamd-silent": "spamc-timeouts",
    "spamd-slow-drip": "spamc-timeouts",
    "spamd-rejected": "spamd-unreachable",
    "db-too-many-connections": "db-max-connections",
    "dns-db-servfail": "dns-db-servfail",
    "dns-db-nxdomain": "dns-db-nxdomain",
    "net-slow": "net-slow",
}
# spamc-timeouts' fakes, narrowed to the listeners that make the mode (drills.findings'
# LISTENER_MODE), each its own drill in the run
LISTENERS: dict[str, tuple[str, ...]] = {"spamd-silent": ("silent", "nonreader"),
                                         "spamd-slow-drip": ("drip",)}
# why no drill can stand for a mode (the budget's prediction stands): rspamd's drills need
# a lab with rspamd and its Redis, and --verify shapes its labs from a maildroprc's spamc
# xfilter (drills.shape)
_RSPAMD = ("rspamd's drills run on a lab with rspamd, and --verify shapes its labs from a "
           "maildroprc's spamc xfilter")
NO_DRILL: dict[str, str] = {m: _RSPAMD for m in ("rspamd-refused", "rspamd-overloaded",
                                                 "rspamd-task-timeout", "redis-down",
                                                 "milter-unavailable")}
# bounces that are right in a drill (DSN status prefixes): a full mailbox bounces, saying so
MEANT_BOUNCES: dict[str, tuple[str, ...]] = {"e2e-over-quota": ("5.2.2",)}
MEANT = "bounced as meant"
# the fates that cross a budget (vocab.Finding.crosses_budget), as messages show them
BAD_FATES = ("bounced", "lost", "duplicated")
RECIPIENT_LIMIT = ("the lab's Postfix delivers one recipient per run on every transport "
                   "already; this line is what spamdrill-deliver needs, and is drilled with "
                   "the change it serves")


@dataclass(frozen=True)
class Plan:
    """One diagnosed mode and the drill that stands for it (None: not drillable)."""

    mode: str
    scenario: str | None
    why: str  # why this drill, or why none
    end_to_end: bool = True  # else a stand-in, judged through the budget's layers

    @property
    def as_run(self) -> str | None:
        """The drill's name in the run (spamc-timeouts stands for two modes, each with
        its own listeners, so each is a drill of its own)."""
        if self.scenario is None or self.mode not in LISTENERS:
            return self.scenario
        return f"{self.scenario}-{LISTENERS[self.mode][0]}"


def diagnosed_modes(doc: dict[str, Any]) -> list[str]:
    """The budget's modes the logs showed, and those the changes answer, once each."""
    modes = [str(w["budget_mode"]) for w in doc.get("why", []) if w.get("budget_mode")]
    modes += [str(m) for c in doc.get("changes", []) for m in c.get("modes", [])]
    return list(dict.fromkeys(modes))


def plan(doc: dict[str, Any], known: set[str] | frozenset[str] | None = None,
         blocked: str = "") -> list[Plan]:
    """A drill per diagnosed mode. ``known``: the scenarios there are (a drill missing is
    said, not skipped); ``blocked``: why no end-to-end drill can run at all (the wrapper
    master.cf names is not among the files given)."""
    out = []
    for mode in diagnosed_modes(doc):
        name = E2E_DRILLS.get(mode) or STAND_INS.get(mode)
        if name is None:
            out.append(Plan(mode, None, f"no drill makes {mode} happen: "
                            + NO_DRILL.get(mode, "none is shipped")
                            + "; the budget's prediction stands"))
        elif blocked:
            out.append(Plan(mode, None, blocked))
        elif known is not None and name not in known:
            out.append(Plan(mode, None, f"the drill {name} is not installed"))
        elif mode in E2E_DRILLS:
            out.append(Plan(mode, name, f"{name}, end to end through the lab's Postfix"))
        else:
            out.append(Plan(mode, name, f"{name} stands for it (no end-to-end drill makes "
                            f"{mode} happen): spamc against the lab shaped like the files, "
                            "each message's fate through the wrapper read off the "
                            "budget's layers from the times measured", end_to_end=False))
    return out


@dataclass(frozen=True)
class Seen:
    """One drill's messages through one wrapper (a case), as a run recorded them."""

    case: str
    ran: bool  # the drill is in the run
    verdict: str = ""
    error: str = ""
    fates: dict[str, int] = field(default_factory=dict)
    finding: str = ""
    crosses: bool = False
    failed: list[str] = field(default_factory=list)  # checks in error: why it could not tell
    stand_in: bool = False  # fates: spamc's outcomes; the wrapper's is the finding's

    @property
    def bad(self) -> int:
        return sum(self.fates.get(f, 0) for f in BAD_FATES)

    @property
    def could_tell(self) -> bool:
        """The drill ran, its lab worked, its conditions held (a verdict of error: a
        condition that did not, a fault without evidence, a check that crashed), and
        the case had mail."""
        return self.ran and not self.error and self.verdict != "error" and bool(self.fates)

    @property
    def within(self) -> bool:
        """Nothing bounced (but as meant), lost or duplicated; the case's finding
        within its budget (a meant bounce is the one thing its "bounces" may be)."""
        return self.could_tell and not self.bad and (not self.crosses
                                                     or self.fates.get(MEANT, 0) > 0)

    def said(self) -> str:
        if not self.ran:
            return "not run"
        if self.error:
            return f"the drill failed: {self.error}"
        if not self.fates:
            return f"no message through {self.case}"
        fates = ", ".join(f"{n} {f}" for f, n in sorted(self.fates.items(),
                                                         key=lambda kv: kv[0]))
        if self.stand_in:
            text = f"spamc: {fates}; through {self.case}, by the budget's layers: " \
                f"{self.finding or 'no finding'}"
        else:
            text = f"{fates} through {self.case}" + (f" ({self.finding})" if self.finding
                                                       else "")
        if self.verdict == "error":
            text += "; the drill could not tell: " + ("; ".join(self.failed[:2])
                                                       or "its verdict is error")
        return text


def seen(sc: Scenario | None, case: str) -> Seen:
    """What the drill's messages through ``case`` came to."""
    if sc is None:
        return Seen(case, False)
    fates: dict[str, int] = {}
    meant = MEANT_BOUNCES.get(sc.name, ())
    for m in sc.messages:
        if m.case == case:
            fate = m.fate or ("lost" if m.outcome in ("lost", "error") else m.outcome)
            if fate == "bounced" and meant and m.dsn.startswith(meant):
                fate = MEANT
            fates[fate] = fates.get(fate, 0) + 1
    row = next((f for f in sc.findings if f.case == case), None)
    failed = [f"{c.name}: {c.detail}" for c in sc.checks if c.status == "error"]
    if sc.verdict == "error" and not failed:
        failed = [f"{f.name}: {f.detail}" for f in sc.fault_evidence if not f.took_effect]
    return Seen(case, True, sc.verdict, sc.error, fates,
                row.finding if row is not None else "",
                row.crosses_budget if row is not None else False, failed)


def seen_stand_in(scs: list[Scenario], case: str) -> Seen:
    """What a stand-in drill's messages came to (each of its variants): spamc's
    outcomes, and each case's fate through the wrapper ``case`` names as the findings
    read it off the budget's layers (the lab's config carries the wrapper's measured
    table and its deadline), the worst one said."""
    if not scs:
        return Seen(case, False)
    fates: dict[str, int] = {}
    for sc in scs:
        for m in sc.messages:
            outcome = str(m.outcome)  # spamc's "error" is maildrop's failed xfilter:
            # what the wrapper made of it is the finding's
            fates[outcome] = fates.get(outcome, 0) + 1
    rows = [(sc, f) for sc in scs for f in sc.findings]
    worst = max(rows, key=lambda r: (r[1].crosses_budget, r[1].worst_s or 0.0),
                default=None)
    finding = "" if worst is None else (
        f"{worst[1].finding} ({worst[1].fate}: {worst[1].why}; {worst[0].name}"
        + (f" {worst[1].case}" if worst[1].case != "all" else "") + ")")
    failed = [f"{sc.name}: {c.name}: {c.detail}" for sc in scs for c in sc.checks
              if c.status == "error"]
    verdict = "error" if any(sc.verdict == "error" for sc in scs) else scs[0].verdict
    if verdict == "error" and not failed:
        failed = [f"{f.name}: {f.detail}" for sc in scs for f in sc.fault_evidence
                  if not f.took_effect]
    return Seen(case, True, verdict, "; ".join(sc.error for sc in scs if sc.error),
                fates, finding, any(f.crosses_budget for _, f in rows), failed,
                stand_in=True)


def _of(run: Run | None, name: str) -> list[Scenario]:
    """A drill's results in a run: itself, or each of its variants (``name/variant``)."""
    if run is None:
        return []
    return [s for s in run.scenarios if s.name == name or s.name.startswith(name + "/")]


@dataclass(frozen=True)
class Sides:
    """The wrapper under test on each side: master.cf's before and after the change, as
    the run names its case (its file name; ``spamdrill-deliver``)."""

    before: str
    after: str


@dataclass
class Drilled:
    plan: Plan
    before: Seen
    after: Seen

    def public(self) -> dict[str, Any]:
        return {"mode": self.plan.mode, "scenario": self.plan.scenario,
                "drill": self.plan.as_run, "end_to_end": self.plan.end_to_end,
                "why": self.plan.why, "before": _seen_doc(self.before),
                "after": _seen_doc(self.after),
                "within_after": self.after.within}


def _seen_doc(s: Seen) -> dict[str, Any]:
    return {"case": s.case, "ran": s.ran, "verdict": s.verdict or None,
            "error": s.error or None, "fates": s.fates, "finding": s.finding or None,
            "crosses_budget": s.crosses, "could_tell": s.could_tell, "failed": s.failed,
            "said": s.said()}


def drilled(plans: list[Plan], before: Run | None, after: Run | None,
            sides: Sides) -> list[Drilled]:
    out = []
    for p in plans:
        if p.as_run is None:
            continue
        if p.end_to_end:
            a = seen(before.scenario(p.as_run) if before else None, sides.before)
            b = seen(after.scenario(p.as_run) if after else None, sides.after)
        else:
            a = seen_stand_in(_of(before, p.as_run), sides.before)
            b = seen_stand_in(_of(after, p.as_run), sides.after)
        out.append(Drilled(p, a, b))
    return out


@dataclass(frozen=True)
class Mark:
    path: str
    index: int  # the change's place in the patch
    mark: str  # verified | not verified | not drillable
    said: str
    modes: list[str]

    def public(self) -> dict[str, Any]:
        return {"path": self.path, "change": self.index, "mark": self.mark,
                "said": self.said, "modes": self.modes}


def mark(changes: list[dict[str, Any]], plans: list[Plan],
         runs: list[Drilled]) -> list[Mark]:
    """Each change (the document's ``changes``) marked by the drills of its modes."""
    by_mode = {d.plan.mode: d for d in runs}
    plan_of = {p.mode: p for p in plans}
    out = []
    for i, c in enumerate(changes):
        modes = [str(m) for m in c.get("modes", [])]
        path = str(c["path"])
        if not modes:
            why = RECIPIENT_LIMIT if path.endswith("main.cf") else \
                "it answers no diagnosed mode a drill could make happen"
            out.append(Mark(path, i, NOT_DRILLABLE, why, modes))
            continue
        parts, failed, undrilled = [], False, []
        for mode in modes:
            d = by_mode.get(mode)
            if d is None:
                p = plan_of.get(mode)
                undrilled.append(f"{mode}: {p.why if p else 'no drill'}")
                continue
            parts.append(f"{mode} ({d.plan.as_run}): before: {d.before.said()}; "
                         f"after: {d.after.said()}" + (
                             " (nothing bounced or was lost before either: the lab did "
                             "not make the incident happen)" if d.before.within else ""))
            failed = failed or not d.after.within
        if failed:
            out.append(Mark(path, i, NOT_VERIFIED, "; ".join(parts + undrilled), modes))
        elif undrilled:
            out.append(Mark(path, i, NOT_DRILLABLE, "; ".join(undrilled + parts), modes))
        else:
            out.append(Mark(path, i, VERIFIED, "; ".join(parts)
                            + " — nothing bounced or was lost after the change", modes))
    return out


def regressions(runs: list[Drilled], marks: list[Mark]) -> list[str]:
    """Drilled modes no change answers that bounce, lose mail or could not tell after
    the change: a change must not break what it does not mend."""
    claimed = {m for k in marks for m in k.modes}
    return [f"{d.plan.mode} ({d.plan.as_run}): after: {d.after.said()}"
            for d in runs if d.plan.mode not in claimed and not d.after.within]


def all_verified(marks: list[Mark], runs: list[Drilled]) -> bool:
    """Exit 1 (not 3): every change that answers a mode verified, at least one, and no
    drilled mode worse after. A change that answers no mode (main.cf's recipient limit)
    goes with the change it serves."""
    answering = [m for m in marks if m.modes]
    return bool(answering) and all(m.mark == VERIFIED for m in answering) and \
        not regressions(runs, marks)


def sure_said(marks: list[Mark], runs: list[Drilled], ok: bool) -> str:
    if not marks:
        return "verified: nothing to change was found, nothing was drilled"
    counts = {k: sum(1 for m in marks if m.mark == k)
              for k in (VERIFIED, NOT_VERIFIED, NOT_DRILLABLE)}
    head = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    worse = regressions(runs, marks)
    if ok:
        return (f"verified in a lab: {head}; every drilled mode within its budget after "
                "the change, nothing bounced or lost")
    return f"not verified: {head}" + (f"; worse after: {'; '.join(worse)}" if worse else "")


# ---- the origin message -----------------------------------------------------------

_POSTCAT_CONTENTS = re.compile(rb"^\*\*\* MESSAGE CONTENTS [^\n]*\*\*\*\r?$", re.M)
_POSTCAT_END = re.compile(rb"^\*\*\* (HEADER EXTRACTED|MESSAGE FILE END) [^\n]*\*\*\*\r?$",
                          re.M)
_HEADER = re.compile(rb"^[!-9;-~]+:")
_MID_LINE = re.compile(rb"^Message-ID:[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)
MAX_ORIGIN = 10 * 1024 * 1024


def origin_message(data: bytes) -> bytes:
    """The message in ``postcat -q QID`` output (between its MESSAGE CONTENTS and
    HEADER EXTRACTED markers), or the plain message given (``postcat -bh``, a file from
    a Maildir). ValueError, one line, for anything else."""
    if len(data) > MAX_ORIGIN:
        raise ValueError(f"{len(data)} bytes: larger than {MAX_ORIGIN} (a mail message?)")
    start = _POSTCAT_CONTENTS.search(data)
    if start is not None:
        end = _POSTCAT_END.search(data, start.end())
        data = data[start.end():end.start() if end else len(data)].lstrip(b"\r\n")
    elif data.startswith(b"*** "):
        raise ValueError("postcat output without its MESSAGE CONTENTS section "
                         "(use postcat -q QID, or postcat -bh -q QID)")
    if b"\x00" in data:
        raise ValueError("it holds NUL bytes: not a mail message")
    first = data.split(b"\n", 1)[0]
    if not data.strip() or not _HEADER.match(first):
        raise ValueError("it does not start with a header line (Name: value)")
    return data


def message_id(data: bytes) -> str:
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0].replace(b"\r\n", b"\n") + b"\n"
    m = _MID_LINE.search(head)
    return m.group(0)[11:].strip().decode(errors="replace") if m else ""


def as_copy(data: bytes, new_id: str) -> bytes:
    """The origin message with CRLF line ends and a Message-ID of its own (each copy a
    transport gets is found in the Maildirs by it); its own, if any, kept in
    ``X-Spamdrill-Origin-Id``."""
    text = re.sub(rb"\r?\n", b"\n", data)
    head, sep, body = text.partition(b"\n\n")
    head += b"\n"
    old = message_id(text)
    head = _MID_LINE.sub(b"", head)
    extra = f"Message-ID: {new_id}\n".encode()
    if old:
        extra += f"X-Spamdrill-Origin-Id: {old}\n".encode(errors="replace")
    out = extra + head + b"\n" + body if sep else extra + head + b"\n"
    return out.replace(b"\n", b"\r\n")
