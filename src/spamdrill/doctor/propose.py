"""The smallest change set, as unified diffs against the user's own files (sans-IO).

Each change answers a violation the budget found in a mode the logs showed: a spamc flag
in the maildroprc's xfilter line (the number the budget computed, a stated margin below
the limit it names), spamc itself replaced by spamdrill-spamc with a --deadline where no
spamc flag bounds the mode (a drip, no -t), and the wrapper in master.cf replaced by
spamdrill-deliver when the wrapper bounced a temporary failure, lost mail, or a limit that
only it bounds (a spamc maildrop leaves behind, Postfix's time limit) was crossed. Nothing
here touches a file: the changes are texts, and ``host`` shows what the budget predicts
after them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from spamdrill.doctor.diagnose import WRAPPER_MODES, Diagnosis

DELIVER = "/usr/local/bin/spamdrill-deliver"  # where `pip install spamdrill` puts it as root
SPAMC = "/usr/local/bin/spamdrill-spamc"
DEFAULT_DEADLINE = 600.0  # spamdrill-deliver's, in seconds
MAILDROP = "/usr/bin/maildrop"
# a spamc flag the budget's fix names: "spamc -n 89 (...)", "spamc --retry-sleep 5"
_FLAG = re.compile(r"spamc (-[a-zA-Z]|--[a-z][a-z-]*)[ =]([0-9]+)")
_SPAMC_WORD = re.compile(r"(\S*spamc\b|\$\{?SPAMC\}?)", re.I)
_NEEDS_DELIVER = ("spamdrill-deliver", "exec maildrop")
# the budget's fix where no spamc flag bounds a mode: "spamdrill-spamc --deadline=269"
_DEADLINE_FIX = re.compile(r"spamdrill-spamc --deadline=([0-9]+)")
_DEADLINE_FLAG = re.compile(r"(?<=\s)--deadline(?:=|\s+)[0-9.]+")
# spamc flags spamdrill-spamc refuses (spamc.core.REFUSED): such an xfilter keeps spamc
_PROGRAM = re.compile(r"[^\s\"'`]*spamc\b|\$\{?SPAMC\}?", re.I)  # the word, no quote
_NOT_A_CHECK = re.compile(r"(?<=\s)(-[a-zA-Z]*[LCKBeSz]\b|--headers|--ssl)")


@dataclass(frozen=True)
class Config:
    """The user's files the changes are drafted against, by the path the host knows."""

    maildroprc: str | None = None  # its path on the host, e.g. /etc/maildroprc
    maildroprc_text: str = ""
    xfilter_line: int | None = None  # the line of the xfilter that limits
    master_cf: str | None = None
    master_cf_text: str = ""
    service_line: int | None = None  # the maildrop service's first line
    pipe_argv: tuple[str, ...] = ()
    wrapper_kind: str = "none"  # system.wrapper.kind
    over_quota_bounces: bool = False  # the wrapper bounced maildrop's 77 (kept so)
    service: str = "maildrop"  # the pipe service's name in master.cf
    main_cf: str | None = None
    main_cf_text: str = ""
    recipient_limit: str | None = None  # <service>_destination_recipient_limit, expanded
    recipient_limit_line: int | None = None  # its line in main.cf (None: not set there)
    time_limit: float = 1000.0  # <service>_time_limit: Postfix bounces past it
    deliver: str = DELIVER  # spamdrill-deliver's path on the host
    spamc: str = SPAMC  # spamdrill-spamc's path on the host


@dataclass
class Change:
    path: str  # the host's file
    why: str  # one line
    modes: list[str]  # the budget's modes it answers
    old: str
    new: str
    diff: str = ""
    after: list[dict[str, object]] = field(default_factory=list)  # the budget's rows after

    def __post_init__(self) -> None:
        self.diff = unified(self.path, self.old, self.new)


def unified(path: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"a{path}", tofile=f"b{path}", n=2))


def spamc_flag(fix: str) -> tuple[str, str] | None:
    """The spamc flag and value a budget fix names first (its first alternative)."""
    m = _FLAG.search(fix)
    return (m.group(1), m.group(2)) if m else None


def set_flag(line: str, flag: str, value: str) -> str | None:
    """The xfilter line with spamc's ``flag`` set to ``value`` (None: no spamc in it)."""
    pattern = re.compile(rf"(?<=\s){re.escape(flag)}(\s*|=)\d+")
    if pattern.search(line):
        return pattern.sub(f"{flag} {value}", line, count=1)
    t = re.search(r"(?<=\s)-t\s*\d+", line)
    if t is not None:
        return f"{line[:t.end()]} {flag} {value}{line[t.end():]}"
    w = _SPAMC_WORD.search(line)
    if w is None:
        return None
    return f"{line[:w.end()]} {flag} {value}{line[w.end():]}"


