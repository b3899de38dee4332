"""The admin's views: ``--check-config`` and ``--explain``. Not on the delivery path."""

from __future__ import annotations

import os
import shutil
import signal

from spamdrill.deliver.policy import MdaResult, Policy
from spamdrill.proto.postfix_pipe import judge


def check_config(policy: Policy, mda: list[str]) -> int:
    print(f"deadline: {policy.deadline:g} s (keep below Postfix's command_time_limit, "
          "default 1000 s, which bounces)")
    print("rules, first match wins (anything unmatched defers 4.3.0):")
    for rule in policy.rules:
        statuses = ",".join(map(str, sorted(rule.statuses))) or "any non-zero"
        pattern = f" output~/{rule.output}/" if rule.output else ""
        print(f"  {rule.name}: status {statuses}{pattern} -> {rule.action} {rule.dsn} "
              f"({rule.reason})")
    if mda:
        path = shutil.which(mda[0])
        if path is None or not os.access(path, os.X_OK):
            print(f"spamdrill-deliver: config error: MDA {mda[0]!r} is not an executable "
                  "program")
            return 1
        print(f"MDA: {path} {' '.join(mda[1:])}")
    print("config OK")
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
    and its own package, whose location is written in."""
    # one word: the kernel hands everything after the interpreter over as one argument
    return (f"#!{python} -IS\n{LAUNCHER_MARK} (written by spamdrill-deliver "
            f"--make-launcher; write it again after moving the package)\n"
            f"import sys\nsys.path.insert(0, {package_parent!r})\n"
            "from spamdrill.deliver.main import entry\nentry()\n")


def make_launcher(path: str) -> int:
    import sys
    from pathlib import Path

    import spamdrill

    target = Path(path)
    if target.exists() and LAUNCHER_MARK not in target.read_text(errors="replace"):
        print(f"spamdrill-deliver: {target} exists and is not a spamdrill-deliver launcher; "
              "choose another path", file=sys.stderr)
        return 1
    parent = str(Path(spamdrill.__file__).resolve().parent.parent)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(launcher_text(sys.executable, parent))
        tmp.chmod(0o755)
        tmp.replace(target)
    except OSError as exc:
        print(f"spamdrill-deliver: cannot write {target}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {target}: {sys.executable} -IS, package from {parent}\n"
          f"master.cf: ... argv={target} --recipient=${{recipient}} --sender=${{sender}} "
          "--queue-id=${queue_id} -- /usr/bin/maildrop -d ${recipient}")
    return 0
