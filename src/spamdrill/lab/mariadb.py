"""A private MariaDB with SpamAssassin's SQL schema.

Own datadir, socket and port (127.0.0.1, or the database host's address); ``--no-defaults``
so /etc/mysql is never read; ``--skip-name-resolve`` so the server itself never asks a
resolver. The schemas are the ones
the installed spamassassin package ships (``/usr/share/doc/spamassassin/sql``).

Locked down, because a lab runs as root on mail hosts: as root, mariadbd runs as the
``mysql`` user, never as root; its directory (socket included) is private to it (0700);
an ``--init-file``, run before the server takes any connection, drops every root account
but ``root@localhost`` (install-db makes passwordless ones for 127.0.0.1 and ::1, reachable
by any local user over TCP) and gives that one a password; that password and
SpamAssassin's are random per lab, kept in the run directory (0600), never in a world-
readable file.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pymysql

from spamdrill.errors import SpamdrillError
from spamdrill.lab import safefs
from spamdrill.lab.config import LabConfig
from spamdrill.lab.layout import Layout

SQL_DOC_DIR = Path("/usr/share/doc/spamassassin/sql")
SCHEMAS = ("bayes_mysql.sql", "userpref_mysql.sql")
SA_DB = "spamassassin"
SA_USER = "spamass"


SERVER_USER = "mysql"  # Debian's mariadb-server package makes it


def _run_as() -> list[str]:
    # as root, mariadbd runs as the package's own unprivileged user
    return [f"--user={SERVER_USER}"] if os.geteuid() == 0 else []


@dataclass(frozen=True)
class Secrets:
    admin: str  # root@localhost, over the private socket
    sa: str  # SpamAssassin's account (spamd's DSN)


def secrets_of(layout: Layout, sa_password: str = "") -> Secrets:
    """The lab's database passwords: made once per lab (random, unless the lab config
    sets SpamAssassin's), then read back. The file is the run directory's, mode 0600,
    never followed through a symlink."""
    path = layout.db_secrets
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as fh:
            raw = json.load(fh)
        return Secrets(str(raw["admin"]), str(raw["sa"]))
    except FileNotFoundError:
        pass
    made = Secrets(secrets.token_urlsafe(18), sa_password or secrets.token_urlsafe(18))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"admin": made.admin, "sa": made.sa}, fh)
    return made


def private_dir(layout: Layout) -> None:
    """The server's directory (datadir, socket, logs) for its user alone."""
    layout.db_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.db_dir, 0o700)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(layout.db_dir, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def write_init_file(layout: Layout, admin_password: str) -> None:
    """SQL the server runs at every start, before any connection: no root account but
    root@localhost, and that one with the lab's password (idempotent)."""
    sql = ("DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';\n"
           "DELETE FROM mysql.global_priv WHERE User = '';\n"
           "FLUSH PRIVILEGES;\n"
           f"ALTER USER root@localhost IDENTIFIED BY '{admin_password}';\n")
    owner = None
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        owner = (entry.pw_uid, entry.pw_gid)
    # mariadb/ is mysql's: a fresh file renamed into place, nothing there followed
    safefs.write_atomic(layout.root, layout.db_dir / "init.sql", sql.encode(), 0o600, owner)


def install_datadir(layout: Layout, env: dict[str, str] | None = None) -> None:
    """Create the system tables (mariadb-install-db: ~0.6 s here). ``env`` carries the
    lab's marker, so a killed ``lab up`` cannot leave the bootstrap server behind."""
    private_dir(layout)
    for d in (layout.db_data, layout.db_tmp):
        d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(d, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    argv = [
        "mariadb-install-db", "--no-defaults", f"--datadir={layout.db_data}",
        "--auth-root-authentication-method=normal", "--skip-test-db", *_run_as(),
    ]
    try:
        # a private TMPDIR: bootstraps sharing /tmp crash when labs start side by side
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {}), "TMPDIR": str(layout.db_tmp)})
    except FileNotFoundError:
        raise SpamdrillError(
            "mariadb-install-db not found (Debian package mariadb-server)",
            "run scripts/setup.sh",
        ) from None
    if done.returncode != 0:
        # mariadb/ is mysql's by now: written without following anything there
        safefs.write_atomic(layout.root, layout.db_dir / "install-db.log",
                            (done.stdout + done.stderr).encode())
        lines = done.stderr.strip().splitlines()
        # the first error says why; the last is only "Aborting"
        last = next((x for x in lines if "ERROR" in x), lines[-1] if lines else "no output")
        raise SpamdrillError(f"mariadb-install-db failed: {last}",
                             f"see {layout.db_dir / 'install-db.log'}")


