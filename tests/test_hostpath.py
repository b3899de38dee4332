"""The host path is light: what runs on a production mail host (doctor without --verify,
logs, budget, spamdrill-deliver, spamdrill-spamc) installs with ``pip install spamdrill``
and imports no lab, plotting, numeric or load-testing package.

Two proofs: each command run with those packages made absent (an import hook that
answers ModuleNotFoundError for them, as a machine without the extras would, and records
every attempt), and, in the lab tier, a fresh virtual environment with the package
installed from this checkout without extras.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from conftest import syslog_sink

from spamdrill import extras

ROOT = Path(__file__).resolve().parent.parent
FIELD = ROOT / "examples" / "field-report"
INCIDENT = FIELD / "incident" / "mail.log"
MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: host path\r\n\r\nhello\r\n"
# what a mail host must not import (the extras' packages and what they bring)
HEAVY = frozenset({"bokeh", "numpy", "pymysql", "dnslib", "locust", "gevent", "zmq",
                   "flask", "pandas", "xyzservices", "contourpy"})

# Runs a module as ``python -m`` would, with HEAVY made absent. Every attempt to import one
# is written to stderr at exit, so even an attempt that the program caught is seen.
ABSENT = """
import atexit, importlib.abc, runpy, sys
HEAVY = frozenset(sys.argv[1].split(","))
tried = []
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Absent())
atexit.register(lambda: sys.stderr.write(f"\\nHEAVY-TRIED {sorted(set(tried))}\\n"))
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def without_extras(module: str, *args: str, stdin: bytes = b"",
                   timeout: float = 120) -> tuple[int, bytes, str, list[str]]:
    """Run ``python -m module args`` with HEAVY absent: status, stdout, stderr (without the
    hook's line) and the heavy imports it tried."""
    done = subprocess.run([sys.executable, "-c", ABSENT, ",".join(sorted(HEAVY)), module,
                           *args], input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "120"})
    err = done.stderr.decode(errors="replace")
    body, _, tail = err.rpartition("\nHEAVY-TRIED ")
    assert tail, f"the hook did not report: {err[-2000:]}"
    tried = [t.strip(" '") for t in tail.strip().strip("[]").split(",") if t.strip()]
    return done.returncode, done.stdout, body, tried


@pytest.mark.unit
def test_core_dependencies_are_the_host_path_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(d) for d in project["dependencies"]}
    assert core == {"click", "rich", "msgspec", "jinja2"}
    optional = project["optional-dependencies"]
    # every package the CLI names an extra for is in that extra, and only there
    for module, (extra, _what) in extras.EXTRAS.items():
        if module == "gevent":  # Locust's own dependency
            continue
        assert module in {_name(d) for d in optional[extra]}, (module, extra)
        assert module not in core
    assert {"lab", "html", "dist", "test"} <= optional.keys()


def _name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for stop in "<>=!~[ ":
        name = name.split(stop)[0]
    return name.strip().lower()


@pytest.mark.unit
def test_a_missing_extra_is_named_in_one_line() -> None:
    error = extras.missing(ModuleNotFoundError("No module named 'bokeh'", name="bokeh.plotting"))
    assert error is not None
    assert "pip install 'spamdrill[html]'" in error.one_line()
    assert "\n" not in error.one_line()
    assert extras.missing(ModuleNotFoundError("x", name="spamdrill.nothing")) is None


@pytest.mark.lab  # seconds of real command runs, not a sans-IO core
@pytest.mark.parametrize("args,status", [
    (["budget", "--etc", str(FIELD)], 1),
    (["logs", str(INCIDENT)], 0),
    (["doctor", "--etc", str(FIELD), str(INCIDENT)], 1),
    (["--help"], 0),
], ids=["budget", "logs", "doctor", "help"])
def test_host_commands_import_no_extra(args: list[str], status: int, tmp_path: Path) -> None:
    if args[0] == "doctor":  # and its page and JSON, as the README has the host write them
        args = [*args, "--html", str(tmp_path / "d.html"), "--json", str(tmp_path / "d.json")]
    code, out, err, tried = without_extras("spamdrill", *args)
    assert tried == [], f"the host path imported {tried}"
    assert code == status, err[-2000:]
    assert out and "Traceback" not in err and "extra" not in err


