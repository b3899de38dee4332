"""Where everything of one lab lives: a single run directory, nothing outside it.

A lab runs as root on mail hosts, and its run directory's files steer kills, SQL and file
writes when it is taken down; so every directory spamdrill makes or reuses is checked with
``lstat`` first: a real directory (not a symlink), ours, writable by no one else. In a
shared /tmp someone else could have made ``/tmp/spamdrill-0`` first; then spamdrill
refuses, in one line, rather than trust it. (The directory stays world-searchable: spamd's
and MariaDB's unprivileged users must reach their files in it.)
"""

from __future__ import annotations

import contextlib
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


def secure_dir(path: Path, mode: int = 0o755) -> Path:
    """``path`` made (if it is not there) and checked without following symlinks: a real
    directory of ours that no one else may write, in a directory that no one else could
    have swapped (root's or ours, or sticky like /tmp). A SpamdrillError otherwise, saying
    what to do. Call it on the path as given, before anything resolves it."""
    path = Path(os.path.abspath(path))
    if not path.parent.exists():
        secure_dir(path.parent, mode)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    for where, mine in ((path.parent, False), (path, True)):
        why = _untrusted(os.lstat(where), mine)
        if why:
            raise SpamdrillError(f"{where} is {why}: spamdrill will not trust a run "
                                 "directory someone else could have planted",
                                 "remove it, or choose another --run-dir")
    return path


@dataclass(frozen=True)
class Layout:
    root: Path

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
    def db_proxy_shape(self) -> Path:
        return self.db_dir / "proxy-shape.json"

    @property
    def db_proxy_out(self) -> Path:
        return self.db_dir / "proxy.out"

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
