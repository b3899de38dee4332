"""The machine a run ran on: versions of the programs drilled, the kernel, cores, the
spamdrill that ran it. A report without these cannot be compared with another machine's.

``parse_version`` is sans-IO (a program's ``--version`` text in, the version out);
``collect`` is the thin I/O around it: each program asked once, with a timeout, and a
program that is missing is said to be missing, never a failed run.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from typing import Any

from spamdrill import __version__
from spamdrill.budget.inputs import kernel_syn_linear_timeouts

# name -> argv that prints its version (Debian 12's programs; postconf -d reads no config)
PROGRAMS: dict[str, list[str]] = {
    "spamd": ["spamd", "--version"],
    "spamc": ["spamc", "-V"],
    "mariadb": ["mariadbd", "--version"],
    "maildrop": ["maildrop", "-v"],
    "postfix": ["postconf", "-d", "mail_version"],
}
_VERSION = re.compile(r"(?:version\s*=?\s*|Ver\s+|\b)(\d+\.\d+(?:\.\d+)?[\w.+~-]*)", re.I)
_SBIN = ("/usr/sbin", "/sbin")


def parse_version(text: str) -> str | None:
    """The first version number in a program's version banner: ``SpamAssassin Server
    version 4.0.1`` -> 4.0.1; ``mariadbd  Ver 10.11.19-MariaDB-0+deb12u1`` ->
    10.11.19-MariaDB-0+deb12u1; ``mail_version = 3.7.11`` -> 3.7.11."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = _VERSION.search(first)
    return m.group(1) if m else None


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN)
    return shutil.which(name, path=path)


def program_version(argv: list[str]) -> str:
    exe = _which(argv[0])
    if exe is None:
        return "not installed"
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc.__class__.__name__})"
    return parse_version(done.stdout or done.stderr) or "unknown"


def collect() -> dict[str, Any]:
    """The environment section of a run's document (``spamdrill.report``)."""
    return {
        "versions": {name: program_version(argv) for name, argv in PROGRAMS.items()},
        "kernel": platform.release(),
        "tcp_syn_linear_timeouts": kernel_syn_linear_timeouts(),
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "spamdrill": __version__,
        "euid": os.geteuid(),
    }
