"""Where everything of one lab lives: a single run directory, nothing outside it.

A lab runs as root on mail hosts, and its run directory's files steer kills, SQL and file
writes when it is taken down; so every directory spamdrill makes or reuses is checked with
``lstat`` first: a real directory (not a symlink), ours, writable by no one else. In a
shared /tmp someone else could have made ``/tmp/spamdrill-0`` first; then spamdrill
refuses, in one line, rather than trust it. (The directory stays world-searchable: spamd's
and MariaDB's unprivileged users must reach their files in it.)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from spamdrill.errors import SpamdrillError


def default_run_dir() -> Path:
    """``$TMPDIR/spamdrill-<uid>/lab``: per user, and reachable by spamd's unprivileged user."""
    base = Path(os.environ.get("TMPDIR", "/tmp"))
    return base / f"spamdrill-{os.getuid()}" / "lab"


def _untrusted(st: os.stat_result, mine: bool) -> str:
    """Why a directory (by its lstat) cannot be trusted, or ""."""
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if mine and st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not {os.geteuid()}"
    if not mine and st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}"
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and (mine or not st.st_mode & stat.S_ISVTX):  # /tmp: sticky is fine
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return ""


def _refuse(where: Path | str, why: str) -> SpamdrillError:
    return SpamdrillError(f"{where} is {why}: spamdrill will not trust a run directory "
                          "someone else could have planted",
                          "remove it, or choose another --run-dir")


def _check_ancestors(path: Path) -> None:
    """Every directory on the way to ``path`` (not ``path`` itself) is one only root or we
    could have changed: owned by root or us, written by no one else (unless sticky, like
    /tmp). A symlink on the way must be root's or ours (it lives in such a directory), and
    the way through its target is checked the same. Nothing is made or followed first."""
    todo = list(Path(os.path.abspath(path)).parent.parts[1:])
    cur, hops = "/", 0
    why = _untrusted(os.lstat(cur), False)
    if why:
        raise _refuse(cur, why)
    while todo:
        name = todo.pop(0)
        nxt = os.path.join(cur, name)
        try:
            st = os.lstat(nxt)
        except FileNotFoundError:
            return  # the rest is made by secure_dir, each checked as it is made
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if st.st_uid not in (0, os.geteuid()) or hops > 40:
                raise _refuse(nxt, f"a symlink owned by uid {st.st_uid}")
            target = os.path.normpath(os.path.join(cur, os.readlink(nxt)))
            todo = list(Path(target).parts[1:]) + todo
            cur = "/"
            continue
        why = _untrusted(st, False)
        if why:
            raise _refuse(nxt, why)
        cur = nxt


