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


# The README's host lines, as written, from a sudo user and from a root shell without
# sudo. Everything happens in a private mount namespace: /usr/local and /opt are overlays
# (the machine's own stay as they were), the throwaway user exists only in this
# namespace's copies of passwd, group and shadow, its NOPASSWD rule only in its
# /etc/sudoers.d, its home on a tmpfs /home.
WALK = r"""
set -eu
W=$1 U=$2 ID=$3 AS=$4
for d in usr-local opt; do mkdir -p "$W/$d-up" "$W/$d-work"; done
for d in usr/local opt; do
  o=$(echo "$d" | tr / -)
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$W/$o-up,workdir=$W/$o-work" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /home
mkdir "/home/$U"
cp -R "$W/checkout" "/home/$U/spamdrill"
if [ "$AS" = user ]; then
  for f in passwd group shadow; do cp -p "/etc/$f" "$W/$f"; done
  echo "$U:x:$ID:$ID::/home/$U:/bin/bash" >>"$W/passwd"
  echo "$U:x:$ID:" >>"$W/group"
  sed -i -e "s/^\(sudo:[^:]*:[^:]*:\)\(.\+\)$/\1\2,$U/" \
    -e "s/^\(sudo:[^:]*:[^:]*:\)$/\1$U/" "$W/group"
  echo "$U:*:20000:0:99999:7:::" >>"$W/shadow"
  for f in passwd group shadow; do mount --bind "$W/$f" "/etc/$f"; done
  mkdir -m 0755 "$W/sudoers.d"
  echo "$U ALL=(ALL:ALL) NOPASSWD: ALL" >"$W/sudoers.d/$U"
  chmod 0440 "$W/sudoers.d/$U"
  mount --bind "$W/sudoers.d" /etc/sudoers.d
  chown -R "$U:$U" "/home/$U"
else  # a root shell on a machine without sudo: removed from an overlay of /usr/bin
  mkdir -p "$W/usr-bin-up" "$W/usr-bin-work"
  mount -t overlay overlay \
    -o "lowerdir=/usr/bin,upperdir=$W/usr-bin-up,workdir=$W/usr-bin-work" /usr/bin
  rm -f /usr/bin/sudo
fi
n=0
while IFS= read -r line; do
  n=$((n + 1))
  if [ "$AS" = user ]; then
    runuser -l "$U" -c "cd ~ && $line" </dev/null >"$W/out.$n" 2>&1 && s=0 || s=$?
  else
    (cd "/home/$U" && HOME="/home/$U" bash -c "$line") </dev/null >"$W/out.$n" 2>&1 && s=0 || s=$?
  fi
  echo "$s" >"$W/status.$n"
done <"$W/lines"
[ "$AS" != user ] || runuser -l "$U" -c 'spamdrill doctor' </dev/null >"$W/plain.out" 2>&1 \
  && echo 0 >"$W/plain.status" || echo $? >"$W/plain.status"
find "/home/$U" -xdev -user 0 -not -path "/home/$U" >"$W/root-owned" 2>&1 || true
readlink /usr/local/bin/spamdrill >"$W/link" || true
stat -c %a /opt/spamdrill /opt/spamdrill/lib/python3*/site-packages/spamdrill/__init__.py \
  >"$W/modes" 2>&1 || true
/opt/spamdrill/bin/python -m pip list --format=freeze >"$W/pip-list" 2>/dev/null || true
"""


def _readme_host_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## On the mail host", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _walk(tmp: Path, who: str) -> tuple[list[tuple[str, int, str]], dict[str, str]]:
    """The README's host lines run in the namespace as ``who`` (user or root): each
    line, its status and output; and what the walk left (files read after)."""
    import pwd
    import random

    work = tmp / who
    work.mkdir()
    shutil.copytree(ROOT, work / "checkout", ignore=shutil.ignore_patterns(
        ".git", "*.so", "*.c", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        ".hypothesis", "build", "*.egg-info", "results", "tests"))
    lines = _readme_host_lines()
    (work / "lines").write_text("".join(f"{line}\n" for line in lines))
    taken = {p.pw_uid for p in pwd.getpwall()}
    uid = next(u for u in iter(lambda: random.randrange(61000, 64000), None)
               if u not in taken)
    name = f"sdhost{uid}"
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c",
                           WALK, "walk", str(work), name, str(uid), who],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    ran = [(line, int((work / f"status.{i}").read_text()),
            (work / f"out.{i}").read_text(errors="replace"))
           for i, line in enumerate(lines, 1)]
    left = {p.name: p.read_text(errors="replace") for p in work.iterdir()
            if p.is_file() and p.name in ("root-owned", "link", "modes", "pip-list",
                                          "plain.out", "plain.status")}
    return ran, left


@pytest.mark.lab
@pytest.mark.root
def test_the_host_lines_work_as_written_from_a_sudo_user_and_a_root_shell(
        tmp_path: Path) -> None:
    """The three lines the README opens with, read from the README and run as they are:
    by a user in the sudo group (NOPASSWD) from a login shell, and by root on a machine
    without sudo. sudo is installed first where it is missing (scripts/setup.sh installs
    it on a lab box), since its absence is the other case. Each line exits as the README
    says; the package lands in /opt/spamdrill without extras, readable by the pipe user,
    linked into /usr/local/bin; nothing in the user's copy becomes root's; without sudo
    the user is told in one line that the system's journal is not theirs to read."""
    if os.geteuid() != 0:
        pytest.skip("needs root: a mount namespace, a throwaway user, sudo")
    if shutil.which("sudo") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "sudo"], check=True,
                       capture_output=True, timeout=600)
    for who in ("user", "root"):
        ran, left = _walk(tmp_path, who)
        (install, i_status, i_out), (venv_line, v_status, v_out), \
            (doctor, d_status, d_out) = ran
        assert i_status == 0, (who, install, i_out[-2000:])
        assert v_status == 0, (who, venv_line, v_out[-2000:])
        assert d_status in (0, 1, 3), (who, doctor, d_out[-2000:])
        assert "Traceback" not in d_out and "What happened" in d_out, (who, d_out[-2000:])
        assert left["link"].strip() == "/opt/spamdrill/bin/spamdrill", who
        venv_dir, module = (int(m, 8) for m in left["modes"].split())
        assert venv_dir & 0o005 == 0o005 and module & 0o004, (who, left["modes"])  # the
        # pipe user enters the environment and reads the package
        names = {ln.split("==")[0].lower() for ln in left["pip-list"].splitlines()}
        assert "spamdrill" in names and not names & HEAVY, (who, names)
        if who == "user":
            assert left["root-owned"] == "", left["root-owned"][:2000]
            plain = left["plain.out"].strip()
            mail_log = Path("/var/log/mail.log")
            if not mail_log.exists():  # the journal, which this user cannot read
                assert left["plain.status"].strip() == "2", plain
                assert plain.count("\n") == 0 and "cannot read the system's journal" \
                    in plain and "sudo" in plain, plain
