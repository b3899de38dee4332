"""Can master.cf's pipe user run the wrapper? Asked as that user, of the kernel itself.

pipe(8) runs the command as ``user=``, with ``PATH=/usr/bin:/bin`` and an environment
cleaned down to ``export_environment`` (Postfix ``src/global/pipe_command.c``: the child's
``set_ugid``, ``clean_env``, ``setenv("PATH", _PATH_DEFPATH)``, then ``execvp``). When that
user cannot execute the program, or the Python its ``#!`` line names, ``execvp`` fails in
the child, whose fatal exit is EX_TEMPFAIL: every message is deferred (``pipe_command:
execvp ...: Permission denied``) until it expires and bounces days later. From a shell the
same command exits 126, which pipe(8) bounces at once. Observed: a launcher written from a
Python under /root (mode 0700).

So the checks run as the user. A forked child takes the user's uid, gid and groups and
asks access(2) about every path (the program, its Python, the package's modules, the
config, the MDA), naming the first directory it cannot enter; then the program itself runs
as the user, in pipe(8)'s environment, with ``--check-config``: that loads the package and
the config and looks up the MDA exactly as a delivery would. Not on the delivery path.
"""

from __future__ import annotations

import grp  # here, not in the child: it may not be able to read this Python's modules
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import spamdrill

PIPE_PATH = "/usr/bin:/bin"  # _PATH_DEFPATH, which pipe(8) always sets
EXPORTED = ("TZ", "MAIL_CONFIG", "LANG")  # Postfix's default export_environment
# what a delivery imports of the package
PACKAGE_FILES = ("__init__.py", "deliver/__init__.py", "deliver/main.py", "deliver/args.py",
                 "deliver/run.py", "lean.py", "proto/__init__.py", "proto/deliver_policy.py",
                 "system/__init__.py", "system/deliver_conf.py")


class AccessError(Exception):
    """The checks cannot run (no such user, not root). One line."""


class User:
    __slots__ = ("gid", "groups", "name", "uid")

    def __init__(self, name: str) -> None:
        try:
            pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
        except (KeyError, ValueError):
            raise AccessError(f"--user {name}: no such user") from None
        self.name, self.uid, self.gid = pw.pw_name, pw.pw_uid, pw.pw_gid
        self.groups = os.getgrouplist(pw.pw_name, pw.pw_gid)
        if self.uid != os.geteuid() and os.geteuid() != 0:
            raise AccessError(
                f"--user {self.name}: not root, so the checks cannot run as {self.name}; "
                f"run this as root (or as {self.name} itself)")

    @property
    def is_me(self) -> bool:
        return self.uid == os.geteuid()


def program_of(argv0: str) -> list[str]:
    """The command master.cf would run: this launcher or console script (a ``#!`` file),
    else ``python -m spamdrill.deliver`` with this Python."""
    try:
        with open(argv0, "rb") as fh:
            if fh.read(2) == b"#!":
                return [os.path.abspath(argv0)]
    except OSError:
        pass
    return [sys.executable, "-m", "spamdrill.deliver"]


def interpreter(script: str) -> str | None:
    try:
        with open(script, "rb") as fh:
            line = fh.readline(4096)
    except OSError:
        return None
    words = line[2:].split() if line.startswith(b"#!") else []
    return os.fsdecode(words[0]) if words else None


def targets(program: list[str], mda: list[str],
            config: str | None) -> list[tuple[str, str, int]]:
    """(what, path, access mode) for everything a delivery needs to open or run."""
    items: list[tuple[str, str, int]] = []
    if len(program) == 1:
        items.append(("the program", program[0], os.R_OK | os.X_OK))  # a script: both
        python = interpreter(program[0])
        if python is not None:
            items.append(("the Python it names", python, os.X_OK))
    else:
        items.append(("Python", program[0], os.X_OK))
    package = Path(spamdrill.__file__).resolve().parent
    items += [("the package", str(package / name), os.R_OK) for name in PACKAGE_FILES]
    if config is not None:
        items.append(("the config", config, os.R_OK))
    if mda:
        items.append(("the MDA", mda[0], os.X_OK))
    return items


