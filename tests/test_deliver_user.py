"""``--check-config --user`` and ``--make-launcher --user``: the checks run as the pipe
user, so a launcher naming a Python that user cannot reach (the observed case: a Python
under /root, mode 0700, which left every message deferred by pipe(8) until it expired) is
refused before it reaches master.cf.

These need root (to become ``nobody``). The package is copied under /tmp so that
``nobody`` can read it wherever this checkout lives."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import spamdrill

pytestmark = [pytest.mark.root, pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0,
                                 reason="needs root: the checks switch to the user nobody")]

USER = "nobody"
PIPE_ENV = {"PATH": "/usr/bin:/bin"}  # what pipe(8) gives a command (_PATH_DEFPATH)


def system_python() -> str:
    """A Python 3.11+ that every user can run (Debian 12's /usr/bin/python3)."""
    path = shutil.which("python3", path="/usr/bin:/bin")
    if path is None:
        pytest.skip("no /usr/bin/python3 (Debian's python3 package) to write a launcher for")
    done = subprocess.run([path, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                          capture_output=True, text=True)
    if done.stdout.strip() != "True":
        pytest.skip(f"{path} is older than Python 3.11")
    return path


@pytest.fixture
def public() -> Iterator[Path]:
    """A directory everyone can read, holding a copy of the package."""
    top = Path(tempfile.mkdtemp(prefix="spamdrill-user-test-", dir="/tmp"))
    top.chmod(0o755)
    shutil.copytree(Path(spamdrill.__file__).parent, top / "src" / "spamdrill",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [top / "src", *(top / "src").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield top
    shutil.rmtree(top)


@pytest.fixture
def private() -> Iterator[Path]:
    """A directory only root can enter, like /root on this machine."""
    top = Path(tempfile.mkdtemp(prefix="spamdrill-private-", dir="/tmp"))
    top.chmod(0o700)
    yield top
    shutil.rmtree(top)


def wrapper(public: Path, *args: str, python: str = sys.executable,
            **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**PIPE_ENV, "PYTHONPATH": str(public / "src")}
    return subprocess.run([python, "-m", "spamdrill.deliver", *args], capture_output=True,
                          text=True, timeout=60, env=env, **kw)  # type: ignore[call-overload]


def test_launcher_naming_a_python_the_user_cannot_reach_is_refused(
        public: Path, private: Path) -> None:
    python = private / "python3"
    python.symlink_to(sys.executable)
    target = public / "spamdrill-deliver"
    made = wrapper(public, "--make-launcher", str(target), f"--python={python}",
                   f"--user={USER}")
    assert made.returncode == 1, made.stdout
    assert USER in made.stderr and str(private) in made.stderr, made.stderr
    assert not target.exists()  # nothing master.cf could point at
    assert not list(public.glob(".*tmp*"))


def test_launcher_the_user_can_run_is_written_and_delivers_as_that_user(
        public: Path) -> None:
    if not Path("/usr/bin/maildrop").exists():
        pytest.skip("maildrop is not installed (scripts/setup.sh installs it)")
    target = public / "spamdrill-deliver"
    made = wrapper(public, "--make-launcher", str(target), f"--python={system_python()}",
                   f"--user={USER}", "--", "/usr/bin/maildrop")
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"as {USER}" in made.stdout
    done = subprocess.run([str(target), "--", "/bin/sh", "-c", "cat > /dev/null"],
                          input=b"m\n", capture_output=True, timeout=60, env=PIPE_ENV,
                          user=USER)
    assert done.returncode == 0, done


@pytest.fixture
def launcher(public: Path) -> Path:
    target = public / "spamdrill-deliver"
    made = wrapper(public, "--make-launcher", str(target), f"--python={system_python()}")
    assert made.returncode == 0, made.stderr
    return target


def check_as_user(public: Path, program: list[str],
                  *args: str) -> subprocess.CompletedProcess[str]:
    # a launcher runs with -I and ignores PYTHONPATH; python -m needs it to find the copy
    env = {**PIPE_ENV, "PYTHONPATH": str(public / "src")}
    return subprocess.run([*program, "--check-config", f"--user={USER}", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_check_config_as_the_user_passes_for_a_good_setup(launcher: Path,
                                                         tmp_path: Path) -> None:
    cfg = launcher.parent / "deliver.toml"
    cfg.write_text("deadline = 30\n")
    cfg.chmod(0o644)
    done = check_as_user(launcher.parent, [str(launcher)], f"--config={cfg}", "--", "/bin/cat")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"as {USER}" in done.stdout and "config OK" in done.stdout


@pytest.mark.parametrize("what", ["config", "mda", "python"])
def test_check_config_as_the_user_names_what_it_cannot_use(
        what: str, launcher: Path, private: Path) -> None:
    cfg = launcher.parent / "deliver.toml"
    cfg.write_text("deadline = 30\n")
    cfg.chmod(0o600 if what == "config" else 0o644)
    mda = "/bin/cat"
    if what == "mda":
        mda = str(private / "maildrop")
        shutil.copy("/bin/cat", mda)
        os.chmod(mda, 0o755)
    program = [str(launcher)]
    if what == "python":  # a console script or python -m, with its Python under 0700
        python = private / "python3"
        python.symlink_to(sys.executable)
        program = [str(python), "-m", "spamdrill.deliver"]
    done = check_as_user(launcher.parent, program, f"--config={cfg}", "--", mda)
    assert done.returncode == 1, done.stdout
    named = {"config": str(cfg), "mda": mda, "python": str(private)}[what]
    assert named in done.stderr and USER in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_user_checks_say_when_they_need_root(launcher: Path) -> None:
    done = subprocess.run([str(launcher), "--check-config", "--user=root"],
                          capture_output=True, text=True, timeout=60, env=PIPE_ENV,
                          user=USER)
    assert done.returncode == 1
    assert "root" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    # as the user itself no switch is needed
    own = subprocess.run([str(launcher), "--check-config", f"--user={USER}", "--",
                          "/bin/cat"], capture_output=True, text=True, timeout=60,
                         env=PIPE_ENV, user=USER)
    assert own.returncode == 0, own.stdout + own.stderr


SHIM = ("import sys\nfrom spamdrill.deliver import args, main\n"
        "args.DEFAULT_CONFIG = sys.argv[1]\nsys.exit(main.main(sys.argv[2:]))\n")


def test_default_config_the_user_cannot_search_for_defers(public: Path,
                                                          private: Path) -> None:
    """The admin's policy under a directory the pipe user cannot search is not 'no
    config': the delivery defers (the built-in policy would ignore the admin's deadline
    and rules), and --check-config as that user says why."""
    cfg = private / "deliver.toml"
    cfg.write_text("deadline = 30\n")
    cfg.chmod(0o644)
    env = {**PIPE_ENV, "PYTHONPATH": str(public / "src")}
    python = system_python()
    done = subprocess.run([python, "-c", SHIM, str(cfg), "--recipient=al@x", "--",
                           "/bin/sh", "-c", "cat >/dev/null"], input=b"m\n",
                          capture_output=True, timeout=60, env=env, user=USER)
    assert done.returncode == 75, done
    assert done.stdout.startswith(b"4.3.5 ") and b"Permission denied" in done.stdout, done
    check = subprocess.run([python, "-c", SHIM, str(cfg), "--check-config"],
                           capture_output=True, text=True, timeout=60, env=env, user=USER)
    assert check.returncode == 1 and "Permission denied" in check.stderr, check
    assert str(cfg) in check.stderr and "Traceback" not in check.stderr


def test_check_config_as_the_user_says_the_default_config_is_out_of_reach(
        public: Path, private: Path) -> None:
    """Run as root, ``--check-config --user`` finds the default config (root can see
    it) and asks, as the user, both the kernel (the directory it cannot enter) and the
    program itself, which now refuses to run without it instead of passing on the
    built-in policy."""
    cfg = private / "deliver.toml"
    cfg.write_text("deadline = 30\n")
    cfg.chmod(0o644)
    shim = public / "deliver-shim"  # a launcher whose default config is ``cfg``
    shim.write_text(f"#!{system_python()} -IS\nimport sys\n"
                    f"sys.path.insert(0, {str(public / 'src')!r})\n"
                    "from spamdrill.deliver import args, main\n"
                    f"args.DEFAULT_CONFIG = {str(cfg)!r}\nmain.entry()\n")
    shim.chmod(0o755)
    done = subprocess.run([str(shim), "--check-config", f"--user={USER}"],
                          capture_output=True, text=True, timeout=60, env=PIPE_ENV)
    assert done.returncode == 1, done.stdout
    assert f"cannot enter {private}" in done.stderr, done.stderr
    assert "cannot tell whether" in done.stderr and "Traceback" not in done.stderr