def use_spamdrill_spamc(line: str, path: str, deadline: str) -> str | None:
    """The xfilter line with spamc replaced by spamdrill-spamc ``--deadline``, spamc's
    flags kept (or an existing spamdrill-spamc's deadline set); None: no spamc in it, or
    a flag spamdrill-spamc refuses."""
    w = _PROGRAM.search(line)
    if w is None:
        return None
    if w.group(0).rsplit("/", 1)[-1] == "spamdrill-spamc":
        if _DEADLINE_FLAG.search(line):
            return _DEADLINE_FLAG.sub(f"--deadline={deadline}", line, count=1)
        return f"{line[:w.end()]} --deadline={deadline}{line[w.end():]}"
    if _NOT_A_CHECK.search(line[w.end():]):
        return None
    return f"{line[:w.start()]}{path} --deadline={deadline}{line[w.end():]}"


def _edit(line: str, fix: str, cfg: Config) -> tuple[str | None, str]:
    """The xfilter line a budget fix asks for, and the change in words."""
    m = _DEADLINE_FIX.search(fix)
    if m is not None:
        return (use_spamdrill_spamc(line, cfg.spamc, m.group(1)),
                f"spamdrill-spamc --deadline={m.group(1)}")
    flag = spamc_flag(fix)
    if flag is None:
        return None, ""
    return set_flag(line, *flag), f"spamc {flag[0]} {flag[1]}"


