"""``spamdrill doctor --verify``'s thin I/O (root, a lab machine): two labs shaped like the
host's files, one as they are and one with the proposed change applied to private copies
(never to the files given), each running the end-to-end drills of the diagnosed modes
through its own Postfix with the wrapper master.cf runs; the runs recorded as
``spamdrill run`` records them; the judgement is ``verify``'s.

The two sides run at once, each in a process of its own: an end-to-end drill of a full
accept queue waits out maildrop's compiled-in 300 s (it cannot be compressed), and
waiting is all it does, so the two waits overlap rather than add up.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import msgspec

from spamdrill.doctor import host
from spamdrill.doctor import propose as pr
from spamdrill.doctor import verify as vf
from spamdrill.drills.control import ClientSide
from spamdrill.drills.e2e import DELIVER, PostfixTarget, SmtpLoad, _case
from spamdrill.drills.scenario import Scenario
from spamdrill.drills.targets import LoadPlan, new_seed
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.lab import postfix
from spamdrill.load import smtp

Progress = Callable[[str], None]
# spamdrill-deliver's flags taken from master.cf into the lab (the recipient, sender and
# queue id the lab's transport sets itself; a policy file is the host's)
CARRIED = ("--over-quota=", "--deadline=")
DIRECT = "#!/bin/sh\n# maildrop run by pipe(8) directly, as master.cf does\nexec " \
    "/usr/bin/maildrop \"$@\"\n"


class DoctorTarget(PostfixTarget, frozen=True, forbid_unknown_fields=True, tag="postfix"):
    """The lab's Postfix, with the origin message sent through each transport among the
    drill's own messages, first."""

    origin: bytes | None = None

    def prepare(self, plan: LoadPlan, scale: Scale, lab: ClientSide | None) -> SmtpLoad:
        if lab is None:
            raise SpamdrillError("the postfix target needs a lab")
        return OriginLoad(lab.state, plan, self, scale.seconds(self.settle),
                          origin=self.origin)


@dataclass
class OriginLoad(SmtpLoad):
    origin: bytes | None = None

    def _jobs(self, transports: list[postfix.Transport]) -> list[tuple[float, smtp.Job]]:
        from spamdrill import corpus

        jobs = super()._jobs(transports)
        if self.origin is None:
            return jobs
        users, seed, extra = list(self._recipients()), new_seed(), []
        for i, t in enumerate(transports):
            mid = f"origin-{seed}-{i}"
            data = vf.as_copy(self.origin, f"<{mid}@spamdrill.lab.test>")
            m = corpus.Message(id=mid, kind="origin", data=data)
            self.kinds[m.id], self.cases[m.id] = "origin", _case(t)
            extra.append((0.0, smtp.Job(m, f"{users[0]}@{t.domain}")))
        return extra + jobs


@dataclass
class Side:
    """One lab's shape: the system's files (as given, or as changed), the wrapper under
    test and how the run names it."""

    label: str  # before | after
    config: Any  # LabConfig
    spamc: str
    not_reproduced: list[str]
    case: str
    wrappers: tuple[Path, ...] = ()
    deliver_flags: tuple[str, ...] = ()
    blocked: str = ""  # why the wrapper cannot run in the lab
    dropped: list[str] = field(default_factory=list)  # master.cf flags not carried


