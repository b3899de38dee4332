"""The lab's settings: defaults, a TOML file, validation. Sans-IO apart from ``load``.

Every value a drill may want to change (spamd's prefork and timeout flags, the spamc flags
maildrop's ``xfilter`` uses, quotas, MariaDB limits) lives here so a lab is reproducible
from one file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from spamdrill.errors import SpamdrillError


@dataclass(frozen=True)
class SpamdSettings:
    """spamd's flags (``spamd --help``); 0 ports mean "pick a free one"."""

    port: int = 0
    max_children: int = 5
    min_children: int = 1
    min_spare: int = 1
    max_spare: int = 2
    max_conn_per_child: int = 200
    timeout_tcp: int = 30
    timeout_child: int = 300
    rbl_timeout: int = 15  # SpamAssassin's DNSBL timeout (local.cf), not a spamd flag
    extra_args: tuple[str, ...] = ()

    def flags(self) -> list[str]:
        """Command-line flags for these settings, in spamd's long-option spelling."""
        return [
            f"--max-children={self.max_children}",
            f"--min-children={self.min_children}",
            f"--min-spare={self.min_spare}",
            f"--max-spare={self.max_spare}",
            f"--max-conn-per-child={self.max_conn_per_child}",
            f"--timeout-tcp={self.timeout_tcp}",
            f"--timeout-child={self.timeout_child}",
            *self.extra_args,
        ]


@dataclass(frozen=True)
class DatabaseSettings:
    port: int = 0
    max_connections: int = 151
    password: str = "spamdrill-lab"
    by_ip: bool = False  # DSN names the IP even when the lab resolver could serve a name
    proxy: bool = False  # spamd reaches MariaDB through the lab's TCP fault proxy
    user_prefs: bool = True  # per-user preferences from SQL (spamd --sql-config)
    bayes_sql: bool = True  # Bayes in SQL (bayes_store_module ...::MySQL or ::SQL)
    connect_timeout: int = 0  # the DSNs' mysql_connect_timeout; 0: none


@dataclass(frozen=True)
class DnsSettings:
    port: int = 0
    secondary: bool = False  # a second lab DNS server, listed after the first
    zones: tuple[str, ...] = ("zen.spamhaus.org", "bl.spamcop.net", "multi.uribl.com")


@dataclass(frozen=True)
class MaildropSettings:
    """The generated maildroprc mirrors the field report's /etc/maildroprc."""

    size_limit: int = 250000
    spamc_args: tuple[str, ...] = ("-t", "100")
    quota: str = "10000000S"
    in_exception: bool = True  # the xfilter sits inside exception { } (catches -x failures)
    wrapper: str = "none"  # what runs maildrop: none | spamdrill-deliver | bounce-on-75
    wrapper_argv: tuple[str, ...] = ()  # the system's wrapper command, from master.cf
    deliver_deadline: int = 0  # spamdrill-deliver's deadline; 0: its default


TOPOLOGIES = ("loopback", "hosts")


@dataclass(frozen=True)
class TopologySettings:
    """``loopback``: everything on 127.0.0.1. ``hosts`` (root): client, spamd, database and
    DNS each in a network namespace of its own (``spamdrill.lab.netns``). A somaxconn of 0
    keeps the kernel's default in that host."""

    kind: str = "loopback"
    spamd_somaxconn: int = 0
    client_somaxconn: int = 0
    db_somaxconn: int = 0

    @property
    def hosts(self) -> bool:
        return self.kind == "hosts"


@dataclass(frozen=True)
class LabConfig:
    topology: TopologySettings = field(default_factory=TopologySettings)
    spamd: SpamdSettings = field(default_factory=SpamdSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    maildrop: MaildropSettings = field(default_factory=MaildropSettings)
    # lab user -> required_score stored in SQL userpref
    users: dict[str, float] = field(
        default_factory=lambda: {"alice": 5.0, "bob": 3.0, "carol": 8.0}
    )


def _section(cls: type[Any], name: str, raw: object) -> Any:
    if not isinstance(raw, dict):
        raise SpamdrillError(f"[{name}] must be a table", "see docs/CONFIG.md")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        attr = key.replace("-", "_")
        if attr not in known:
            raise SpamdrillError(
                f"unknown setting {name}.{key}",
                "known: " + ", ".join(sorted(known)),
            )
        default = getattr(cls(), attr)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SpamdrillError(f"{name}.{key} must be a list of strings")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise SpamdrillError(f"{name}.{key} must be true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, type(default)):
            raise SpamdrillError(
                f"{name}.{key} must be {type(default).__name__}, got {value!r}"
            )
        if isinstance(value, int) and value < 0:
            raise SpamdrillError(f"{name}.{key} must not be negative, got {value}")
        values[attr] = value
    return cls(**values)


def from_dict(raw: dict[str, Any]) -> LabConfig:
    """Validate a parsed TOML document into a LabConfig."""
    sections = {
        "topology": TopologySettings,
        "spamd": SpamdSettings,
        "database": DatabaseSettings,
        "dns": DnsSettings,
        "maildrop": MaildropSettings,
    }
    config = LabConfig()
    for key, value in raw.items():
        if key == "users":
            if not isinstance(value, dict) or not value:
                raise SpamdrillError("[users] must map user names to required_score numbers")
            users: dict[str, float] = {}
            for user, score in value.items():
                if not user.isalnum() or isinstance(score, bool) or not isinstance(
                    score, int | float
                ):
                    raise SpamdrillError(
                        f"bad lab user {user!r} = {score!r}",
                        "user names are letters and digits, scores are numbers",
                    )
                users[user] = float(score)
            config = replace(config, users=users)
        elif key in sections:
            config = replace(config, **{key: _section(sections[key], key, value)})
        else:
            raise SpamdrillError(
                f"unknown section [{key}]", "known: " + ", ".join([*sections, "users"])
            )
    if config.topology.kind not in TOPOLOGIES:
        raise SpamdrillError(f"unknown topology.kind {config.topology.kind!r}",
                             "known: " + ", ".join(TOPOLOGIES))
    spamd = config.spamd
    if spamd.max_children < 1 or spamd.max_conn_per_child < 1:
        raise SpamdrillError("spamd.max_children and spamd.max_conn_per_child must be >= 1")
    return config


def load(path: Path | None) -> LabConfig:
    """Read a TOML lab config; no path means the defaults."""
    if path is None:
        return LabConfig()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SpamdrillError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpamdrillError(f"config file {path} is not valid TOML: {exc}") from None
    return from_dict(raw)
