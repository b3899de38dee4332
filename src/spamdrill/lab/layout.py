"""Where everything of one lab lives: a single run directory, nothing outside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_run_dir() -> Path:
    """``$TMPDIR/spamdrill-<uid>/lab``: per user, and reachable by spamd's unprivileged user."""
    base = Path(os.environ.get("TMPDIR", "/tmp"))
    return base / f"spamdrill-{os.getuid()}" / "lab"


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
