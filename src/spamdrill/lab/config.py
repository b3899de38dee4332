"""The lab's settings: defaults, a TOML file, validation. Sans-IO apart from ``load``.

Every value a drill may want to change (spamd's prefork and timeout flags, the spamc flags
maildrop's ``xfilter`` uses, quotas, MariaDB limits) lives here so a lab is reproducible
from one file. Each section is a typed structure (msgspec, as scenarios are) validated
when parsed: a wrong value is one line naming the key and what it wants, before any lab
starts. A scenario's ``[lab.*]`` overrides go through the same types.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec

from spamdrill.errors import SpamdrillError

Count = Annotated[int, msgspec.Meta(ge=0)]
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Client = Literal["spamc", "spamdrill-spamc", "rspamc", "none"]  # rspamc: rspamd.enabled
# Postfix's milter_default_action: what smtpd does when the milter is unavailable
MilterAction = Literal["accept", "tempfail"]
Wrapper = Literal["bounce-on-75", "spamdrill-deliver", "none", "measured"]
WrapperEvent = Literal["timeout", "filter-failed"]  # what maildrop's 75 can say
FateName = Literal["delivered", "deferred", "bounced", "lost", "duplicated"]
Topology = Literal["loopback", "hosts"]
Syncookies = Literal["kernel", "off", "on-overflow", "always"]

WRAPPER_EVENTS: tuple[str, ...] = get_args(WrapperEvent)
FATES: tuple[str, ...] = get_args(FateName)
TOPOLOGIES: tuple[str, ...] = get_args(Topology)
# net.ipv4.tcp_syncookies by name; "kernel" keeps the host's default (1 on Debian)
SYNCOOKIES: dict[str, int | None] = {"kernel": None, "off": 0, "on-overflow": 1, "always": 2}


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A table of the lab config: unknown keys are an error."""


class SpamdSettings(_Section, frozen=True):
    """spamd's flags (``spamd --help``); 0 ports mean "pick a free one"."""

    port: Port = 0
    max_children: AtLeastOne = 5
    min_children: Count = 1
    min_spare: Count = 1
    max_spare: Count = 2
    max_conn_per_child: AtLeastOne = 200
    timeout_tcp: Count = 30
    timeout_child: Count = 300
    rbl_timeout: Count = 15  # SpamAssassin's DNSBL timeout (local.cf), not a spamd flag
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


class DatabaseSettings(_Section, frozen=True):
    port: Port = 0
    max_connections: Count = 151
    password: str = ""  # SpamAssassin's SQL password; empty: random per lab
    by_ip: bool = False  # DSN names the IP even when the lab resolver could serve a name
    proxy: bool = False  # spamd reaches MariaDB through the lab's TCP fault proxy
    user_prefs: bool = True  # per-user preferences from SQL (spamd --sql-config)
    bayes_sql: bool = True  # Bayes in SQL (bayes_store_module ...::MySQL or ::SQL)
    connect_timeout: Count = 0  # the DSNs' mysql_connect_timeout; 0: none


class DnsSettings(_Section, frozen=True):
    port: Port = 0
    secondary: bool = False  # a second lab DNS server, listed after the first
    zones: tuple[str, ...] = ("zen.spamhaus.org", "bl.spamcop.net", "multi.uribl.com")


class MaildropSettings(_Section, frozen=True):
    """The generated maildroprc mirrors the field report's /etc/maildroprc."""

    size_limit: Count = 250000
    spamc_args: tuple[str, ...] = ("-t", "100")
    quota: str = "10000000S"
    in_exception: bool = True  # the xfilter sits inside exception { } (catches -x failures)
    # after the xfilter, a message it left empty defers (75) instead of being "delivered":
    # maildrop delivers nothing for an empty message and exits 0 (deliver.C, formatmbox.C)
    empty_guard: bool = False
    # the xfilter's program: spamc, or spamdrill-spamc (spamc_args may add --deadline);
    # none: no xfilter at all (the mail was scanned before the queue, by rspamd's milter)
    client: Client = "spamc"


