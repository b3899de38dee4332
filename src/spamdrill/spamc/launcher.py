"""``spamdrill-spamc --make-launcher PATH``: a script that starts Python without ``site``
(``-I -S``), as spamdrill-deliver's launcher does: it runs once per message, and site's
.pth processing can cost more than the check's own work (benchmarks/spamc_overhead.py).
A package it cannot load fails as spamc fails open: the message goes out unscanned and
exit 0, or with ``-x`` nothing and 75 (maildrop keeps the message and retries)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MARK = "# spamdrill-spamc launcher"


def text(python: str, package_parent: str) -> str:
    # one word after the interpreter: the kernel passes the rest as one argument
    return (f"#!{python} -IS\n{MARK} (written by spamdrill-spamc --make-launcher; write it "
            "again after moving the package)\n"
            f"import sys\nsys.path.insert(0, {package_parent!r})\n"
            "try:\n"
            "    from spamdrill.spamc.main import entry\n"
            "except BaseException as exc:\n"
            "    sys.stderr.write('spamdrill-spamc cannot load its package from %s (%s)\\n'"
            " % (sys.path[0], type(exc).__name__))\n"
            "    if '-x' in sys.argv[1:]:\n"
            "        sys.exit(75)\n"
            "    import shutil\n"
            "    shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)\n"
            "    sys.exit(0)\n"
            "entry()\n")


def make(path: str, python: str) -> int:
    """Write the launcher beside its place, then move it in; never over a file it did
    not write."""
    target = Path(path)
    python = os.path.abspath(python or sys.executable)
    if not os.access(python, os.X_OK) or os.path.isdir(python):
        sys.stderr.write(f"spamdrill-spamc: --python {python} is not an executable program\n")
        return 1
    if target.exists() or target.is_symlink():
        try:
            ours = MARK in target.read_text(errors="replace")
        except OSError:
            ours = False
        if not ours or target.is_symlink():
            sys.stderr.write(f"spamdrill-spamc: {target} exists and is not a spamdrill-spamc "
                             "launcher; choose another path\n")
            return 1
    from spamdrill.launchers import install, package_parent

    parent = package_parent()
    failed = install(target, text(python, parent))
    if failed:
        sys.stderr.write(f"spamdrill-spamc: {failed}\n")
        return 1
    sys.stdout.write(f"wrote {target}: {python} -IS, package from {parent}\n"
                     f'maildroprc: xfilter "{target} --deadline=60 -d SPAMD -t 30"\n')
    return 0
