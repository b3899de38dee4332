"""The admin's views: ``--check-config`` (optionally as the pipe user), ``--explain`` and
``--make-launcher``. Not on the delivery path."""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
from pathlib import Path

from spamdrill.deliver import access
from spamdrill.deliver.args import Args, config_path, policy_for
from spamdrill.proto.deliver_policy import MdaResult, Policy, PolicyError
from spamdrill.proto.postfix_pipe import judge


def check_config(policy: Policy, mda: list[str]) -> int:
    """Print the policy; check the MDA as a delivery would find it (``posix_spawnp``
    searches this PATH)."""
    print(f"deadline: {policy.deadline:g} s (keep below Postfix's command_time_limit, "
          "default 1000 s, which bounces)")
    print("rules, first match wins (anything unmatched defers 4.3.0):")
    for rule in policy.rules:
        statuses = ",".join(map(str, sorted(rule.statuses))) or "any non-zero"
        pattern = f" output~/{rule.output}/" if rule.output else ""
        print(f"  {rule.name}: status {statuses}{pattern} -> {rule.action} {rule.dsn} "
              f"({rule.reason})")
    if mda:
        path = shutil.which(mda[0]) if mda[0].strip() else None
        if path is None or not os.access(path, os.X_OK):
            print(f"spamdrill-deliver: config error: MDA {mda[0]!r} is not an executable "
                  "program", file=sys.stderr)
            return 1
        print(f"MDA: {path} {' '.join(mda[1:])}")
    return 0


def admin(args: Args) -> int:
    """``--make-launcher``, ``--explain``, ``--check-config``: exit 1 on any problem, each
    said in one line on stderr (these run in a terminal, not under Postfix)."""
    if args.make_launcher:
        return make_launcher(args)
    try:
        policy = policy_for(args)
    except PolicyError as exc:
        print(f"spamdrill-deliver: config error: {exc}", file=sys.stderr)
        return 1
    if args.explain:
        return explain(policy, *args.explain)
    code = check_config(policy, args.mda)
    if code == 0:
        code = check_postfix(args, policy)
    if code == 0 and "--user" in args.values:
        code = _check_as_user(args, access.program_of(sys.argv[0]))
    if code == 0:
        print("config OK")
    return code


def check_postfix(args: Args, policy: Policy) -> int:
    """Read Postfix under ``--etc`` (``spamdrill.system.reader``, as ``spamdrill budget
    --etc`` does) and refuse what turns this wrapper's deferrals back into bounces: a
    deadline at or above the transport's time limit (pipe(8) kills first and bounces),
    and a transport that hands one delivery several recipients. Each refusal names the
    line to change. Without a Postfix config, or a service that runs this wrapper, it
    says what was not checked (an error when --etc was given)."""
    from spamdrill.errors import SpamdrillError
    from spamdrill.fixes import fix_margin_s
    from spamdrill.system import reader

    etc = Path(args.get("--etc", "/"))
    given = "--etc" in args.values
    try:
        system = reader.read_postfix(etc)
    except SpamdrillError as exc:
        print(f"spamdrill-deliver: config error: {exc.one_line()}", file=sys.stderr)
        return 1
    postfix_dir = etc / "etc/postfix"
    if system.main_cf is None or system.service is None or \
            system.wrapper.kind != "spamdrill-deliver":
        why = (f"no main.cf or master.cf in {postfix_dir}" if system.main_cf is None else
               f"no pipe service in {postfix_dir / 'master.cf'} runs spamdrill-deliver")
        print(f"Postfix: {why}: its time limit and recipient limit not checked",
              file=sys.stderr if given else sys.stdout)
        return 1 if given else 0
    service = system.service
    name = service.service
    argv = service.pipe_argv()
    flag = next((a.split("=", 1)[1] for a in argv if a.startswith("--deadline=")), None)
    deadline, where = policy.deadline, (f"deadline in {config_path(args)}"
                                        if config_path(args) else
                                        "spamdrill-deliver's default deadline")
    if flag is not None:
        try:
            deadline, where = float(flag), f"--deadline={flag} in {service.where}"
        except ValueError:
            print(f"spamdrill-deliver: config error: {service.where}: --deadline={flag} "
                  "is not seconds", file=sys.stderr)
            return 1
    limit = system.time_limit
    problems = []
    if deadline >= limit.value:
        margin = fix_margin_s(limit.value)
        problems.append(
            f"{where}: {deadline:g} s is at or above Postfix's time limit for {name}, "
            f"{limit.value:g} s ({limit.source}): pipe(8) kills the wrapper first and "
            f"bounces (5.3.0), so every deferral becomes a bounce. Change: deadline = "
            f"{limit.value - margin:g} ({margin:g} s below), or in main.cf "
            f"{name}_time_limit = {math.ceil(deadline + fix_margin_s(deadline)):d}s")
    recipients = system.main_cf.expanded(f"{name}_destination_recipient_limit",
                                         service.options)
    value = recipients.value.strip() if recipients else "50"
    if value != "1":
        source = recipients.source if recipients else "Postfix's default"
        problems.append(
            f"{name}_destination_recipient_limit = {value} ({source}): pipe(8) hands one "
            "delivery several recipients, and ${recipient} in argv becomes several "
            f"words. Change: add '{name}_destination_recipient_limit = 1' to "
            f"{postfix_dir / 'main.cf'}")
    for problem in problems:
        print(f"spamdrill-deliver: config error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"Postfix: {name} ({service.where}): deadline {deadline:g} s below its time "
          f"limit {limit.value:g} s ({limit.source}); one recipient per delivery")
    return 0