class RspamdSettings(_Section, frozen=True):
    """The lab's rspamd and its Redis (``spamdrill.lab.rspamd``), off unless ``enabled``.
    0 keeps Debian's shipped value (ports: pick free ones): ``workers`` is the normal
    worker's ``count`` (rspamd's default: CPUs - 2, between 1 and 4, cfg_utils.c),
    ``task_timeout`` and ``redis_timeout`` in seconds. ``milter_default_action``: what the
    lab's Postfix does when rspamd's milter is unavailable (Postfix's own default is
    ``tempfail``: https://www.postfix.org/MILTER_README.html, "Milter error handling")."""

    enabled: bool = False
    port: Port = 0  # the normal worker (rspamc's)
    controller_port: Port = 0
    proxy_port: Port = 0  # the proxy worker, in milter mode
    redis_port: Port = 0
    workers: Count = 0
    task_timeout: Seconds = 0.0
    soft_reject_on_timeout: bool = False
    redis_timeout: Seconds = 0.0
    milter_default_action: MilterAction = "tempfail"
    milter_content_timeout: Seconds = 0.0  # Postfix's wait for the milter; 0: its 300 s
    slow_rule: bool = False  # a rule that asks the lab DNS (lab.rspamd.SLOW_RULE) per scan
    dns_timeout: Seconds = 0.0  # options.dns.timeout; 0: Debian's 1 s
    dns_retransmits: Count = 0  # options.dns.retransmits; 0: Debian's 5
    # rspamd reaches its Redis through the lab's TCP fault proxy (a lab process shaped
    # through a file, as spamd's way to MariaDB with database.proxy): the Redis link faults
    redis_proxy: bool = False


class DeliverySettings(_Section, frozen=True):
    """What runs maildrop and what Postfix does with its exit: the findings judge each
    failure mode by it. The default is the field report's wrapper, which turned
    maildrop's 75 into 100 (a bounce); ``spamdrill-deliver`` defers at its ``deadline``;
    ``none`` is maildrop under pipe(8) directly (75 defers); ``measured``: a system's
    own wrapper, with ``wrapper_fates`` what Postfix then did to the mail for each way
    maildrop gives up (``--etc`` fills it from the budget's sandbox, never a guess from
    the wrapper's text; a config file may state it)."""

    wrapper: Wrapper = "bounce-on-75"
    wrapper_argv: tuple[str, ...] = ()  # the system's wrapper command, from master.cf
    wrapper_fates: dict[WrapperEvent, FateName] = {}  # event -> fate, ``measured`` only
    deadline: Seconds = 600.0  # spamdrill-deliver's, production seconds
    postfix_time_limit: Seconds = 1000.0  # command_time_limit, production seconds

    def __post_init__(self) -> None:
        if (self.wrapper == "measured") != (set(self.wrapper_fates) == set(WRAPPER_EVENTS)):
            raise ValueError("wrapper_fates: a fate for each of " + ", ".join(WRAPPER_EVENTS)
                             + ', with wrapper = "measured" only')


class TopologySettings(_Section, frozen=True):
    """``loopback``: everything on 127.0.0.1. ``hosts`` (root): client, spamd, database and
    DNS each in a network namespace of its own (``spamdrill.lab.netns``). A somaxconn of 0
    keeps the kernel's default in that host. ``clients``: client hosts (up to 8; a
    distributed flood gives each local worker its own). ``spamd_syncookies``: whether
    spamd's host answers a full SYN queue with SYN cookies (``SYNCOOKIES``)."""

    kind: Topology = "loopback"
    clients: Annotated[int, msgspec.Meta(ge=1, le=8)] = 1
    spamd_somaxconn: Count = 0
    client_somaxconn: Count = 0
    db_somaxconn: Count = 0
    spamd_syncookies: Syncookies = "kernel"

    @property
    def hosts(self) -> bool:
        return self.kind == "hosts"


# a lab user's name (letters and digits) -> required_score stored in SQL userpref
UserName = Annotated[str, msgspec.Meta(pattern=r"^[^\W_]+$")]
Users = Annotated[dict[UserName, float], msgspec.Meta(min_length=1)]


def _default_users() -> dict[str, float]:
    return {"alice": 5.0, "bob": 3.0, "carol": 8.0}


class LabConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    topology: TopologySettings = TopologySettings()
    spamd: SpamdSettings = SpamdSettings()
    database: DatabaseSettings = DatabaseSettings()
    dns: DnsSettings = DnsSettings()
    maildrop: MaildropSettings = MaildropSettings()
    delivery: DeliverySettings = DeliverySettings()
    rspamd: RspamdSettings = RspamdSettings()
    users: Users = msgspec.field(default_factory=_default_users)


