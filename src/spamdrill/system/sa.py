"""SpamAssassin's site configuration and its SQL DSNs (sans-IO).

From Mail::SpamAssassin::Conf(3) and Conf::Parser (SpamAssassin 4.0.1): the site
directory's ``*.pre`` files are read first, then its ``*.cf`` files, each set in sorted
order, then spamd's ``--pre``/``--cf`` lines; a later setting wins; ``#`` starts a comment
unless written ``\\#``; ``include FILE`` reads a file relative to the current one;
``if``/``ifplugin`` blocks are read as if true (and said so).

DSNs (DBD::mysql, DBD::MariaDB, DBD::Pg, DBD::SQLite manuals): ``DBI:mysql:db``,
``DBI:mysql:db:host``, ``DBI:mysql:db:host:port``, ``DBI:mysql:database=db;host=h;port=p``
(``db=``, ``dbname=``, ``hostname=``, ``host=h:port`` too), ``mysql_socket=/path``. For
MySQL and MariaDB a missing host, an empty one, or ``localhost`` means the local UNIX
socket: no DNS, no TCP. For Pg a host starting with ``/`` is a socket directory.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from spamdrill.system.values import Sourced, at, bad

VERSION = "SpamAssassin 4.0.1"
SQL_BAYES = {"Mail::SpamAssassin::BayesStore::SQL", "Mail::SpamAssassin::BayesStore::MySQL",
             "Mail::SpamAssassin::BayesStore::PgSQL"}
USED = {"user_scores_dsn", "bayes_sql_dsn", "bayes_store_module", "rbl_timeout",
        "dns_server", "time_limit", "use_bayes"}
Reader = Callable[[str], str | None]


@dataclass(frozen=True)
class Dsn:
    driver: str  # mysql | MariaDB | Pg | SQLite | ...
    database: str
    host: str  # "" when the DSN names none
    port: int | None
    socket: str | None
    connect_timeout: float | None
    source: str

    @property
    def kind(self) -> str:
        """How the database is reached: ``socket``, ``ip`` or ``name`` (needs DNS)."""
        if self.driver.lower() == "sqlite" or self.socket:
            return "socket"
        if self.driver.lower() in ("mysql", "mariadb") and self.host in ("", "localhost"):
            return "socket"
        if self.driver.lower() == "pg" and (not self.host or self.host.startswith("/")):
            return "socket"
        try:
            ipaddress.ip_address(self.host.strip("[]"))
            return "ip"
        except ValueError:
            return "name"


def parse_dsn(text: str, where: str) -> Dsn:
    m = re.fullmatch(r"(?i:dbi):([A-Za-z0-9_]+)(?:\(([^)]*)\))?:(.*)", text.strip())
    if not m:
        raise bad(where, f"{text!r} is not a DBI DSN",
                  "DBI:mysql:database=NAME;host=HOST;port=PORT, DBI:mysql:NAME:HOST:PORT, "
                  "or DBI:mysql:database=NAME;mysql_socket=/PATH")
    driver, rest = m.group(1), m.group(3)
    if "=" in rest:
        return _keyed(driver, rest, where)
    parts = rest.split(":")
    if len(parts) > 3:
        raise bad(where, f"{text!r}: too many ':' fields", "DBI:mysql:NAME:HOST:PORT")
    database, host, port = [*parts, "", ""][:3]
    if "@" in database:  # DBI:mysql:db@host:port
        database, host = database.split("@", 1)
    return Dsn(driver, database, host, _port(port, where), None, None, where)


def _keyed(driver: str, rest: str, where: str) -> Dsn:
    values: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(";"))):
        key, eq, value = item.partition("=")
        if not eq:
            raise bad(where, f"DSN field {item!r} is not key=value")
        values[key.strip().lower()] = value.strip()
    host = values.get("host", values.get("hostname", ""))
    port = values.get("port", "")
    if host.count(":") == 1 and not host.startswith("/"):
        host, port = host.split(":")
    socket = (values.get("mysql_socket") or values.get("mariadb_socket")
              or (host if host.startswith("/") and driver.lower() != "pg" else None))
    timeout = values.get("mysql_connect_timeout") or values.get("mariadb_connect_timeout")
    if timeout is not None and not timeout.isdigit():
        raise bad(where, f"mysql_connect_timeout={timeout!r} is not a whole number of "
                  "seconds")
    database = values.get("database", values.get("db", values.get("dbname", "")))
    return Dsn(driver, database, host, _port(port, where), socket,
               float(timeout) if timeout else None, where)


def _port(text: str, where: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise bad(where, f"DSN port {text!r} is not a port number (1-65535)")
    return int(text)


@dataclass
class SaConfig:
    settings: dict[str, Sourced[str]] = field(default_factory=dict)
    dns_servers: list[Sourced[str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def dsn(self, name: str) -> Dsn | None:
        value = self.settings.get(name)
        return None if value is None else parse_dsn(value.value, value.source)

    @property
    def bayes_sql(self) -> bool:
        module = self.settings.get("bayes_store_module")
        return module is not None and module.value in SQL_BAYES

    def rbl_timeout(self) -> Sourced[float]:
        value = self.settings.get("rbl_timeout")
        if value is None:
            return Sourced(15.0, f"default of {VERSION}")
        first = value.value.split()[0] if value.value.split() else ""
        if not re.fullmatch(r"\d+(\.\d+)?", first):
            raise bad(value.source, f"rbl_timeout {value.value!r} is not seconds",
                      "rbl_timeout T [MIN], e.g. rbl_timeout 15 5")
        return Sourced(float(first), value.source)

    def time_limit(self) -> Sourced[float]:
        value = self.settings.get("time_limit")
        if value is None:
            return Sourced(300.0, f"default of {VERSION}")
        if not re.fullmatch(r"\d+(\.\d+)?", value.value.strip()):
            raise bad(value.source, f"time_limit {value.value!r} is not seconds")
        return Sourced(float(value.value), value.source)


def read_lines(cfg: SaConfig, text: str, path: str, read: Reader, depth: int = 0) -> None:
    """One file's lines into ``cfg``."""
    cfg.files.append(path)
    nesting = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(?<!\\)#.*", "", raw).replace("\\#", "#").strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip()
        where = at(path, n)
        if key in ("if", "ifplugin"):
            nesting += 1
        elif key == "endif":
            nesting = max(0, nesting - 1)
        elif key == "include":
            _include(cfg, value, path, where, read, depth)
        elif key in USED:
            if nesting:
                cfg.notes.append(f"{where}: {key} is inside if/ifplugin: read as if it "
                                 "applies")
            if key == "dns_server":
                cfg.dns_servers.append(Sourced(value, where))
            else:
                cfg.settings[key] = Sourced(value, where)


def _include(cfg: SaConfig, name: str, path: str, where: str, read: Reader,
             depth: int) -> None:
    if depth > 20:
        raise bad(where, "include nested more than 20 deep")
    target = name if name.startswith("/") else path.rsplit("/", 1)[0] + "/" + name
    text = read(target)
    if text is None:
        cfg.notes.append(f"{where}: include {name}: no such file (SpamAssassin warns and "
                         "goes on)")
        return
    read_lines(cfg, text, target, read, depth + 1)