def _owner(st: os.stat_result) -> str:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{stat.filemode(st.st_mode)} {user}:{group}"


def _blocked_dir(path: str) -> str | None:
    """The first directory on the way to ``path`` this process cannot enter."""
    parts = Path(os.path.abspath(path)).parents
    for directory in reversed(parts):
        if not os.access(directory, os.X_OK):
            return str(directory)
    return None


def _why(path: str, need: int, real: str) -> str:
    for candidate in dict.fromkeys((path, real)):
        blocked = _blocked_dir(candidate)
        if blocked is not None:
            try:
                shown = _owner(os.stat(blocked))
            except OSError:
                shown = "?"
            return f"cannot enter {blocked} ({shown})"
    if not os.path.lexists(path):
        return "does not exist"
    verb = {os.R_OK: "read", os.X_OK: "execute"}.get(need, "read and execute")
    try:
        shown = _owner(os.stat(path))
    except OSError:
        shown = "?"
    return f"cannot {verb} it ({shown})"


def problems(items: list[tuple[str, str, int]], real: dict[str, str]) -> list[str]:
    """As the current user: what of ``items`` cannot be used, and why."""
    found = []
    for what, path, need in items:
        if what == "the MDA" and "/" not in path:
            resolved = shutil.which(path, path=PIPE_PATH)
            if resolved is None:
                found.append(f"the MDA {path!r}: not found in pipe(8)'s PATH {PIPE_PATH}")
                continue
            path = resolved
        if not os.access(path, need):
            found.append(f"{what} {path}: {_why(path, need, real.get(path, path))}")
    return found


def _as_user(user: User, items: list[tuple[str, str, int]]) -> list[str]:
    """``problems`` in a child that has become ``user`` (the kernel decides, ACLs and
    all)."""
    real = {path: os.path.realpath(path) for _, path, _ in items}
    if user.is_me:
        return problems(items, real)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(user, items, real, rd, wr)
    os.close(wr)
    with open(rd, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise AccessError(f"could not check as {user.name}: {text.strip()[:300]}")
    return text.splitlines()


def _child(user: User, items: list[tuple[str, str, int]], real: dict[str, str], rd: int,
           wr: int) -> None:
    """Become ``user``, write the problems found (or what failed) to ``wr``, exit. Only
    modules already loaded may be used: as the user, this Python's own may be out of
    reach."""
    code = 1
    try:
        os.close(rd)
        try:
            os.setgroups(user.groups)
            os.setgid(user.gid)
            os.setuid(user.uid)
            text, code = "\n".join(problems(items, real)), 0
        except BaseException as exc:
            text = f"{type(exc).__name__}: {exc}"
        os.write(wr, text.encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _run_as(user: User, program: list[str], options: list[str],
            mda: list[str]) -> str | None:
    """Run the program as ``user`` in pipe(8)'s environment; None if it works."""
    env = {"PATH": PIPE_PATH, **{k: os.environ[k] for k in EXPORTED if k in os.environ}}
    switch: dict[str, object] = {} if user.is_me else {
        "user": user.uid, "group": user.gid, "extra_groups": user.groups}
    argv = [*program, "--check-config", *options, *(["--", *mda] if mda else [])]
    try:
        done = subprocess.run(argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=60,
                              **switch)  # type: ignore[call-overload]
    except OSError as exc:
        return (f"running {program[0]} fails: {exc.strerror}; pipe(8) would defer every "
                f"message ('execvp {program[0]}: {exc.strerror}') until it expires")
    except subprocess.TimeoutExpired:
        return f"{program[0]} --check-config did not finish in 60 s"
    if done.returncode == 0:
        return None
    said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["nothing"]
    return (f"{' '.join(program)} --check-config exits {done.returncode} "
            f"(126 or 1 would be a bounce): {said[0][:300]}")


def check(user_name: str, program: list[str], mda: list[str], config: str | None,
          options: list[str]) -> tuple[User, list[str]]:
    """Everything a delivery as ``user_name`` needs, checked as that user."""
    user = User(user_name)
    found = _as_user(user, targets(program, mda, config))
    failed = _run_as(user, program, options, mda)
    if failed is not None:
        found.append(failed)
    return user, found