# the section tables by name, from LabConfig itself
SECTIONS: dict[str, type[_Section]] = {
    f.name: f.type for f in msgspec.structs.fields(LabConfig) if f.name != "users"}

_TYPE_WORDS = {"object": "a table", "array": "a list"}
_HINTS = {"users": "user names are letters and digits, scores are numbers",
          "delivery.wrapper_fates": "events: " + ", ".join(WRAPPER_EVENTS) + "; fates: "
          + ", ".join(FATES)}


def _hint(path: list[str], message: str) -> str:
    """What is allowed at ``path``: the choices of an enumerated key, a section's keys."""
    section = SECTIONS.get(path[0]) if path else None
    if message.startswith("Object contains unknown field"):
        known = [f.name for f in msgspec.structs.fields(section or LabConfig)]
        return "known: " + ", ".join(known)
    if section is not None and len(path) > 1:
        hints = {f.name: f.type for f in msgspec.structs.fields(section)}
        choices = get_args(hints.get(path[1]))
        if choices and all(isinstance(c, str) for c in choices):
            return "known: " + ", ".join(choices)
    return _HINTS.get(".".join(path[:2]), _HINTS.get(path[0] if path else "",
                                                      "see docs/CONFIG.md"))


def _error(exc: msgspec.ValidationError, prefix: tuple[str, ...] = ()) -> SpamdrillError:
    """msgspec's message as one line that names the key first: ``spamd.max_children:
    expected int >= 1``; an unknown key as ``unknown setting spamd.foo``."""
    text = str(exc)
    where = re.search(r" - at (?:`key` in )?`\$((?:\.[\w-]+|\[[^]]*\])*)`$", text)
    path = [*prefix, *re.findall(r"\.([\w-]+)", where.group(1) if where else "")]
    message = text[:where.start()] if where else text
    rule = re.match(r"(\w+): ", message)  # a rule across a section's keys names its key
    if rule and len(path) == 1 and path[0] in SECTIONS:
        path, message = [*path, rule.group(1)], message[rule.end():]
    hint = _hint(path, message)
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    if unknown:
        if not path:
            return SpamdrillError(f"unknown section [{unknown.group(1)}]", hint)
        return SpamdrillError(f"unknown setting {'.'.join(path)}.{unknown.group(1)}", hint)
    message = re.sub(r"`(\w+)`", lambda m: _TYPE_WORDS.get(m.group(1), m.group(1)), message)
    message = re.sub(r"matching regex '.*'", "of letters and digits", message)
    message = message[0].lower() + message[1:]
    return SpamdrillError(f"{'.'.join(path) or 'lab config'}: {message}", hint)


def _keys(raw: object) -> object:
    """A table's keys in either spelling (``max-conn-per-child`` as ``max_conn_per_child``)."""
    if isinstance(raw, dict):
        return {str(k).replace("-", "_"): v for k, v in raw.items()}
    return raw


def _convert(raw: object, cls: type[Any], prefix: tuple[str, ...] = ()) -> Any:
    try:
        return msgspec.convert(raw, cls)
    except msgspec.ValidationError as exc:
        raise _error(exc, prefix) from None


def check_overrides(name: str, raw: object) -> dict[str, Any]:
    """Part of a section (a scenario's ``[lab.spamd]``), validated exactly as a lab
    config's own section is; its keys in the settings' spelling."""
    if name not in SECTIONS:
        raise SpamdrillError(f"unknown lab section [{name}]", "known: " + ", ".join(SECTIONS))
    values = _keys(raw)
    _convert(values, SECTIONS[name], (name,))
    assert isinstance(values, dict)
    return values


def with_overrides(config: LabConfig, overrides: dict[str, dict[str, Any]]) -> LabConfig:
    """``config`` with each section's overrides applied, the section validated again as a
    whole (its rules across keys included)."""
    changed = {}
    for name, values in overrides.items():
        if values:
            merged = {**msgspec.to_builtins(getattr(config, name)),
                      **check_overrides(name, values)}
            changed[name] = _convert(merged, SECTIONS[name], (name,))
    return msgspec.structs.replace(config, **changed)


def from_dict(raw: dict[str, Any]) -> LabConfig:
    """Validate a parsed TOML document into a LabConfig."""
    tables = {k: v if k == "users" else _keys(v) for k, v in raw.items()}
    config: LabConfig = _convert(tables, LabConfig)
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
