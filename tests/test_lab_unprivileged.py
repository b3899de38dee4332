"""As an ordinary user the lab still works (root is only needed for the private resolver).

The test drops to ``nobody`` with setpriv and runs the CLI with Debian's own python3 and a
world-readable copy of spamdrill and its pure-Python dependencies (the test interpreter may
live under /root, which nobody cannot reach).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

NOBODY = 65534
PACKAGES = ("spamdrill", "click", "rich", "dnslib", "pymysql", "msgspec", "markdown_it", "mdurl",
            "pygments")


@pytest.fixture
def unprivileged_env() -> Iterator[tuple[list[str], dict[str, str], Path]]:
    if os.geteuid() != 0:
        # already an ordinary user: run the CLI as we are
        base = Path(tempfile.mkdtemp(prefix="spamdrill-user-"))
        yield ([os.sys.executable, "-m", "spamdrill"], dict(os.environ), base / "lab")  # type: ignore[attr-defined]
        shutil.rmtree(base, ignore_errors=True)
        return
    python = shutil.which("python3", path="/usr/bin")
    assert python, "Debian's python3 is part of the set-up"
    base = Path(tempfile.mkdtemp(prefix="spamdrill-nobody-", dir="/tmp"))
    site = base / "site"
    site.mkdir()
    for name in PACKAGES:
        mod = importlib.import_module(name)
        src = Path(mod.__file__ or "").parent
        shutil.copytree(src, site / name, ignore=shutil.ignore_patterns("__pycache__"))
    os.chown(base, NOBODY, NOBODY)
    os.chmod(base, 0o755)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(base),
           "PYTHONPATH": str(site), "TMPDIR": str(base), "LANG": "C.UTF-8"}
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
            python, "-m", "spamdrill"]
    yield argv, env, base / "lab"
    subprocess.run([*argv, "lab", "down", "--run-dir", str(base / "lab")], env=env,
                   capture_output=True, timeout=120)
    shutil.rmtree(base, ignore_errors=True)


def test_lab_works_as_an_ordinary_user(
        unprivileged_env: tuple[list[str], dict[str, str], Path]) -> None:
    argv, env, run_dir = unprivileged_env

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, *args, "--run-dir", str(run_dir)], env=env,
                              capture_output=True, text=True, timeout=180)

    up = cli("lab", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    check = cli("lab", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    status = cli("lab", "status", "--json")
    assert status.returncode == 0, status.stderr
    comps = {c["name"]: c for c in json.loads(status.stdout)["components"]}
    for name in ("spamd", "mariadb", "dns"):
        pid = comps[name]["pid"]
        assert comps[name]["up"], comps[name]
        assert Path(f"/proc/{pid}").stat().st_uid == (NOBODY if os.geteuid() == 0
                                                      else os.geteuid())
    # without root the DSN cannot use the lab's resolver: it says so by naming the IP
    assert "127.0.0.1" in comps["mariadb"]["detail"]
    down = cli("lab", "down")
    assert down.returncode == 0, down.stderr
    if os.geteuid() == 0:  # we dropped to nobody: a root-only drill says so, in one line
        root_only = subprocess.run([*argv, "run", "db-dropped", "--results-dir",
                                    str(run_dir.parent / "res")], env=env,
                                   capture_output=True, text=True, timeout=60)
        assert root_only.returncode == 2, root_only.stdout + root_only.stderr
        assert "need(s) root" in root_only.stderr
        assert len(root_only.stderr.strip().splitlines()) == 1
        hosts = cli("lab", "up", "--topology", "hosts")
        assert hosts.returncode == 2 and "needs root" in hosts.stderr, hosts.stderr
        assert len(hosts.stderr.strip().splitlines()) == 1
    # the fault proxy between spamd and MariaDB is a lab process: no root needed
    slow = subprocess.run([*argv, "run", "db-slow-link", "--results-dir",
                           str(run_dir.parent / "res")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert slow.returncode == 0, slow.stdout + slow.stderr
