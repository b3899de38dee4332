"""``spamdrill doctor``'s thin I/O: the host's logs found where Debian puts them, its
configuration read (``spamdrill.system``), the budget run on it and on the proposed
change, the document put together. Nothing is written but the outputs asked for, and a
private temporary directory holding the changed copies the budget reads after (removed
before this returns); nothing is sent on the network.
"""

from __future__ import annotations

import contextlib
import grp
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spamdrill.doctor import diagnose as dg
from spamdrill.doctor import propose as pr
from spamdrill.errors import SpamdrillError

JOURNAL_UNITS = ("postfix@-.service", "spamd.service")
SCHEMA = "spamdrill.doctor/1"


def find_logs(root: Path) -> list[Path]:
    """Debian's mail log and its rotations under ROOT/var/log, oldest last."""
    base = root / "var/log"
    found = [p for p in base.glob("mail.log*") if p.is_file()
             and (p.name == "mail.log" or p.name[len("mail.log."):].split(".")[0].isdigit())]
    return sorted(found, key=lambda p: (len(p.name) > len("mail.log"), p.name))


def journal_command(since: str = "yesterday") -> list[str] | None:
    """journalctl's command for Postfix's and spamd's units, when journalctl is here."""
    exe = shutil.which("journalctl")
    if exe is None:
        return None
    units = [a for u in JOURNAL_UNITS for a in ("-u", u)]
    return [exe, "-o", "json", "--no-pager", "--since", since, *units]


# journald shows other users' and the system's messages to these groups (journalctl's
# own hint names them; Debian grants adm by ACL); anyone else reads only their own
JOURNAL_GROUPS = frozenset({"systemd-journal", "adm", "wheel"})


def journal_readable() -> bool:
    """Whether this user reads the system's journal, not only their own messages:
    journalctl says nothing and exits 0 otherwise, which would read as a quiet host."""
    if os.geteuid() == 0:
        return True
    names = set()
    for gid in {os.getegid(), *os.getgroups()}:
        with contextlib.suppress(KeyError):
            names.add(grp.getgrgid(gid).gr_name)
    return bool(names & JOURNAL_GROUPS)


@contextlib.contextmanager
def log_sources(root: Path, files: list[str], since: str,
                journal: bool | None = None) -> Iterator[tuple[list[str], list[str]]]:
    """(paths to read, how to show them): the files given; else ROOT/var/log/mail.log*;
    else journald (when ROOT is this machine's /, or ``journal`` says so): journalctl's
    pipe read as the logs' stdin ('-'), its process ended on the way out. None found: a
    one-line error."""
    if files:
        yield files, files
        return
    found = [str(p) for p in find_logs(root)]
    if found:
        yield found, found
        return
    use = journal if journal is not None else root.resolve() == Path("/")
    command = journal_command(since) if use else None
    if command is None:
        raise SpamdrillError(
            f"no mail log found: no {root / 'var/log/mail.log'}*"
            + ("" if use else " (journald is read only for --etc /)")
            + ("; no journalctl" if use else ""),
            "name the log files: spamdrill doctor /path/to/mail.log")
    if not journal_readable():
        raise SpamdrillError(
            f"no {root / 'var/log/mail.log'}*, and this user cannot read the system's "
            "journal (not root, in none of the groups "
            f"{', '.join(sorted(JOURNAL_GROUPS))}): journalctl would show only the "
            "user's own messages",
            "run it with sudo, as a member of adm or systemd-journal, or name the log "
            "files")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(proc.stdout)
    try:
        yield ["-"], ["journalctl " + " ".join(command[1:])]
    finally:
        sys.stdin = saved
        proc.kill()
        proc.wait()
        proc.stdout.close()


@dataclass
class Budget:
    """The budget's document for one system, with what the proposals need of it."""

    doc: dict[str, Any]
    config: pr.Config
    postfix_dir: Path | None
    maildroprc_path: Path | None


def host_path(root: Path, path: str | Path) -> str:
    """A file's path as the host knows it (ROOT/etc/x -> /etc/x)."""
    p = Path(path)
    try:
        return "/" + str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(p)