def shape(root: Path, label: str, work: Path, maildroprc: Path | None = None,
          postfix_dir: Path | None = None) -> Side:
    """The lab for the system under ``root`` (with the changed copies given), as
    ``spamdrill run --etc`` shapes one (``shaped.lab_of``), and its wrapper."""
    from spamdrill.budget import inputs
    from spamdrill.lab.config import LabConfig
    from spamdrill.shaped import labconfig
    from spamdrill.system import reader

    system = reader.read(root, reader.Overrides(maildroprc=maildroprc,
                                                postfix_dir=postfix_dir))
    if not system.filters:
        raise SpamdrillError(f"{label}: no maildroprc with a spamc xfilter under {root}",
                             "--verify drills the maildrop service's spamc")
    table = inputs.measure_wrapper(system)
    setups = inputs.setups(system, wrapper=table)
    chosen = inputs.limiting(setups)
    config, missing = labconfig.lab_config(system, LabConfig(), chosen, table)
    side = Side(label, config, setups[chosen].spamc.render(), missing, DELIVER)
    argv = system.service.pipe_argv() if system.service is not None else []
    if not argv:
        side.blocked = "master.cf runs no pipe service with maildrop: no wrapper to drill"
    elif system.wrapper.kind == "spamdrill-deliver":
        tail = argv[1:argv.index("--")] if "--" in argv else argv[1:]
        side.deliver_flags = tuple(a for a in tail if a.startswith(CARRIED))
        side.dropped = [a for a in tail if not a.startswith(CARRIED) and not a.startswith(
            ("--recipient=", "--sender=", "--queue-id="))]
    elif argv[0].rsplit("/", 1)[-1] == "maildrop":
        direct = work / label / "maildrop"
        direct.parent.mkdir(parents=True, exist_ok=True)
        direct.write_text(DIRECT)
        direct.chmod(0o755)
        side.case, side.wrappers = "maildrop", (direct,)
    else:
        path = root / argv[0].lstrip("/")
        if not argv[0].startswith("/") or not path.is_file():
            side.blocked = (f"master.cf's wrapper {argv[0]} is not among the files given "
                            f"(no {path}): give a copy of the host's files with it")
        else:
            side.case, side.wrappers = path.name, (path,)
    return side


def for_doctor(sc: Scenario, side: Side, origin: bytes | None) -> Scenario:
    """The shipped drill, judged for the doctor: nothing lost, bounced for a transient
    failure or duplicated through the wrapper under test (its own conditions kept: a
    drill whose fault did not meet the load tells nothing)."""
    from spamdrill.checks import NoBounce, NothingDuplicated, NothingLost

    assert isinstance(sc.target, PostfixTarget)
    allowed = tuple(dict.fromkeys([*(a for c in sc.checks if isinstance(c, NoBounce)
                                     for a in c.allowed), *vf.MEANT_BOUNCES.get(sc.name, ())]))
    t = sc.target
    target = DoctorTarget(wrappers=(DELIVER,), deliver_flags=side.deliver_flags, to=t.to,
                          maildrop=t.maildrop, settle=t.settle, origin=origin)
    case = side.case
    return msgspec.structs.replace(
        sc, hypothesis=(f"{side.label} the change, in {sc.failure_mode() or sc.name}: "
                        f"nothing is lost, bounced for a transient failure or duplicated "
                        f"through {case} ({sc.name}: {sc.hypothesis})"),
        checks=(NothingLost(case=case), NoBounce(case=case, allowed=allowed),
                NothingDuplicated(case=case)), target=target, long=False)


def stand_in(sc: Scenario, side: Side, p: vf.Plan) -> Scenario:
    """A shipped drill that stands for a mode no end-to-end drill makes happen, on this
    side's lab: its own checks and conditions kept (a condition that did not hold tells
    nothing); spamc-timeouts' fakes narrowed to the mode's listeners and given the
    side's own spamc flags (they are what the change may alter); the program the
    side's xfilter runs where the drill uses the system's flags."""
    from spamdrill.drills.scenario import LoadSpec
    from spamdrill.drills.targets import FakeCase, FakesTarget, Listener
    from spamdrill.drills.timing import as_placeholders

    flags = tuple(side.config.maildrop.spamc_args)
    client: Literal["spamc", "spamdrill-spamc"] = "spamc"
    if any(f.startswith("--deadline") for f in flags) or \
            side.config.maildrop.client == "spamdrill-spamc":
        client = "spamdrill-spamc"
    target, load = sc.target, sc.load
    if isinstance(target, FakesTarget):
        listeners = tuple(cast(Listener, n) for n in vf.LISTENERS.get(p.mode, ()))
        target = msgspec.structs.replace(target, cases=(FakeCase(
            listeners=listeners, flag_sets=(tuple(as_placeholders(flags)),), count=2,
            client=client),))
    elif load.spamc_args == LoadSpec().spamc_args:
        load = msgspec.structs.replace(load, client=client)
    return msgspec.structs.replace(
        sc, name=str(p.as_run), target=target, load=load, long=False,
        hypothesis=(f"{side.label} the change, in {p.mode}, standing for it: {sc.hypothesis}"))