def _replace_line(text: str, no: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    end = "\n" if lines[no - 1].endswith("\n") else ""
    lines[no - 1] = new + end
    return "".join(lines)


def spamc_changes(cfg: Config, rows: list[dict[str, Any]]) -> list[Change]:
    """One edit of the xfilter line: every flag the diagnosed modes' violations name."""
    if cfg.maildroprc is None or cfg.xfilter_line is None:
        return []
    lines = cfg.maildroprc_text.splitlines()
    if not 0 < cfg.xfilter_line <= len(lines):
        return []
    line = lines[cfg.xfilter_line - 1]
    whys, modes = [], []
    for r in rows:
        for v in r.get("violations", []):
            if not str(v["inner"]).startswith("spamc"):
                continue
            edited, what = _edit(line, str(v["fix"]), cfg)
            if edited is None or edited == line:
                continue
            line = edited
            margin = re.search(r"\(([^()]*below[^()]*)\)", str(v["fix"]))
            whys.append(f"{what}: {v['inner']} > {v['outer']}"
                        + (f"; {margin.group(1)}" if margin else ""))
            modes.append(str(r["mode"]))
    if not whys:
        return []
    new = _replace_line(cfg.maildroprc_text, cfg.xfilter_line, line)
    return [Change(cfg.maildroprc, "; ".join(dict.fromkeys(whys)), modes,
                   cfg.maildroprc_text, new)]


def deliver_argv(cfg: Config) -> list[str]:
    """spamdrill-deliver's command for pipe(8), running maildrop as the wrapper did."""
    argv = list(cfg.pipe_argv)
    if argv and argv[0].rsplit("/", 1)[-1] == "maildrop":
        mda = argv
    else:  # a wrapper script: maildrop with the arguments pipe(8) gave the wrapper
        mda = [MAILDROP, *argv[1:]] if len(argv) > 1 else [MAILDROP, "-d", "${recipient}"]
    flags = ["--recipient=${recipient}", "--sender=${sender}", "--queue-id=${queue_id}"]
    if cfg.over_quota_bounces:
        flags.append("--over-quota=bounce")
    deadline = deliver_deadline(cfg.time_limit)
    if deadline is not None:
        flags.append(f"--deadline={deadline}")
    return [cfg.deliver, *flags, "--", *mda]


def deliver_deadline(time_limit: float) -> int | None:
    """spamdrill-deliver's deadline when its default (600 s) is not below Postfix's time
    limit for the service, which bounces: a tenth (at least 30 s) below it."""
    if time_limit > DEFAULT_DEADLINE:
        return None
    return max(1, int(time_limit - max(30.0, time_limit / 10)))


def recipient_limit_change(cfg: Config) -> Change | None:
    """spamdrill-deliver delivers to one recipient per run (its --check-config refuses
    a transport without ``<service>_destination_recipient_limit = 1``)."""
    if cfg.main_cf is None or cfg.recipient_limit == "1":
        return None
    name = f"{cfg.service}_destination_recipient_limit"
    line = f"{name} = 1"
    text = cfg.main_cf_text
    if cfg.recipient_limit_line is not None:
        new = _replace_line(text, cfg.recipient_limit_line, line)
    else:
        new = text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
    return Change(cfg.main_cf, f"{name} = 1: spamdrill-deliver runs maildrop for one "
                  "recipient at a time (was "
                  f"{cfg.recipient_limit or 'unset'})", [], text, new)


def wrapper_change(cfg: Config, why: str, modes: list[str]) -> Change | None:
    """The maildrop service's argv= (to its entry's end) replaced by spamdrill-deliver's."""
    if cfg.master_cf is None or cfg.service_line is None or \
            cfg.wrapper_kind == "spamdrill-deliver":
        return None
    lines = cfg.master_cf_text.splitlines(keepends=True)
    start = cfg.service_line - 1
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
        end += 1
    entry = lines[start:end]
    for i, ln in enumerate(entry):
        col = ln.find("argv=")
        if col < 0:
            continue
        indent = re.match(r"\s*", entry[1] if len(entry) > 1 else "  ")
        pad = indent.group(0) if indent and indent.group(0) else "  "
        argv = deliver_argv(cfg)
        flags, mda = argv[1:argv.index("--")], argv[argv.index("--"):]
        new_entry = [*entry[:i], f"{ln[:col]}argv={argv[0]}\n",
                     f"{pad}  {' '.join(flags)}\n", f"{pad}  {' '.join(mda)}\n"]
        new = "".join(lines[:start] + new_entry + lines[end:])
        return Change(cfg.master_cf, why, modes, cfg.master_cf_text, new)
    return None


def _wrapper_reasons(d: Diagnosis, cfg: Config) -> tuple[list[str], list[str]]:
    """Why the wrapper goes (what the logs and the budget say), and the modes it answers:
    only chains of the maildrop service's own deliveries count."""
    modes: list[str] = []
    reasons: list[str] = []
    for w in d.whys:
        r = w.prediction
        if w.observed.relay and w.observed.relay != cfg.service:
            continue  # another transport: not the wrapper this change replaces
        logged = [m for m in w.observed.chain if m in WRAPPER_MODES
                  or m == "postfix-time-limit"]
        named = r is not None and any(
            any(k in str(v["fix"]) for k in _NEEDS_DELIVER)
            for v in r.get("violations", []))
        if logged or named:
            modes.append(w.mode or w.observed.cause)
            reasons += logged or [f"{w.mode}: {r['outcome']}" if r else ""]
    if d.wrapper_problems:
        reasons.append("its measured table loses mail")
    return [r for r in dict.fromkeys(reasons) if r], list(dict.fromkeys(modes))


def propose(d: Diagnosis, cfg: Config,
            extra: list[dict[str, Any]] | None = None) -> list[Change]:
    """The changes for every mode the logs showed and the budget finds over a limit;
    ``extra``: rows of modes an earlier draft made worse, whose fixes join the draft."""
    rows = [w.prediction for w in d.whys if w.prediction is not None] + list(extra or [])
    rows = list({str(r["mode"]): r for r in rows}.values())
    changes = spamc_changes(cfg, rows)
    reasons, modes = _wrapper_reasons(d, cfg)
    if not reasons:
        return changes
    if any(w.observed.relay in ("", cfg.service) and {"wrapper-bounced-transient",
                                                      "over-quota"} <= set(w.observed.chain)
           for w in d.whys):  # the logs show the wrapper bouncing a full mailbox: meant
        cfg = replace(cfg, over_quota_bounces=True)
    why = ("run maildrop under spamdrill-deliver: only a real success exits 0, every "
           "temporary failure defers (was: " + ", ".join(reasons) + ")")
    if cfg.over_quota_bounces:
        why += "; over quota still bounces, as your wrapper made it"
    deadline = deliver_deadline(cfg.time_limit)
    if deadline is not None:
        why += (f"; --deadline={deadline}: it defers before Postfix's "
                f"{cfg.time_limit:g} s limit bounces")
    change = wrapper_change(cfg, why, modes)
    if change is not None:
        changes.append(change)
        limit = recipient_limit_change(cfg)
        if limit is not None:
            changes.append(limit)
    return changes


def patch(changes: list[Change]) -> str:
    """All changes as one patch (``patch -p1`` in / applies it)."""
    return "".join(c.diff for c in changes)