def _where(where: str) -> tuple[str, int] | None:
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() and path else None


def budget(root: Path, maildroprc: Path | None = None,
           postfix_dir: Path | None = None, measure: bool = True) -> Budget:
    """``spamdrill budget --etc ROOT`` as a document (the wrapper measured in its
    sandbox; ``measure=False``: not run, its worst assumed, as the unit tier does), and
    the files and lines the changes would edit."""
    from spamdrill.budget import inputs, model
    from spamdrill.system import reader

    system = reader.read(root, reader.Overrides(maildroprc=maildroprc,
                                                postfix_dir=postfix_dir))
    table = inputs.measure_wrapper(system) if measure else None
    setups = inputs.setups(system, inputs.WhatIf(None, None, None, None), table)
    chosen = inputs.limiting(setups)
    setup = setups[chosen]
    results = model.evaluate(setup)
    doc: dict[str, Any] = {"limits": model.limits(setup), "modes": [r.public() for r in results],
           "wrapper": table.public() if table is not None else None,
           "risks": list(system.maildroprc.risks) if system.maildroprc else [],
           "spamc": setup.spamc.render()}
    xf = system.filters[chosen].xfilter if system.filters else None
    cfg: dict[str, Any] = {"wrapper_kind": system.wrapper.kind}
    for program in ("deliver", "spamc"):
        installed = shutil.which(f"spamdrill-{program}")
        if installed and root.resolve() == Path("/"):  # this host's own copy
            cfg[program] = installed
    mrc_path = None
    if system.maildroprc is not None and xf is not None:
        at = _where(xf.where)
        if at is not None:
            mrc_path = Path(at[0])
            cfg.update(maildroprc=host_path(root, at[0]), xfilter_line=at[1],
                       maildroprc_text=_read(mrc_path))
    pf_dir = None
    if system.service is not None:
        pf_dir = Path(system.service.path).parent
        cfg.update(master_cf=host_path(root, system.service.path),
                   master_cf_text=_read(Path(system.service.path)),
                   service_line=system.service.line,
                   pipe_argv=tuple(system.service.pipe_argv()),
                   service=system.service.service, time_limit=system.time_limit.value)
        if system.main_cf is not None:
            name = f"{system.service.service}_destination_recipient_limit"
            value = system.main_cf.expanded(name, system.service.options)
            written = system.main_cf.params.get(name)
            cfg.update(main_cf=host_path(root, system.main_cf.path),
                       main_cf_text=_read(Path(system.main_cf.path))
                       if Path(system.main_cf.path).is_file() else "",
                       recipient_limit=value.value if value is not None else None,
                       recipient_limit_line=written[1] if written else None)
    rows: list[dict[str, Any]] = doc["wrapper"]["rows"] if doc["wrapper"] else []
    cfg["over_quota_bounces"] = any(r["mda_status"] == 77 and r["fate"] == "bounced"
                                    for r in rows)
    return Budget(doc, pr.Config(**cfg), pf_dir, mrc_path)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None


@contextlib.contextmanager
def changed(before: Budget, changes: list[pr.Change]
            ) -> Iterator[tuple[Path | None, Path | None]]:
    """The changed copies, for the system's reader (``reader.Overrides``): a private
    directory (0700) holding the maildroprc and Postfix's main.cf and master.cf as
    changed (None: that file unchanged), removed on the way out."""
    new = {c.path: c.new for c in changes}
    with tempfile.TemporaryDirectory(prefix="spamdrill-doctor-") as tmp:
        work = Path(tmp)
        mrc = None
        if before.maildroprc_path is not None and before.config.maildroprc in new:
            mrc = work / "maildroprc"
            mrc.write_text(new[before.config.maildroprc])
        pf = None
        cfg = before.config
        if before.postfix_dir is not None and (cfg.master_cf in new or cfg.main_cf in new):
            pf = work / "postfix"
            pf.mkdir()
            for name, host in (("main.cf", cfg.main_cf), ("master.cf", cfg.master_cf)):
                src = before.postfix_dir / name
                if host in new:
                    (pf / name).write_text(new[host])
                elif src.is_file():
                    (pf / name).write_text(_read(src))
        yield mrc, pf


