"""What faults do to the lab's MariaDB, as intents (thin I/O): a lock held by a connection
of this process, SpamAssassin's sessions listed and killed, a global variable read. The SQL
lives here alone; the nemesis names what it wants (``drills.control.LabControl``).

A lock needs no journal: MariaDB drops it with its connection, and the connection dies
with this process.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import pymysql

from spamdrill.lab import mariadb
from spamdrill.lab.layout import Layout

DbLock = Literal["global-read", "bayes-write", "userpref-write"]
DbReadable = Literal["max_connections", "max_user_connections", "lock_wait_timeout"]
# the tables SpamAssassin reads for Bayes and user preferences
BAYES_TABLES = ("bayes_token", "bayes_vars", "bayes_seen", "bayes_expire",
                "bayes_global_vars", "userpref")
LOCKS: dict[DbLock, str] = {
    "global-read": "FLUSH TABLES WITH READ LOCK",
    "bayes-write": "LOCK TABLES " + ", ".join(f"{mariadb.SA_DB}.{t} WRITE"
                                              for t in BAYES_TABLES),
    "userpref-write": f"LOCK TABLES {mariadb.SA_DB}.userpref WRITE",
}


class DbUnavailable(Exception):
    """The database did not do what was asked; the message says what it answered."""


def unavailable(exc: pymysql.MySQLError) -> DbUnavailable:
    return DbUnavailable(str(exc.args[-1]) if exc.args else str(exc))


@dataclass(frozen=True)
class DbSession:
    """One of SpamAssassin's connections, as the server's process list shows it."""

    id: int
    command: str  # "Query", "Sleep", ...
    state: str  # what a query waits for ("Waiting for table metadata lock"), or ""
    seconds: int
    info: str  # the statement's first 60 characters, or ""


class HeldLock:
    """A lock held by a connection of this process until ``heal``."""

    def __init__(self, layout: Layout, lock: DbLock) -> None:
        try:
            self._conn: pymysql.connections.Connection | None = mariadb.admin(layout)
            with self._conn.cursor() as cur:
                cur.execute(LOCKS[lock])
        except pymysql.MySQLError as exc:
            raise unavailable(exc) from None

    def heal(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pymysql.MySQLError):
                conn.close()


class Sessions:
    """One connection of this process that lists and kills SpamAssassin's sessions (a
    killer polling every 10 ms must not connect each time)."""

    def __init__(self, layout: Layout) -> None:
        try:
            self._conn = mariadb.admin(layout)
        except pymysql.MySQLError as exc:
            raise unavailable(exc) from None

    def __enter__(self) -> Sessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list(self) -> list[DbSession]:
        try:
            with self._conn.cursor() as cur:
                cur.execute("SELECT id, command, state, time, LEFT(info, 60) FROM "
                            "information_schema.processlist WHERE user = %s",
                            (mariadb.SA_USER,))
                rows = cur.fetchall()
        except pymysql.MySQLError as exc:
            raise unavailable(exc) from None
        return [DbSession(int(i), str(c), str(s or ""), int(t or 0), str(q or ""))
                for i, c, s, t, q in rows]

    def kill(self, session: int) -> bool:
        """Whether the server killed it (a session already gone is not)."""
        try:
            with self._conn.cursor() as cur:
                cur.execute(f"KILL CONNECTION {int(session)}")
        except pymysql.MySQLError:
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(pymysql.MySQLError):
            self._conn.close()


def variable(layout: Layout, name: DbReadable) -> int | None:
    """``@@GLOBAL.name``; None when the server does not answer within a second."""
    with contextlib.suppress(pymysql.MySQLError), \
            mariadb.admin(layout, timeout=1) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT @@GLOBAL.{name}")
        row = cur.fetchone()
        return int(row[0]) if row else None
    return None