def _with_parent(parent: int) -> None:
    """A side ends with the doctor: SIGINT (the runner takes its lab down on it, as on
    Ctrl-C) when the process that forked it dies, killed or not."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGINT), 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        raise KeyboardInterrupt


def _side_run(side: Side, scenarios: list[Scenario], results_dir: Path, run_id: str,
              config: dict[str, Any], progress: Progress, parent: int) -> None:
    """One side's drills, recorded as a run (a child process: errors end in its file)."""
    from spamdrill import app
    from spamdrill.drills.scenario import DEFAULT_SCALE

    run_dir = results_dir / run_id
    try:
        _with_parent(parent)
        run_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        settings = app.DrillSettings(DEFAULT_SCALE, side.config, None, side.wrappers,
                                     side.config.maildrop.spamc_args)

        def ticker(name: str) -> app.Tick:
            progress(f"{side.label}: {name} ...")
            return lambda name, done, total: None

        def done(r: Any) -> None:
            progress(f"{side.label}: {r.name}: {r.verdict}, {r.finding}")

        results = app.run_drills(scenarios, settings, run_dir, ticker, done)
        app.record(results_dir, run_id, started, results, "run", config)
    except BaseException as exc:  # a child: said in its file, never raised
        said = exc.one_line() if isinstance(exc, SpamdrillError) else \
            f"{type(exc).__name__}: {exc}".rstrip(": ")
        with contextlib.suppress(OSError):
            (run_dir / "doctor-error.txt").write_text(f"{side.label}: {said}")
        sys.exit(1)


def _both(sides: list[tuple[Side, list[Scenario]]], results_dir: Path,
          config: dict[str, Any], progress: Progress) -> list[tuple[str, Path]]:
    """Each side in a process of its own, at once; their run ids and directories."""
    from spamdrill.drills.runner import new_run_id
    from spamdrill.lab.procs import shielded

    ctx = multiprocessing.get_context("fork")
    procs, out = [], []
    for side, scenarios in sides:
        run_id = f"{new_run_id()}-{side.label}"
        out.append((run_id, results_dir / run_id))
        p = ctx.Process(target=_side_run, args=(side, scenarios, results_dir, run_id,
                                                {**config, "doctor": side.label},
                                                progress, os.getpid()), daemon=False)
        p.start()
        procs.append(p)
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        # Ctrl-C reaches every process of the terminal's group, a SIGTERM the doctor
        # alone: handed on, so each side heals its fault and takes its lab down
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        raise
    finally:
        with shielded():  # Ctrl-C reaches the children too: let them take their labs down
            for p in procs:
                p.join()
    return out


def _load(run_dir: Path) -> tuple[Any, str]:
    from spamdrill import runmodel

    err = run_dir / "doctor-error.txt"
    if err.is_file():
        return None, err.read_text(errors="replace").strip()
    try:
        return runmodel.decode((run_dir / "report.json").read_bytes(),
                               str(run_dir / "report.json")), ""
    except (OSError, SpamdrillError) as exc:
        return None, f"no run recorded in {run_dir}: {exc}"