def check_run_dir(path: Path) -> Path:
    """``path`` (absolute, as given: never resolved first) if it is a run directory
    spamdrill may trust: a real directory of ours that no one else may write, reached only
    through directories no one else could have swapped. Makes nothing. A SpamdrillError
    otherwise (also when it is not there: there is no lab in it)."""
    path = Path(os.path.abspath(path))
    _check_ancestors(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SpamdrillError(f"no lab in {path}", "start one with: spamdrill lab up") \
            from None
    why = _untrusted(st, True)
    if why:
        raise _refuse(path, why)
    return path


# a Unix socket's path fits sockaddr_un's 108 bytes, less the NUL; the deepest a lab makes
# is its Postfix's (queue/private/ + a service name of at most 8 characters)
SUN_PATH_MAX = 107
DEEPEST_SOCKET = "postfix/queue/private/proxymap"


def socket_room(path: Path) -> int:
    """How many characters deeper than ``path``'s deepest lab socket could still go (< 0:
    the lab's sockets would not fit)."""
    return SUN_PATH_MAX - len(os.path.abspath(path)) - 1 - len(DEEPEST_SOCKET)


def check_socket_room(path: Path) -> None:
    """A lab in ``path`` can bind its Unix sockets, or a clear error before anything
    starts (Postfix otherwise exits at start-up saying nothing: found with a longer
    TMPDIR and a long drill name)."""
    over = -socket_room(path)
    if over > 0:
        raise SpamdrillError(
            f"the lab directory {path} is {over} character(s) too long for its Unix "
            f"sockets ({DEEPEST_SOCKET} under it: a socket's path holds {SUN_PATH_MAX})",
            "choose a shorter --run-dir, or a shorter TMPDIR")


def secure_dir(path: Path, mode: int = 0o755) -> Path:
    """``path`` made (if it is not there) and checked without following symlinks: a real
    directory of ours that no one else may write, in directories that no one else could
    have swapped (root's or ours, or sticky like /tmp). The way there is checked before
    anything is made, so a planted symlink above it gets nothing made under its target.
    A SpamdrillError otherwise, saying what to do. Call it on the path as given, before
    anything resolves it. Only ``path`` gets ``mode``: a parent made on the way is 0755,
    as the labs under it need (made 0700 by a private cache first, it would shut spamd's
    unprivileged user out of every lab made after)."""
    path = Path(os.path.abspath(path))
    _check_ancestors(path)
    if not os.path.lexists(path.parent):
        secure_dir(path.parent)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    else:
        os.chmod(path, mode)  # as asked, whatever the umask (077 would shut spamd out)
    return check_run_dir(path)


@dataclass(frozen=True)
class Layout:
    """Every path of the lab in ``root``. Made only for a checked run directory
    (``check_run_dir`` runs here): no code holds the paths of an unchecked one."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", check_run_dir(self.root))

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def state(self) -> Path:
        return self.root / "lab.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    # MariaDB
    @property
    def db_dir(self) -> Path:
        return self.root / "mariadb"

    @property
    def db_data(self) -> Path:
        return self.db_dir / "data"

    @property
    def db_tmp(self) -> Path:
        """The server's own tmpdir: concurrent bootstraps sharing /tmp crash (measured:
        mariadb-install-db segfaults in ha_maria::drop_table, 4 of 14 runs 6-8 at once)."""
        return self.db_dir / "tmp"

    @property
    def db_secrets(self) -> Path:
        """The lab's database passwords (0600; outside the server's own directory)."""
        return self.root / "db-secrets.json"

    @property
    def db_socket(self) -> Path:
        return self.db_dir / "mysqld.sock"

    @property
    def db_log(self) -> Path:
        return self.db_dir / "mariadb.log"

    @property
    def proxy_dir(self) -> Path:
        """The database proxy's files: root's (the proxy runs as root), not in mysql's
        ``mariadb/``, where root would write through whatever mysql put there."""
        return self.root / "dbproxy"

    @property
    def db_proxy_shape(self) -> Path:
        return self.proxy_dir / "proxy-shape.json"

    @property
    def db_proxy_out(self) -> Path:
        return self.proxy_dir / "proxy.out"

    # spamd
    @property
    def spamd_dir(self) -> Path:
        return self.root / "spamd"

    @property
    def spamd_site(self) -> Path:
        return self.spamd_dir / "site"

    @property
    def spamd_log(self) -> Path:
        return self.spamd_dir / "spamd.log"

    @property
    def spamd_out(self) -> Path:
        return self.spamd_dir / "spamd.out"

    @property
    def spamd_pid(self) -> Path:
        return self.spamd_dir / "spamd.pid"

    @property
    def spamd_home(self) -> Path:
        return self.spamd_dir / "home"

    @property
    def resolv_conf(self) -> Path:
        return self.spamd_dir / "resolv.conf"

    @property
    def client_resolv_conf(self) -> Path:
        return self.root / "client" / "resolv.conf"

    # DNS
    @property
    def dns_dir(self) -> Path:
        return self.root / "dns"

    @property
    def dns_zone(self) -> Path:
        return self.dns_dir / "zone.json"

    @property
    def dns_rules(self) -> Path:
        return self.dns_dir / "rules.json"

    @property
    def dns_log(self) -> Path:
        return self.dns_dir / "queries.jsonl"

    @property
    def dns_out(self) -> Path:
        return self.dns_dir / "server.out"

    # maildrop
    @property
    def maildrop_dir(self) -> Path:
        return self.root / "maildrop"

    @property
    def maildroprc(self) -> Path:
        return self.maildrop_dir / "maildroprc"

    @property
    def maildrop_log(self) -> Path:
        return self.maildrop_dir / "maildrop.log"

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    def maildir(self, user: str) -> Path:
        return self.mail_dir / user / "Maildir"
