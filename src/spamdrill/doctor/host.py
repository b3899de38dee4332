"""``spamdrill doctor``'s thin I/O: the host's logs found where Debian puts them, its
configuration read (``spamdrill.system``), the budget run on it and on the proposed
change, the document put together. Nothing is written but the outputs asked for, and a
private temporary directory holding the changed copies the budget reads after (removed
before this returns); nothing is sent on the network.
"""

from __future__ import annotations

import contextlib
import io
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
                   pipe_argv=tuple(system.service.pipe_argv()))
    rows: list[dict[str, Any]] = doc["wrapper"]["rows"] if doc["wrapper"] else []
    cfg["over_quota_bounces"] = any(r["mda_status"] == 77 and r["fate"] == "bounced"
                                    for r in rows)
    return Budget(doc, pr.Config(**cfg), pf_dir, mrc_path)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None


def after(root: Path, before: Budget, changes: list[pr.Change],
          measure: bool = True) -> dict[str, Any]:
    """The budget on the changed copies: a private directory (0700) holding the
    maildroprc and Postfix's main.cf and master.cf as changed, removed afterwards."""
    new = {c.path: c.new for c in changes}
    with tempfile.TemporaryDirectory(prefix="spamdrill-doctor-") as tmp:
        work = Path(tmp)
        mrc = None
        if before.maildroprc_path is not None and before.config.maildroprc in new:
            mrc = work / "maildroprc"
            mrc.write_text(new[before.config.maildroprc])
        pf = None
        if before.postfix_dir is not None and before.config.master_cf in new:
            pf = work / "postfix"
            pf.mkdir()
            for name in ("main.cf", "master.cf"):
                src = before.postfix_dir / name
                if src.is_file():
                    (pf / name).write_text(_read(src))
            (pf / "master.cf").write_text(new[before.config.master_cf])
        return budget(root, mrc, pf, measure).doc


def run(root: Path, logs_doc: dict[str, Any], log_inputs: list[str]) -> dict[str, Any]:
    """The doctor's document: what happened, why, what to change, and how sure."""
    b = budget(root)
    d = dg.diagnose(logs_doc, b.doc)
    changes = pr.propose(d, b.config)
    after_doc = after(root, b, changes) if changes else None
    return document(root, log_inputs, logs_doc, b.doc, d, changes, after_doc)


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
    verified = bool(changes) and all(w["within"] for w in within) and not after_problems
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
        "sure": {"how": "predicted", "within_budget_after": verified,
                 "said": _sure(changes, within, verified)},
        "budget": budget_doc,
    }


def budget_doc_path(d: dg.Diagnosis, changes: list[pr.Change]) -> str | None:
    """The change that replaces the wrapper (master.cf's), if any."""
    return next((c.path for c in changes if "spamdrill-deliver" in c.why), None)


def _sure(changes: list[pr.Change], within: list[dict[str, Any]], ok: bool) -> str:
    if not changes:
        return "nothing to change was found"
    if ok:
        return ("predicted: the budget on your files with this change keeps every "
                "diagnosed mode within its limits (the wrapper measured in a sandbox); "
                "not drilled: --verify is not built yet, `spamdrill run --etc` on a lab "
                "box drills it")
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
    return 1 if doc["sure"]["within_budget_after"] else 3