def after(root: Path, before: Budget, changes: list[pr.Change],
          measure: bool = True) -> dict[str, Any]:
    """The budget on the changed copies (``changed``)."""
    with changed(before, changes) as (mrc, pf):
        return budget(root, mrc, pf, measure).doc


def run(root: Path, logs_doc: dict[str, Any], log_inputs: list[str]) -> dict[str, Any]:
    """The doctor's document: what happened, why, what to change, and how sure."""
    return diagnosis(root, logs_doc, log_inputs)[0]


def diagnosis(root: Path, logs_doc: dict[str, Any], log_inputs: list[str]
              ) -> tuple[dict[str, Any], Budget, list[pr.Change]]:
    """The document, with the budget and the changes it was drafted from (``--verify``
    drills those)."""
    b = budget(root)
    d = dg.diagnose(logs_doc, b.doc, b.config.service if b.config.master_cf else None)
    changes, after_doc = settle(root, b, d)
    return document(root, log_inputs, logs_doc, b.doc, d, changes, after_doc), b, changes


ROUNDS = 3  # a change that breaks another mode is drafted again at most this often


def settle(root: Path, b: Budget, d: dg.Diagnosis, measure: bool = True
           ) -> tuple[list[pr.Change], dict[str, Any] | None]:
    """The changes and the budget after them. A spamc flag that mends one mode can push
    another over a limit (a larger -t lengthens every connect try): the modes the budget
    finds worse after a round have their own fixes drafted into the next, up to
    ``ROUNDS``; whatever is still worse then is said, never hidden."""
    changes = pr.propose(d, b.config)
    if not changes:
        return changes, None
    after_doc = after(root, b, changes, measure)
    for _ in range(ROUNDS - 1):
        worse = {w.split(":", 1)[0] for w in worse_after(b.doc, after_doc)}
        if not worse:
            break
        extra = [r for r in after_doc["modes"] if r["mode"] in worse and r["violations"]]
        again = pr.propose(d, b.config, extra)
        if [c.new for c in again] == [c.new for c in changes]:
            break  # nothing more the budget's fixes can draft
        changes, after_doc = again, after(root, b, again, measure)
    return changes, after_doc


