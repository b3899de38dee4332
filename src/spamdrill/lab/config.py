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
    password: str = ""  # SpamAssassin's SQL password; empty: random per lab
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
    # after the xfilter, a message it left empty defers (75) instead of being "delivered":
    # maildrop delivers nothing for an empty message and exits 0 (deliver.C, formatmbox.C)
    empty_guard: bool = False
    # the xfilter's program: spamc, or spamdrill-spamc (spamc_args may add --deadline)
    client: str = "spamc"


@dataclass(frozen=True)
class RspamdSettings:
    """The lab's rspamd and its Redis (``spamdrill.lab.rspamd``), off unless ``enabled``.
    0 keeps Debian's shipped value (ports: pick free ones): ``workers`` is the normal
    worker's ``count`` (rspamd's default: CPUs - 2, between 1 and 4, cfg_utils.c),
    ``task_timeout`` and ``redis_timeout`` in seconds."""

    enabled: bool = False
    port: int = 0  # the normal worker (rspamc's)
    controller_port: int = 0
    proxy_port: int = 0  # the proxy worker, in milter mode
    redis_port: int = 0
    workers: int = 0
    task_timeout: float = 0.0
    soft_reject_on_timeout: bool = False
    redis_timeout: float = 0.0


CLIENTS = ("spamc", "spamdrill-spamc", "rspamc")  # rspamc: rspamd.enabled
WRAPPERS = ("bounce-on-75", "spamdrill-deliver", "none", "measured")
WRAPPER_EVENTS = ("timeout", "filter-failed")  # what maildrop's 75 can say
FATES = ("delivered", "deferred", "bounced", "lost", "duplicated")


@dataclass(frozen=True)
class DeliverySettings:
    """What runs maildrop and what Postfix does with its exit: the findings judge each
    failure mode by it. The default is the field report's wrapper, which turned
    maildrop's 75 into 100 (a bounce); ``spamdrill-deliver`` defers at its ``deadline``;
    ``none`` is maildrop under pipe(8) directly (75 defers); ``measured``: a system's
    own wrapper, run in the budget's sandbox, with ``wrapper_fates`` what Postfix then
    did to the mail for each way maildrop gives up (``--etc``: never a guess from the
    wrapper's text)."""

    wrapper: str = "bounce-on-75"
    wrapper_argv: tuple[str, ...] = ()  # the system's wrapper command, from master.cf
    wrapper_fates: tuple[tuple[str, str], ...] = ()  # (event, fate), ``measured`` only
    deadline: float = 600.0  # spamdrill-deliver's, production seconds
    postfix_time_limit: float = 1000.0  # command_time_limit, production seconds


TOPOLOGIES = ("loopback", "hosts")
# net.ipv4.tcp_syncookies by name; "kernel" keeps the host's default (1 on Debian)
SYNCOOKIES = {"kernel": None, "off": 0, "on-overflow": 1, "always": 2}


@dataclass(frozen=True)
class TopologySettings:
    """``loopback``: everything on 127.0.0.1. ``hosts`` (root): client, spamd, database and
    DNS each in a network namespace of its own (``spamdrill.lab.netns``). A somaxconn of 0
    keeps the kernel's default in that host. ``clients``: client hosts (up to 8; a
    distributed flood gives each local worker its own). ``spamd_syncookies``: whether
    spamd's host answers a full SYN queue with SYN cookies (``SYNCOOKIES``)."""

    kind: str = "loopback"
    clients: int = 1
    spamd_somaxconn: int = 0
    client_somaxconn: int = 0
    db_somaxconn: int = 0
    spamd_syncookies: str = "kernel"

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
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    rspamd: RspamdSettings = field(default_factory=RspamdSettings)
    # lab user -> required_score stored in SQL userpref
    users: dict[str, float] = field(
        default_factory=lambda: {"alice": 5.0, "bob": 3.0, "carol": 8.0}
    )