def server_argv(layout: Layout, config: LabConfig, port: int,
                bind: str = "127.0.0.1") -> list[str]:
    return [
        "mariadbd", "--no-defaults", f"--datadir={layout.db_data}",
        f"--socket={layout.db_socket}", f"--port={port}", f"--bind-address={bind}",
        f"--pid-file={layout.db_dir / 'mariadbd.pid'}", f"--log-error={layout.db_log}",
        f"--tmpdir={layout.db_tmp}",
        "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
        f"--max-connections={config.database.max_connections}",
        # not 0 (unlimited): a server started with 0 refuses to change it at run time, and
        # drills limit SpamAssassin's account with it
        "--max-user-connections=100000",
        f"--init-file={layout.db_dir / 'init.sql'}",
        *_run_as(),
    ]


def admin(layout: Layout, timeout: float = 2.0,
          query_timeout: float = 30.0) -> pymysql.connections.Connection:
    """A root connection over the lab's private socket. Reads are bounded too: a frozen
    server accepts the connection (the kernel does) and never sends its greeting."""
    return pymysql.connect(unix_socket=str(layout.db_socket), user="root",
                           password=secrets_of(layout).admin, connect_timeout=timeout,
                           read_timeout=max(timeout, query_timeout),
                           write_timeout=max(timeout, query_timeout), autocommit=True)


def probe(layout: Layout) -> bool:
    """``SELECT 1`` over the socket."""
    if not layout.db_socket.exists():
        return False
    try:
        with admin(layout, timeout=0.5, query_timeout=0.5) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    except pymysql.MySQLError:
        return False


def tcp_probe(host: str, port: int) -> bool:
    """The server answers over TCP at host:port (its greeting arrives)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.settimeout(0.5)
            return bool(s.recv(64))
    except OSError:
        return False


def schema_statements(sql: str) -> list[str]:
    """Split a schema file into statements (no procedures in SpamAssassin's files)."""
    sql = re.sub(r"^\s*--.*$", "", sql, flags=re.M)
    return [s.strip() for s in sql.split(";") if s.strip()]


def provision(layout: Layout, config: LabConfig) -> None:
    """Create the SA database, its user, the schema and the lab users' ``required_score``."""
    password = secrets_of(layout).sa
    with admin(layout) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {SA_DB}")
        for host in ("localhost", "127.0.0.1", "%"):
            cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                        (SA_USER, host, password))
            cur.execute(f"GRANT ALL ON {SA_DB}.* TO %s@%s", (SA_USER, host))
        cur.execute(f"USE {SA_DB}")
        for name in SCHEMAS:
            path = SQL_DOC_DIR / name
            try:
                text = path.read_text()
            except FileNotFoundError:
                raise SpamdrillError(f"SpamAssassin SQL schema {path} missing",
                                     "install the Debian package spamassassin") from None
            for stmt in schema_statements(text):
                cur.execute(stmt.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1))
        for user, score in config.users.items():
            cur.execute(
                "INSERT INTO userpref (username, preference, value) VALUES (%s, %s, %s)",
                (user, "required_score", f"{score:g}"),
            )


def bayes_token_count(layout: Layout) -> int:
    with admin(layout) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {SA_DB}.bayes_token")
        row = cur.fetchone()
    return int(row[0]) if row else 0