@pytest.mark.lab
def test_deliver_imports_no_extra() -> None:
    with syslog_sink() as log:
        code, out, err, tried = without_extras(
            "spamdrill.deliver", f"--syslog-socket={log}", "--", "/bin/sh", "-c",
            "cat >/dev/null", stdin=MESSAGE)
    assert tried == []
    assert (code, out, err) == (0, b"", "")


@pytest.mark.lab
def test_spamc_imports_no_extra() -> None:
    with socket.socket() as closed:  # a port nobody listens on: spamc fails open
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        code, out, err, tried = without_extras(
            "spamdrill.spamc", "-d", "127.0.0.1", "-p", str(port), "--deadline", "10",
            stdin=MESSAGE)
    assert tried == []
    assert (code, out) == (0, MESSAGE), err
    assert "internal error" not in err


@pytest.mark.lab
def test_a_command_needing_an_extra_says_which_in_one_line(tmp_path: Path) -> None:
    code, _out, err, tried = without_extras(
        "spamdrill", "budget", "--etc", str(FIELD), "--html", str(tmp_path / "b.html"))
    assert tried  # it did need bokeh
    assert code == 2
    assert err.strip().splitlines() == [err.strip()], err
    assert "pip install 'spamdrill[html]'" in err and "Traceback" not in err


@pytest.mark.lab
def test_pip_install_without_extras_in_a_fresh_venv(tmp_path: Path) -> None:
    """``pip install spamdrill`` (here: this checkout) into a virtual environment without
    system packages: none of the extras' packages arrive, and the host commands run."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    py = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    src = tmp_path / "src"  # a copy: pip's build must not write into the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "*.so", "*.c", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        "build", "*.egg-info", "results", "tests"))
    install = subprocess.run([str(py), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", str(src)],
                             capture_output=True, text=True, timeout=900, env=clean)
    offline = ("NewConnectionError", "Temporary failure in name resolution",
               "Network is unreachable")
    if install.returncode != 0 and any(word in install.stderr for word in offline):
        pytest.skip(f"pip cannot reach a package index from here: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True, env=clean).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert "spamdrill" in names
    assert not names & HEAVY, names
    bin_dir = env_dir / "bin"
    for args, status in ((["budget", "--etc", str(FIELD)], 1),
                         (["logs", str(INCIDENT)], 0),
                         (["doctor", "--etc", str(FIELD), str(INCIDENT)], 1)):
        done = subprocess.run([str(bin_dir / "spamdrill"), *args], capture_output=True,
                              text=True, timeout=120, env=clean, cwd=tmp_path)
        assert done.returncode == status and done.stdout, done.stderr[-2000:]
    with syslog_sink() as log:
        done = subprocess.run([str(bin_dir / "spamdrill-deliver"), f"--syslog-socket={log}",
                               "--", "/bin/sh", "-c", "cat >/dev/null"], input=MESSAGE,
                              capture_output=True, timeout=60, env=clean)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        done = subprocess.run([str(bin_dir / "spamdrill-spamc"), "-d", "127.0.0.1", "-p",
                               str(closed.getsockname()[1]), "--deadline", "10"],
                              input=MESSAGE, capture_output=True, timeout=60, env=clean)
    assert (done.returncode, done.stdout) == (0, MESSAGE), done.stderr
    # a command that needs an extra says which, in one line
    done = subprocess.run([str(bin_dir / "spamdrill"), "budget", "--etc", str(FIELD),
                           "--html", str(tmp_path / "b.html")], capture_output=True,
                          text=True, timeout=120, env=clean)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "spamdrill[html]" in done.stderr, done.stderr


SETUP = ROOT / "scripts" / "setup.sh"
# a listener on port 25 in a network namespace of its own, then setup.sh in that namespace
SERVING = """
ip link set lo up
python3 -c 'import socket, time
s = socket.create_server(("127.0.0.1", 25)); time.sleep(120)' &
listener=$!
until ss -Hltn "sport = :25" | grep -q .; do sleep 0.05; done  # a probe: listening yet?
"$0"; status=$?
kill "$listener"
echo "status=$status"
"""


@pytest.mark.lab
@pytest.mark.root
def test_setup_refuses_a_machine_that_serves_mail() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: a network namespace with a listener on port 25")
    done = subprocess.run(["unshare", "--net", "bash", "-c", SERVING, str(SETUP)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert "status=1" in done.stdout, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing: this machine serves mail" in lines[0], done.stderr
    assert "--force" in lines[0]