def document(root: Path, log_inputs: list[str], logs_doc: dict[str, Any],
             budget_doc: dict[str, Any], d: dg.Diagnosis, changes: list[pr.Change],
             after_doc: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON contract (docs/DOCTOR.md); sans-IO but for nothing."""
    diagnosed = [w.mode for w in d.whys if w.mode is not None]
    after_rows = {r["mode"]: r for r in (after_doc or {}).get("modes", [])}
    maildrop_limit = next((r["seconds"] for r in (after_doc or budget_doc)["limits"]
                           if r["layer"] == "maildrop global timeout"), None)
    within = []
    for mode in dict.fromkeys(diagnosed):
        r = after_rows.get(mode)
        if r is None:
            continue
        margin = (round(maildrop_limit - r["worst_s"], 3)
                  if maildrop_limit and r["worst_s"] is not None else None)
        within.append({"mode": mode, "worst_s": r["worst_s"],
                       "fires_first": r["fires_first"], "outcome": r["outcome"],
                       "violations": r["violations"],
                       "within": not r["violations"] and r["outcome"] not in
                       ("bounced", "lost", "duplicated"),
                       "margin_s": margin})
    wrapper_after = (after_doc or {}).get("wrapper") or {}
    after_problems = [r for r in wrapper_after.get("rows", [])
                      if r["fate"] in ("lost", "duplicated")
                      or (r.get("mda_status") == 75 and r["fate"] == "bounced")]
    for c in changes:
        c.after = [w for w in within if w["mode"] in c.modes]
        if c.path == budget_doc_path(d, changes) and wrapper_after:
            c.after.append({"wrapper": wrapper_after.get("how"),
                            "rows": len(wrapper_after.get("rows", [])),
                            "losing_rows": len(after_problems)})
    worse = worse_after(budget_doc, after_doc)
    verified = bool(changes) and all(w["within"] for w in within) and not after_problems \
        and not worse
    return {
        "schema": SCHEMA,
        "root": str(root),
        "logs": log_inputs,
        "finding": dg.finding(d).value,
        "happened": {**d.happened, "deliveries_in_trouble":
                     logs_doc.get("deliveries_total", 0),
                     "worst": [_delivery(x) for x in logs_doc.get("deliveries", [])
                               if x["fate"] in ("bounced", "lost")][:5]},
        "why": [{"chain": list(w.observed.chain), "cause": w.observed.cause,
                 "relay": w.observed.relay,
                 "deliveries": w.observed.deliveries, "fates": w.observed.fates,
                 "pipe_s": w.observed.pipe_s, "fired": w.observed.fired,
                 "example": _delivery(w.observed.example),
                 "budget_mode": w.mode,
                 "predicted": None if w.prediction is None else {
                     k: w.prediction[k] for k in ("worst_s", "fires_first", "outcome",
                                                  "why", "violations")},
                 "limit_source": w.limit_source, "agree": w.agree, "said": w.said,
                 "wrapper": w.wrapper} for w in d.whys],
        "wrapper": {"problems": d.wrapper_problems,
                    "how": (budget_doc.get("wrapper") or {}).get("how")},
        "risks": d.risks,
        "changes": [{"path": c.path, "why": c.why, "modes": c.modes, "diff": c.diff,
                     "after": c.after} for c in changes],
        "patch": pr.patch(changes),
        "after": within,
        "worse_after": worse,
        "sure": {"how": "predicted", "within_budget_after": verified,
                 "said": _sure(changes, within, verified, worse)},
        "budget": budget_doc,
    }


def budget_doc_path(d: dg.Diagnosis, changes: list[pr.Change]) -> str | None:
    """The change that replaces the wrapper (master.cf's), if any."""
    return next((c.path for c in changes if "spamdrill-deliver" in c.why), None)


def worse_after(before: dict[str, Any], after: dict[str, Any] | None) -> list[str]:
    """Modes the change makes worse (an outcome further down the fates, or a violation
    where there was none): a change that mends one mode must not break another."""
    if after is None:
        return []
    rank = {f: i for i, f in enumerate(dg.FATE_ORDER)}
    old = {r["mode"]: r for r in before.get("modes", [])}
    out = []
    for r in after.get("modes", []):
        o = old.get(r["mode"])
        if o is None or r["outcome"] == "n/a" or o["outcome"] == "n/a":
            continue
        if rank.get(r["outcome"], 9) < rank.get(o["outcome"], 9) or (
                r["violations"] and not o["violations"]):
            out.append(f"{r['mode']}: {o['outcome']} -> {r['outcome']}")
    return out


def _sure(changes: list[pr.Change], within: list[dict[str, Any]], ok: bool,
          worse: list[str]) -> str:
    if not changes:
        return "nothing to change was found"
    if worse:
        return f"predicted: the change makes other modes worse: {'; '.join(worse)}"
    if ok:
        return ("predicted: the budget on your files with this change keeps every "
                "diagnosed mode within its limits (the wrapper measured in a sandbox); "
                "not drilled: `spamdrill doctor --verify` on a lab box drills it")
    bad = [w["mode"] for w in within if not w["within"]]
    return f"predicted: still over a limit after the change: {', '.join(bad) or 'wrapper'}"


def _delivery(x: dict[str, Any]) -> dict[str, Any]:
    if not x:
        return {}
    return {k: x.get(k) for k in ("time", "queue_id", "message_id", "to", "relay", "fate",
                                  "dsn", "text", "delay", "modes")} | {
        "pipe_s": (x.get("delays") or {}).get("transmission")}


def exit_status(doc: dict[str, Any], logs_doc: dict[str, Any]) -> int:
    """0 nothing wrong, 1 problems found (with fixes), 3 could not verify."""
    if logs_doc.get("empty"):
        return 3
    problem = bool(doc["why"] or doc["wrapper"]["problems"] or doc["risks"])
    if not problem:
        return 0
    verified = doc.get("verify", {}).get("verified", True)  # --verify: the drills too
    return 1 if doc["sure"]["within_budget_after"] and verified else 3