def verify(root: Path, doc: dict[str, Any], b: host.Budget, changes: list[pr.Change], *,
           origin: tuple[str, bytes] | None, results_dir: Path,
           progress: Progress) -> dict[str, Any]:
    """Drill the diagnosed modes before and after the change; the ``verify`` section of
    the document (and the marks on each change)."""
    import tempfile

    from spamdrill.drills.scenario import load_all
    from spamdrill.render import compare

    t0 = time.monotonic()
    known = load_all()
    with tempfile.TemporaryDirectory(prefix="spamdrill-doctor-verify-") as tmp:
        work = Path(tmp)  # a direct maildrop's stand-in; the lab installs its own copy
        before = shape(root, "before", work)
        with host.changed(b, changes) as (mrc, pf):
            after = shape(root, "after", work, mrc, pf)
        blocked = before.blocked or after.blocked
        plans = vf.plan(doc, set(known), blocked)
        data = origin[1] if origin else None
        todo = [p for p in plans if p.scenario is not None]
        sides = [(s, [for_doctor(known[str(p.scenario)], s, data) if p.end_to_end
                      else stand_in(known[str(p.scenario)], s, p) for p in todo])
                 for s in (before, after)]
        runs: list[tuple[str, Path]] = []
        models: list[Any] = [None, None]
        errors = ["", ""]
        if todo:
            for p in todo:
                progress(f"--verify: {p.mode}: {p.why}")
            # as `spamdrill history` shows a run's config: one line (the patch is in
            # the doctor's document)
            config = {"etc": str(root), "changes": [c.path for c in changes],
                      "origin": origin[0] if origin else None}
            runs = _both(sides, results_dir, config, progress)
            for i, (_, run_dir) in enumerate(runs):
                models[i], errors[i] = _load(run_dir)
    drilled = vf.drilled(plans, models[0], models[1], vf.Sides(before.case, after.case))
    marks = vf.mark(doc["changes"], plans, drilled)
    ok = vf.all_verified(marks, drilled) and not any(errors)
    diff = compare.compare(models[0], models[1]) if models[0] and models[1] else None
    for m in marks:
        doc["changes"][m.index]["verified"] = m.public()
    return {
        "how": "drilled before and after the change, end to end through the lab's Postfix"
               + ("; a mode no end-to-end drill makes happen by a drill that stands for "
                  "it, its fates read off the budget's layers"
                  if any(not p.end_to_end for p in todo) else ""),
        "verified": ok,
        "runs": {"before": runs[0][0] if runs else None,
                 "after": runs[1][0] if runs else None, "results_dir": str(results_dir)},
        "errors": [e for e in errors if e],
        "sides": {s.label: {"case": s.case, "spamc": s.spamc, "deliver_flags":
                            list(s.deliver_flags), "not_carried": s.dropped,
                            "not_reproduced": s.not_reproduced, "blocked": s.blocked or None}
                  for s in (before, after)},
        "origin": _origin_doc(origin, doc),
        "plans": [{"mode": p.mode, "scenario": p.scenario, "why": p.why,
                   "end_to_end": p.end_to_end} for p in plans],
        "drills": [d.public() for d in drilled],
        "marks": [m.public() for m in marks],
        "regressions": vf.regressions(drilled, marks),
        "compare": diff.public() if diff is not None else None,
        "said": vf.sure_said(marks, drilled, ok) + (
            f"; {'; '.join(e for e in errors if e)}" if any(errors) else ""),
        "wall_s": round(time.monotonic() - t0, 1),
    }


def _origin_doc(origin: tuple[str, bytes] | None, doc: dict[str, Any]
                ) -> dict[str, Any] | None:
    if origin is None:
        return None
    mid = vf.message_id(origin[1])
    starters = [s.get("message_id") for e in doc["happened"]["episodes"]
                for s in e.get("started_by", [])[:1]]
    return {"file": origin[0], "message_id": mid or None, "size": len(origin[1]),
            "started_an_episode": bool(mid) and mid in starters}


def attach(doc: dict[str, Any], section: dict[str, Any]) -> None:
    """The drills' answer into the document: ``verify``, and ``sure`` saying both."""
    doc["verify"] = section
    predicted = doc["sure"]["said"].split("; not drilled")[0]
    doc["sure"] = {**doc["sure"], "how": "drilled", "verified": section["verified"],
                   "said": f"{section['said']} (and {predicted})"}