def _passed_on(args: Args) -> list[str]:
    return [f"{name}={args.values[name]}" for name in ("--config", "--deadline",
                                                        "--over-quota") if name in args.values]


def _check_as_user(args: Args, program: list[str], shown: str | None = None) -> int:
    """Run the as-user checks; print what fails (``shown`` stands for program[0])."""
    name = args.get("--user")
    try:
        user, found = access.check(name, program, args.mda, config_path(args),
                                   _passed_on(args))
    except access.AccessError as exc:
        print(f"spamdrill-deliver: {exc}", file=sys.stderr)
        return 1
    for problem in found:
        text = problem if shown is None else problem.replace(program[0], shown)
        print(f"spamdrill-deliver: as {user.name}: {text}", file=sys.stderr)
    if found:
        return 1
    checked = ["its Python", "the package"] + (["the config"] if config_path(args) else []) \
        + (["the MDA"] if args.mda else [])
    print(f"as {user.name}: {' '.join(program) if shown is None else shown} runs, and "
          f"{', '.join(checked)} can be run and read")
    return 0


def parse_status(status: str, output: bytes) -> MdaResult:
    s = status.strip().lower()
    if s == "timeout":
        return MdaResult(timed_out=True, output=output)
    if s == "exec-error":
        return MdaResult(exec_error="explained", output=output)
    if s.startswith("signal:") or s.startswith("sig"):
        name = s.split(":", 1)[-1].upper()
        num = int(name) if name.isdigit() else int(getattr(signal, name if name.startswith(
            "SIG") else "SIG" + name))
        return MdaResult(signal=num, output=output)
    code = int(s)
    if not 0 <= code <= 255:
        raise ValueError("exit status must be 0-255")
    return MdaResult(exit_status=code, output=output)


def explain(policy: Policy, status: str, text: str) -> int:
    output = text.encode()
    try:
        result = parse_status(status, output)
    except (ValueError, AttributeError):
        print(f"spamdrill-deliver: cannot read status {status!r}: use a number 0-255, "
              "signal:N (or signal:KILL), timeout or exec-error")
        return 1
    outcome = policy.classify(result)
    message = outcome.message(output)
    verdict = judge(exit_status=outcome.exit_code, signal=None, output=message)
    print(f"MDA {status} with output {text!r}")
    print(f"  -> rule {outcome.rule}: {outcome.action}, exit {outcome.exit_code}")
    print(f"  -> wrapper output: {message.decode(errors='replace').strip() or '(none)'}")
    print(f"  -> Postfix: {verdict.action} ({verdict.dsn})")
    return 0


LAUNCHER_MARK = "# spamdrill-deliver launcher"


def launcher_text(python: str, package_parent: str) -> str:
    """A launcher that starts Python without ``site`` (``-I -S``): on a delivery path that
    runs once per message, site's .pth processing can cost more than all of the wrapper's
    own work (benchmarks/deliver_overhead.py). The wrapper needs only the standard library
    and its own package, whose location is written in. A package it cannot load (moved,
    unreadable to the pipe user) defers: the traceback's exit 1 would bounce."""
    # one word: the kernel hands everything after the interpreter over as one argument
    return (f"#!{python} -IS\n{LAUNCHER_MARK} (written by spamdrill-deliver "
            f"--make-launcher; write it again after moving the package)\n"
            f"import sys\nsys.path.insert(0, {package_parent!r})\n"
            "try:\n"
            "    from spamdrill.deliver.main import entry\n"
            "except BaseException as exc:\n"
            "    sys.stdout.write('4.3.5 spamdrill-deliver cannot load its package from %s "
            "(%s: %s), will retry\\n' % (sys.path[0], type(exc).__name__, "
            "' '.join(str(exc).split())))\n"
            "    sys.exit(75)\n"
            "entry()\n")


def make_launcher(args: Args) -> int:
    """Write the launcher next to its place, check it (as ``--user`` if given), then move
    it in: a launcher the pipe user cannot run never reaches the path master.cf names."""
    target = Path(args.make_launcher)
    python = os.path.abspath(args.get("--python") or sys.executable)
    refusal = _launcher_refusal(target, python)
    if refusal:
        print(f"spamdrill-deliver: {refusal}", file=sys.stderr)
        return 1
    from spamdrill.launchers import install, package_parent

    parent = package_parent()

    def as_user(tmp: Path) -> str | None:
        if "--user" in args.values and _check_as_user(args, [str(tmp)], str(target)):
            return (f"{target} not written: name a Python the pipe user can run with "
                    "--python= (e.g. /usr/bin/python3), and keep the package where that "
                    "user can read it")
        return None

    failed = install(target, launcher_text(python, parent), as_user)
    if failed:
        print(f"spamdrill-deliver: {failed}", file=sys.stderr)
        return 1
    print(f"wrote {target}: {python} -IS, package from {parent}\n"
          f"master.cf: ... argv={target} --recipient=${{recipient}} --sender=${{sender}} "
          "--queue-id=${queue_id} -- /usr/bin/maildrop -d ${recipient}")
    return 0


def _launcher_refusal(target: Path, python: str) -> str | None:
    if not os.access(python, os.X_OK) or os.path.isdir(python):
        return f"--python {python} is not an executable program"
    if not target.exists() and not target.is_symlink():
        return None
    try:
        ours = LAUNCHER_MARK in target.read_text(errors="replace")
    except OSError:
        ours = False
    # never overwrite a file it did not write (pip's console script, say)
    return None if ours else (f"{target} exists and is not a spamdrill-deliver launcher; "
                              "choose another path")
