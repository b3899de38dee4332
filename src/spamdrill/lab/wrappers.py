"""Wrappers under test, installed where pipe(8)'s unprivileged user can run them.

pipe(8) runs the wrapper as ``postfix.PIPE_USER``, so the wrapper, its interpreter and
everything it loads must be reachable by that user. A field-report wrapper is copied to
``RUN/postfix/bin/`` (as a postmaster installs one in /usr/local/bin). spamdrill-deliver
needs a Python too: the one running spamdrill if the pipe user can reach it, else Debian's
``/usr/bin/python3`` (a Python installed under /root, mode 0700, cannot be run by anyone
else); the package is copied to ``RUN/postfix/lib/`` with its bytecode compiled, as pip
leaves an installed package. Two forms of the wrapper, as a postmaster would install them:
the console script (what pip writes: ``site`` runs) and the launcher that
``spamdrill-deliver --make-launcher PATH`` writes (``python -I -S``).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import spamdrill
from spamdrill.errors import SpamdrillError
from spamdrill.lab.postfix_cf import Paths

DEBIAN_PYTHON = "/usr/bin/python3"

CONSOLE_SCRIPT = """\
#!{python}
# spamdrill-deliver as pip writes a console script (site runs: .pth files and all), for
# an interpreter without the package installed: its copy is put on the path first
import re
import sys
sys.path.insert(0, {lib!r})
from spamdrill.deliver.main import entry
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(entry())
"""


def reachable(path: Path) -> bool:
    """Whether any user may run ``path``: it and every directory above it are
    world-searchable (the file world-executable)."""
    real = path.resolve()
    try:
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


def python_for_pipe() -> str:
    """An interpreter pipe(8)'s user can run, of a version spamdrill supports."""
    for candidate in (sys.executable, DEBIAN_PYTHON):
        if candidate and reachable(Path(candidate)) and _supported(candidate):
            return candidate
    raise SpamdrillError("no Python 3.11+ that pipe(8)'s unprivileged user can run",
                         f"install Debian's python3 ({DEBIAN_PYTHON})")


def _supported(python: str) -> bool:
    done = subprocess.run([python, "-I", "-S", "-c",
                           "import sys; print(sys.version_info >= (3, 11))"],
                          capture_output=True, text=True, timeout=30)
    return done.stdout.strip() == "True"


def _publish(path: Path) -> None:
    """Make everything under ``path`` readable by all."""
    for dirpath, _dirs, files in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)


def install_wrapper(run_dir: Path, source: Path) -> Path:
    """Copy a wrapper under test to ``RUN/postfix/bin/`` (mode 0755); returns the copy."""
    if not source.is_file():
        raise SpamdrillError(f"wrapper {source} is not a file")
    paths = Paths.of(run_dir)
    paths.bin.mkdir(parents=True, exist_ok=True)
    for d in (paths.root, paths.bin):
        os.chmod(d, 0o755)
    target = paths.bin / source.name
    shutil.copyfile(source, target)
    os.chmod(target, 0o755)
    return target


@dataclass(frozen=True)
class Deliver:
    python: str
    console_script: Path
    launcher: Path


def _install_package(run_dir: Path) -> tuple[str, Path]:
    """The package copied to ``RUN/postfix/lib`` and compiled, for pipe(8)'s user; the
    Python that user can run, and the lib directory."""
    paths = Paths.of(run_dir)
    python = python_for_pipe()
    lib = paths.lib
    shutil.rmtree(lib, ignore_errors=True)
    shutil.copytree(Path(spamdrill.__file__).resolve().parent, lib / "spamdrill",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([python, "-I", "-S", "-m", "compileall", "-q", str(lib)], check=True,
                   capture_output=True, timeout=120)
    paths.bin.mkdir(parents=True, exist_ok=True)
    for d in (paths.root, paths.bin):
        os.chmod(d, 0o755)
    _publish(lib)
    return python, lib


def install_spamc(run_dir: Path) -> Path:
    """spamdrill-spamc for maildrop's xfilter under pipe(8)'s user: its launcher
    (``--make-launcher``'s text) in ``RUN/postfix/bin/``, naming a Python that user can
    run and the package copy. Idempotent: install_deliver copies the same package."""
    from spamdrill.spamc import launcher

    paths = Paths.of(run_dir)
    if (paths.lib / "spamdrill" / "spamc" / "main.py").exists():
        python = python_for_pipe()
        lib = paths.lib
    else:
        python, lib = _install_package(run_dir)
    target = paths.bin / "spamdrill-spamc"
    target.write_text(launcher.text(python, str(lib)))
    os.chmod(target, 0o755)
    return target


def install_deliver(run_dir: Path) -> Deliver:
    """spamdrill-deliver for pipe(8)'s user: the package copied, compiled, and both its
    console script and its ``--make-launcher`` launcher written in ``RUN/postfix/bin/``."""
    paths = Paths.of(run_dir)
    python, lib = _install_package(run_dir)
    console = paths.bin / "spamdrill-deliver"
    console.write_text(CONSOLE_SCRIPT.format(python=python, lib=str(lib)))
    os.chmod(console, 0o755)
    launcher = paths.bin / "spamdrill-deliver-launcher"
    done = subprocess.run([str(console), "--make-launcher", str(launcher)],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SpamdrillError(f"spamdrill-deliver --make-launcher failed: "
                             f"{(done.stderr or done.stdout).strip()}")
    return Deliver(python, console, launcher)