def _value(name: str, key: str, default: object, value: object) -> object:
    """``value`` checked against the type of the setting's ``default`` (an int is a valid
    float; a list of strings a valid tuple), never negative."""
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpamdrillError(f"{name}.{key} must be a list of strings")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SpamdrillError(f"{name}.{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, type(default)):
        raise SpamdrillError(f"{name}.{key} must be {type(default).__name__}, got {value!r}")
    if isinstance(value, int | float) and value < 0:
        raise SpamdrillError(f"{name}.{key} must not be negative, got {value}")
    return value


def _validated(cls: type[Any], name: str, raw: object) -> dict[str, Any]:
    """The settings of ``raw`` for section ``name``, each checked against the field's type;
    defaults left out."""
    if not isinstance(raw, dict):
        raise SpamdrillError(f"[{name}] must be a table", "see docs/CONFIG.md")
    known = {f.name for f in fields(cls)}
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        attr = key.replace("-", "_")
        if attr not in known:
            raise SpamdrillError(f"unknown setting {name}.{key}",
                                 "known: " + ", ".join(sorted(known)))
        values[attr] = _value(name, key, getattr(defaults, attr), value)
    return values


def _section(cls: type[Any], name: str, raw: object) -> Any:
    return _check(cls(**_validated(cls, name, raw)))


def _check(settings: Any) -> Any:
    """Rules across a section's fields."""
    if isinstance(settings, TopologySettings) and settings.kind not in TOPOLOGIES:
        raise SpamdrillError(f"unknown topology.kind {settings.kind!r}",
                             "known: " + ", ".join(TOPOLOGIES))
    if isinstance(settings, TopologySettings) and settings.spamd_syncookies not in SYNCOOKIES:
        raise SpamdrillError(f"unknown topology.spamd_syncookies {settings.spamd_syncookies!r}",
                             "known: " + ", ".join(SYNCOOKIES))
    if isinstance(settings, TopologySettings) and not 1 <= settings.clients <= 8:
        raise SpamdrillError(f"topology.clients = {settings.clients}: from 1 to 8")
    if isinstance(settings, MaildropSettings) and settings.client not in CLIENTS:
        raise SpamdrillError(f"unknown maildrop.client {settings.client!r}",
                             "known: " + ", ".join(CLIENTS))
    if isinstance(settings, DeliverySettings) and settings.wrapper not in WRAPPERS:
        raise SpamdrillError(f"unknown delivery.wrapper {settings.wrapper!r}",
                             "known: " + ", ".join(WRAPPERS))
    if isinstance(settings, DeliverySettings):
        fates = dict(settings.wrapper_fates)
        if any(e not in WRAPPER_EVENTS or f not in FATES for e, f in fates.items()) or \
                (settings.wrapper == "measured") != (set(fates) == set(WRAPPER_EVENTS)):
            raise SpamdrillError("delivery.wrapper_fates: a fate (" + ", ".join(FATES)
                                 + ") for each of " + ", ".join(WRAPPER_EVENTS)
                                 + ", with wrapper = \"measured\" only")
    if isinstance(settings, SpamdSettings) and (settings.max_children < 1
                                                or settings.max_conn_per_child < 1):
        raise SpamdrillError("spamd.max_children and spamd.max_conn_per_child must be >= 1")
    return settings


SECTIONS: dict[str, type[Any]] = {}


def check_overrides(name: str, raw: object) -> dict[str, Any]:
    """Part of a section (a scenario's ``[lab.spamd]``), validated exactly as a lab
    config's own section is."""
    if name not in SECTIONS:
        raise SpamdrillError(f"unknown lab section [{name}]", "known: " + ", ".join(SECTIONS))
    values = _validated(SECTIONS[name], name, raw)
    _check(SECTIONS[name](**values))
    return values


def with_overrides(config: LabConfig, overrides: dict[str, dict[str, Any]]) -> LabConfig:
    """``config`` with each section's validated overrides applied."""
    return replace(config, **{name: _check(replace(getattr(config, name), **values))
                              for name, values in overrides.items() if values})


def from_dict(raw: dict[str, Any]) -> LabConfig:
    """Validate a parsed TOML document into a LabConfig."""
    sections = SECTIONS
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
    return config


SECTIONS.update(topology=TopologySettings, spamd=SpamdSettings, database=DatabaseSettings,
                dns=DnsSettings, maildrop=MaildropSettings, delivery=DeliverySettings,
                rspamd=RspamdSettings)


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
