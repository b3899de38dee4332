"""A private Postfix's configuration (sans-IO): the pipe(8) transports under test and
their validation, where everything lives under ``RUN/postfix``, and the main.cf and
master.cf rendered from them. ``lab.postfix`` runs it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab.config import LabConfig
from spamdrill.lab.layout import Layout
from spamdrill.lab.procs import MARKER

# The user pipe(8) runs the wrapper as. pipe(8) refuses root and the mail system owner
# ("postfix"); ``nobody`` exists on every Debian system (base-passwd), is Postfix's own
# default_privs (what local(8) uses for commands), and no lab component runs as it (spamd
# runs as debian-spamd). maildrop in filter-file mode insists that the filter file belong
# to the user running it, and writes the Maildirs as that user: see ``grant_mail``.
PIPE_USER = "nobody"
RECIPIENT_DOMAIN = "lab.test"
# bounces go here: a domain of its own, delivered by Postfix's virtual(8) to one Maildir,
# never through the wrapper under test (which might lose the DSN too)
SENDER_DOMAIN = "senders.test"
SENDER = f"sender@{SENDER_DOMAIN}"
ENV_VAR = "SPAMDRILL_POSTFIX"  # this instance's own marker, beside the lab's
_TRANSPORT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# the services of master.cf a transport's name must not replace
_RESERVED = frozenset(("smtpd", "pickup", "cleanup", "qmgr", "rewrite", "bounce", "defer",
                       "trace", "verify", "flush", "proxymap", "showq", "error", "retry",
                       "discard", "virtual", "anvil", "scache", "postlog", "local", "smtp",
                       "relay", "lmtp", "pipe"))
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
# a recipient's local part the lab accepts: what the lab's maildroprc accepts too
_LOCAL_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# a milter the lab's Postfix may be given: its own loopback TCP endpoint only
_MILTER = re.compile(r"^inet:127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}:[0-9]{1,5}\Z")
MILTER_ACTIONS = ("accept", "tempfail")


class ConfigError(SpamdrillError, ValueError):
    """A transport or setting Postfix could not be given (one line for the CLI)."""


@dataclass(frozen=True)
class Transport:
    """One pipe(8) transport: ``argv`` (Postfix's ``${user}``, ``${recipient}``,
    ``${sender}``, ``${queue_id}`` expand per delivery) for the recipients of ``domain``.
    ``time_limit`` is ``<name>_time_limit``: past it pipe(8) kills the command and bounces
    (Postfix's default ``command_time_limit``, 1000 s)."""

    name: str
    argv: tuple[str, ...]
    domain: str = RECIPIENT_DOMAIN
    time_limit: int = 1000

    def __post_init__(self) -> None:
        if not _TRANSPORT_NAME.match(self.name) or self.name in _RESERVED:
            raise ConfigError(f"transport name {self.name!r}: lower-case letters, digits, "
                              "- and _ only, and not a Postfix service's name")
        if not _DOMAIN.match(self.domain):
            raise ConfigError(f"transport domain {self.domain!r} is not a domain name")
        if not self.argv:
            raise ConfigError(f"transport {self.name}: empty argv")
        for arg in self.argv:
            # master.cf would need { } quoting; no lab path or macro has whitespace
            if not arg or any(c.isspace() for c in arg) or arg[0] in "{}":
                raise ConfigError(f"transport {self.name}: argument {arg!r} is empty, "
                                  "holds whitespace or starts with a brace")


@dataclass(frozen=True)
class Settings:
    """What a lab asks of its Postfix. Timers are whole seconds: Postfix retries a
    deferred message after ``minimal_backoff`` (doubling up to ``maximal_backoff``) and
    looks at the deferred queue every ``queue_run_delay``."""

    transports: tuple[Transport, ...]
    address: str = "127.0.0.1"
    port: int = 0
    queue_run_delay: int = 1
    minimal_backoff: int = 1
    maximal_backoff: int = 4
    pipe_user: str = PIPE_USER
    process_limit: int = 100
    # the local parts accepted at RCPT in each transport's domain (the lab's users by
    # default): pipe(8) hands ${user} to the wrapper under test, and some of the field
    # report's wrappers pass it through a shell; an unknown one is refused (550 5.1.1)
    recipients: tuple[str, ...] = field(default_factory=lambda: tuple(LabConfig().users))
    # smtpd_milters: rspamd's proxy worker in milter mode ("inet:HOST:PORT"), "" for none;
    # milter_default_action: what smtpd does when it is unavailable (see render_main_cf)
    milter: str = ""
    milter_default_action: str = "tempfail"
    milter_content_timeout: int = 0  # whole seconds; 0: Postfix's default (300 s)
    # XCLIENT from the lab's own address only: the injector may name another client
    # address (what a milter is told), so mail is not all from loopback
    xclient: bool = False

    def __post_init__(self) -> None:
        if not self.transports:
            raise ConfigError("Postfix needs at least one transport")
        names = [t.name for t in self.transports]
        domains = [t.domain for t in self.transports]
        if len(set(names)) != len(names) or len(set(domains)) != len(domains):
            raise ConfigError("transport names and domains must be unique")
        if SENDER_DOMAIN in domains:
            raise ConfigError(f"{SENDER_DOMAIN} is the senders' domain, not a transport's")
        if not (self.queue_run_delay > 0 and 0 < self.minimal_backoff <= self.maximal_backoff):
            raise ConfigError("queue timers: 0 < minimal_backoff <= maximal_backoff")
        if not self.recipients:
            raise ConfigError("Postfix needs at least one recipient to accept")
        self._check_milter()

    def _check_milter(self) -> None:
        if self.milter and not _MILTER.match(self.milter):
            raise ConfigError(f"milter {self.milter!r}: inet:127.x.y.z:PORT only")
        if self.milter_content_timeout < 0:
            raise ConfigError("milter_content_timeout: 0 (Postfix's default) or more")
        if self.milter_default_action not in MILTER_ACTIONS:
            raise ConfigError(f"milter_default_action {self.milter_default_action!r}: "
                              + " or ".join(MILTER_ACTIONS))
        for user in self.recipients:
            if not _LOCAL_PART.match(user):
                raise ConfigError(f"recipient {user!r}: letters, digits, '.', '_' and '-' "
                                  "only, starting with a letter or digit")


def maildrop_transport(filter_file: Path, *, wrapper: tuple[str, ...] = (),
                       name: str = "maildrop", domain: str = RECIPIENT_DOMAIN,
                       maildrop: str = "/usr/bin/maildrop", lookup: bool = False,
                       ) -> Transport:
    """maildrop in filter-file mode (``maildrop FILTER USER``, as the lab runs it), or with
    ``lookup`` as production's master.cf runs it (``maildrop -d USER``: maildrop looks the
    recipient up itself, and answers 67 for one it does not know). Run directly without a
    ``wrapper``; a wrapper whose argv ends in ``--`` (spamdrill-deliver) is given
    maildrop's whole command; any other (the field report's, which call
    /usr/bin/maildrop themselves) is given maildrop's arguments."""
    mda: tuple[str, ...] = ("-d", "${user}") if lookup else (str(filter_file), "${user}")
    if not wrapper or wrapper[-1] == "--":
        mda = (maildrop, *mda)
    return Transport(name, (*wrapper, *mda), domain)


def deliver_transport(filter_file: Path, command: str = "spamdrill-deliver", *,
                      name: str = "maildrop", domain: str = RECIPIENT_DOMAIN) -> Transport:
    """spamdrill-deliver (the console script, or a ``--make-launcher`` launcher) running
    maildrop, with the master.cf arguments its ``--help`` documents."""
    return maildrop_transport(filter_file, name=name, domain=domain, wrapper=(
        command, "--recipient=${recipient}", "--sender=${sender}", "--queue-id=${queue_id}",
        "--"))


@dataclass(frozen=True)
class Paths:
    """Every path of one private Postfix, under ``RUN/postfix``."""

    root: Path

    @classmethod
    def of(cls, run_dir: Path) -> Paths:
        return cls(Layout(run_dir).root / "postfix")

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    @property
    def out(self) -> Path:
        return self.root / "master.out"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def senders(self) -> Path:
        """virtual(8)'s mailbox base: the senders' Maildir is ``Maildir/`` below it."""
        return self.root / "senders"

    @property
    def sender_maildir(self) -> Path:
        return self.senders / "Maildir"

    @property
    def bin(self) -> Path:
        """Wrappers under test, copied where pipe(8)'s user can run them."""
        return self.root / "bin"

    @property
    def lib(self) -> Path:
        """A copy of the spamdrill package for spamdrill-deliver under pipe(8)."""
        return self.root / "lib"

    @property
    def filter_file(self) -> Path:
        """The lab's maildroprc, as the pipe user's own copy (see ``grant_mail``)."""
        return self.root / "maildroprc"


def _param_list(*names: str) -> str:
    return " ".join(names)


def render_milter(settings: Settings) -> str:
    """The milter settings of main.cf, as rspamd's integration guide gives them
    (https://rspamd.com/doc/integration.html: ``smtpd_milters``,
    ``milter_protocol = 6``, ``milter_mail_macros``). ``milter_default_action``
    (https://www.postfix.org/MILTER_README.html, "Milter error handling"): when the milter
    cannot be reached or does not answer within its ``milter_*_timeout``, ``accept`` lets
    the mail in as if there were no milter (unscanned), ``tempfail`` answers the SMTP
    client with a 4xx and the sender keeps the message to try again. Postfix's timeouts
    stay its defaults (connect 30 s, command 30 s, content 300 s): rspamd's own
    task_timeout (8 s) answers long before them."""
    if not settings.milter:
        return ""
    # non_smtpd_milters: mail from sendmail(1) (pickup -> cleanup) is scanned as well
    return (f"smtpd_milters = {settings.milter}\n"
            f"non_smtpd_milters = {settings.milter}\n"
            f"milter_default_action = {settings.milter_default_action}\n"
            + (f"milter_content_timeout = {settings.milter_content_timeout}s\n"
               if settings.milter_content_timeout else "")
            + "milter_protocol = 6\n"
            "milter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_authen}\n")


def render_main_cf(paths: Paths, settings: Settings, uid: int, gid: int) -> str:
    """main.cf for the private instance (sans-IO)."""
    env = _param_list(MARKER, ENV_VAR)
    routes = ", ".join(f"{t.domain}={t.name}:" for t in settings.transports)
    known = ", ".join(f"{user}@{t.domain}=lab" for t in settings.transports
                      for user in settings.recipients)
    per_transport = "".join(
        f"{t.name}_destination_recipient_limit = 1\n{t.name}_time_limit = {t.time_limit}s\n"
        for t in settings.transports)
    return f"""\
# spamdrill lab: a private Postfix (generated); never /etc/postfix
compatibility_level = 3.6
queue_directory = {paths.queue}
data_directory = {paths.data}
# no syslog daemon here: Postfix logs to this file through postlogd(8)
maillog_file = {paths.maillog}
maillog_file_prefixes = {paths.root}
delay_logging_resolution_limit = 3
inet_interfaces = {settings.address}
inet_protocols = ipv4
myhostname = mx.{RECIPIENT_DOMAIN}
mydomain = {RECIPIENT_DOMAIN}
myorigin = {SENDER_DOMAIN}
mydestination =
mynetworks = 127.0.0.0/8 {settings.address}/32
# no DNS: nothing is looked up for a client, and no domain is sent out
smtpd_peername_lookup = no
disable_dns_lookups = yes
alias_maps =
alias_database =
notify_classes =
parent_domain_matches_subdomains = debug_peer_list smtpd_access_maps
default_process_limit = {settings.process_limit}
# recipients: one pipe(8) transport per domain, one recipient per delivery
relay_domains = {_param_list(*(t.domain for t in settings.transports))}
transport_maps = inline:{{ {routes} }}
# only the lab's recipients: any other local part is refused at RCPT (550 5.1.1), so no
# stranger's text reaches a pipe(8) command as ${{user}}
relay_recipient_maps = inline:{{ {known} }}
smtpd_reject_unlisted_recipient = yes
{per_transport}# the senders' domain: bounces land in one Maildir, by virtual(8)
virtual_mailbox_domains = {SENDER_DOMAIN}
virtual_mailbox_base = {paths.senders}
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# a deferred message is retried within a drill, not hours later
queue_run_delay = {settings.queue_run_delay}s
minimal_backoff_time = {settings.minimal_backoff}s
maximal_backoff_time = {settings.maximal_backoff}s
delay_warning_time = 0
# the lab's markers reach master, its daemons and every pipe(8) command
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE \
POSTLOG_HOSTNAME {env}
export_environment = TZ MAIL_CONFIG LANG {env}
{render_milter(settings)}{_xclient(settings)}"""


def _xclient(settings: Settings) -> str:
    if not settings.xclient:
        return ""
    return f"smtpd_authorized_xclient_hosts = {settings.address}/32\n"


# Debian's master.cf services that a private instance needs, chroot off (a chroot needs
# copies of /etc files in the queue directory); then the local delivery agent it uses
# (virtual(8) for the lab's bounces)
SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
_SERVICES = SERVICES + "virtual   unix  -       n       n       -       -       virtual\n"


def render_master_cf(settings: Settings, port: int) -> str:
    """master.cf: smtpd on ``address:port``, the daemons, one pipe(8) per transport."""
    pipes = "".join(
        f"{t.name:9s} unix  -       n       n       -       -       pipe\n"
        f"  flags=DRXhu user={settings.pipe_user} argv={' '.join(t.argv)}\n"
        for t in settings.transports)
    return (f"# spamdrill lab: a private Postfix (generated)\n"
            f"{settings.address}:{port} inet n - n - - smtpd\n{_SERVICES}{pipes}")
