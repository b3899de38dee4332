"""A private Postfix for the lab: Debian's postfix package, never the machine's instance.

Everything lives under ``RUN/postfix/``: its own config directory (``conf/``, used as
``-c conf``), queue and data directories, ``maillog`` (these machines run no syslog daemon;
without ``maillog_file`` pipe(8)'s verdicts would be invisible) and the sender's mailbox,
where bounces (DSNs) arrive. SMTP listens on one address (loopback, or a lab host's) and
a free port. Recipients in each transport's domain go to a pipe(8) transport running the
wrapper under test, one recipient per delivery; queue timers are seconds, so a deferred
message is retried within a drill.

How it runs (read in Postfix 3.7's ``src/master/master.c`` and ``conf/postfix-script``):
``postfix start`` has master daemonize, and ``postfix start-fg`` runs it under the
postfix-script shell, where master's ``setsid()`` succeeds and so leaves the session we
started. Here the master is spawned directly, as the leader of its own session: its
``setsid()`` then fails with EPERM, which master accepts when ``getsid(0) == getpid()``, and
it stays in the foreground. So the process journal (``procs.spawn``) has it, and ``stop`` or
``lab down`` after a ``kill -9`` of the runner find it and every daemon it forked (all in its
session). pipe(8) puts each command in a session of its own (``setsid()`` in
``src/global/pipe_command.c``), so the lab's marker is passed through master's
``import_environment`` and pipe's ``export_environment``: wrappers, maildrop and spamc carry
it, and ``kill_marked`` finds them. The queue directories are made by Postfix's own
``post-install create-missing`` (what ``postfix check`` runs first), not ``set-permissions``,
which would also chmod the package's shared files under /usr and /etc.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab import safefs
from spamdrill.lab.config import LabConfig
from spamdrill.lab.journal import Journal
from spamdrill.lab.layout import Layout
from spamdrill.lab.net import claim_port, tcp_open
from spamdrill.lab.procs import (
    MARKER,
    Proc,
    is_alive,
    kill_marked,
    marked_pids,
    session_members,
    shielded,
    spawn,
    start_ticks,
    stop,
    wait_until,
)
from spamdrill.proto.postqueue import QueueEntry
from spamdrill.proto.postqueue import parse as postqueue_parse

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
NAME = "postfix"  # the journal's name for the master process
ENV_VAR = "SPAMDRILL_POSTFIX"  # this instance's own marker, beside the lab's
READY_TIMEOUT = 30.0
# the parameters post-install needs; given on its command line, it skips one postconf
# run per parameter (0.4 s -> 0.3 s of a 1 s start-up budget)
_INSTALL_PARAMS = ("command_directory", "daemon_directory", "data_directory",
                   "html_directory", "mail_owner", "mailq_path", "manpage_directory",
                   "newaliases_path", "queue_directory", "readme_directory",
                   "sample_directory", "sendmail_path", "setgid_group", "shlib_directory",
                   "meta_directory")
_TRANSPORT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# the services of master.cf a transport's name must not replace
_RESERVED = frozenset(("smtpd", "pickup", "cleanup", "qmgr", "rewrite", "bounce", "defer",
                       "trace", "verify", "flush", "proxymap", "showq", "error", "retry",
                       "discard", "virtual", "anvil", "scache", "postlog", "local", "smtp",
                       "relay", "lmtp", "pipe"))
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
# a recipient's local part the lab accepts: what the lab's maildroprc accepts too
_LOCAL_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


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


@dataclass
class State:
    """What ``state.json`` holds: enough for a later process to find and stop it."""

    run_dir: str
    address: str
    port: int
    marker: str  # this instance's ENV_VAR value
    pid: int
    ticks: int | None
    pipe_user: str
    transports: list[dict[str, object]] = field(default_factory=list)
    ready_s: float = 0.0

    @property
    def paths(self) -> Paths:
        return Paths.of(Path(self.run_dir))

    def save(self) -> None:
        paths = self.paths
        safefs.write_atomic(paths.root.parent, paths.state,
                            json.dumps(asdict(self), indent=1).encode(), 0o600)

    @classmethod
    def load(cls, run_dir: Path) -> State | None:
        if not os.path.lexists(run_dir):
            return None  # no run directory, no Postfix (one there must pass the check)
        try:
            return cls(**json.loads(Paths.of(run_dir).state.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None


def _param_list(*names: str) -> str:
    return " ".join(names)


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
"""


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


def greeting(host: str, port: int, timeout: float = 1.0) -> bool:
    """A real SMTP greeting (220) from smtpd, then QUIT: the readiness probe."""
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.noop()
        return True
    except (OSError, smtplib.SMTPException):
        return False


def daemon_directory() -> Path:
    return Path(_postconf("-dh", "daemon_directory").strip() or "/usr/lib/postfix/sbin")


def _postconf(*args: str) -> str:
    try:
        done = subprocess.run(["postconf", *args], capture_output=True, text=True,
                              timeout=30, env=_env())
    except FileNotFoundError:
        raise SpamdrillError("postconf not found (Debian package postfix)",
                             "run: sudo scripts/setup.sh") from None
    if done.returncode != 0:
        raise SpamdrillError(f"postconf {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _env() -> dict[str, str]:
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {**os.environ, "PATH": path + ":/usr/sbin:/sbin"}


def _pipe_ids(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise SpamdrillError(f"no user {user!r} for pipe(8)",
                             f"choose an existing unprivileged user, e.g. {PIPE_USER}") from None
    if entry.pw_uid == 0:
        raise SpamdrillError(f"pipe(8) refuses to run commands as root ({user})")
    return entry.pw_uid, entry.pw_gid


def grant_mail(layout: Layout, user: str = PIPE_USER, paths: Paths | None = None) -> Path:
    """Let ``user`` deliver into the lab's Maildirs: maildrop (filter-file mode) refuses a
    filter file it does not own ("mailfilter file is owned by the wrong user"), and writes
    Maildirs, quota files and its log as the user pipe(8) runs it as. The lab's
    maildroprc is copied (the lab's own stays root's, for maildrop run by hand); the
    Maildirs and the maildrop log are handed to ``user``. Returns the copy's path."""
    uid, gid = _pipe_ids(user)
    paths = paths or Paths.of(layout.root)
    paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.maildroprc, paths.filter_file)
    os.chmod(paths.filter_file, 0o600)
    os.chown(paths.filter_file, uid, gid, follow_symlinks=False)
    layout.maildrop_log.touch()
    os.chown(layout.maildrop_log, uid, gid, follow_symlinks=False)
    safefs.chown_tree(layout.root, layout.mail_dir, uid, gid)
    return paths.filter_file


def _write_cold(path: Path, text: str) -> None:
    """Write a config file and date it 10 s back. Postfix reads a "hot" file (modified in
    the last second or two) again and again, 0.3 s apart, until it cools down
    (``dict_load_file_xt`` in ``src/util/dict.c``): 2.1 s of a fresh start-up, measured.
    The file is whole when it is dated."""
    path.write_text(text)
    past = time.time() - 10
    os.utime(path, (past, past))


def _write_config(paths: Paths, settings: Settings, port: int) -> None:
    uid, gid = _pipe_ids(settings.pipe_user)
    for d in (paths.root, paths.conf, paths.queue):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)  # Postfix's daemons run as "postfix" and must reach it
    _write_cold(paths.conf / "main.cf", render_main_cf(paths, settings, uid, gid))
    _write_cold(paths.conf / "master.cf", render_master_cf(settings, port))
    if not paths.sender_maildir.exists():
        paths.senders.mkdir(exist_ok=True)
        subprocess.run(["maildirmake", str(paths.sender_maildir)], check=True,
                       capture_output=True, timeout=30)
    safefs.chown_tree(paths.root.parent, paths.senders, uid, gid)


def _create_queue(paths: Paths) -> None:
    """Postfix's own ``post-install create-missing``: the queue and data directories with
    the owners and modes of the package's postfix-files."""
    values = _postconf("-c", str(paths.conf), *_INSTALL_PARAMS)
    params = [line.replace(" = ", "=", 1) for line in values.splitlines() if " = " in line]
    done = subprocess.run(
        ["sh", str(daemon_directory() / "post-install"), f"config_directory={paths.conf}",
         *params, "create-missing"], capture_output=True, text=True, timeout=60, env=_env())
    if done.returncode != 0:
        raise SpamdrillError(f"post-install create-missing failed: "
                             f"{(done.stderr or done.stdout).strip()}")


Place = Callable[[list[str]], list[str]]


def up(run_dir: Path, settings: Settings, *, marker: str,
       place: Place = lambda argv: argv,
       progress: Callable[[str], None] = lambda _: None) -> State:
    """Start a private Postfix in ``run_dir`` (as root) and wait for its SMTP greeting.

    ``marker``: the lab's (``LabState.marker``), so ``lab down`` finds its processes.
    ``place``: wraps master's argv to run it on a lab host (``ip netns exec ...``).
    The master is journaled in the run directory's journal before anything waits on it;
    on any failure what was started is stopped again.
    """
    if os.geteuid() != 0:
        raise SpamdrillError("a private Postfix needs root (its master runs as root)",
                             "run as root, or without the end-to-end drills")
    paths = Paths.of(run_dir)
    down(run_dir)  # whatever an earlier instance here left
    port = claim_port(settings.address, settings.port, "Postfix SMTP")
    _write_config(paths, settings, port)
    progress(f"Postfix: queue in {paths.queue}")
    _create_queue(paths)
    progress("Postfix: starting master")
    journal = Journal(Layout(run_dir).journal)
    own = uuid.uuid4().hex
    proc = spawn(NAME, place([str(daemon_directory() / "master"), "-c", str(paths.conf)]),
                 log=paths.out, journal=journal, marker=marker, env={**_env(), ENV_VAR: own})
    state = State(run_dir=str(run_dir.resolve()), address=settings.address, port=port,
                  marker=own, pid=proc.pid, ticks=proc.ticks, pipe_user=settings.pipe_user,
                  transports=[asdict(t) for t in settings.transports])
    state.save()
    try:
        state.ready_s = wait_until(proc, lambda: greeting(settings.address, port),
                                   READY_TIMEOUT, "SMTP greeting")
    except BaseException:
        down(run_dir)
        raise
    state.save()
    progress(f"Postfix: 220 on {settings.address}:{port} after {state.ready_s:.2f} s")
    return state


def down(run_dir: Path) -> list[str]:
    """Stop this run directory's Postfix and empty its queue, even after a ``kill -9`` of
    whoever started it: the master from the journal (every start of it, stopped or not,
    with its session), then the pipe(8) commands, which run in sessions of their own,
    by this instance's marker, with whatever their sessions hold. Idempotent."""
    paths = Paths.of(run_dir)
    journal = Journal(Layout(run_dir).journal)
    stopped: list[str] = []
    with shielded():
        # the master is signalled only if it carries this instance's own marker (from
        # state.json, root's): a start record alone steers no kill
        state = State.load(run_dir)
        for rec in journal.starts() if state is not None else ():
            if rec.name != NAME or state is None:
                continue
            proc = Proc(NAME, rec.pid, rec.ticks, paths.out)
            if stop(proc, journal, marker=state.marker, var=ENV_VAR):
                stopped.append(NAME)
        if state is not None:
            n = _kill_commands(state.marker)
            if n:
                stopped.append(f"{n} pipe command process(es)")
        if clean_queue(paths):
            stopped.append("queue files")
        if state is not None:
            paths.state.unlink(missing_ok=True)
    return stopped


def _kill_commands(marker: str) -> int:
    """SIGKILL the pipe(8) commands (marked) and whatever their sessions hold: pipe(8)
    makes each command a session leader, and maildrop may start spamc with an environment
    of its own."""
    leaders = [(pid, start_ticks(pid)) for pid in marked_pids(marker, ENV_VAR)
               if _session_of(pid) == pid]
    killed = set(kill_marked(marker, ENV_VAR))
    for sid, ticks in leaders:  # marked leaders: what their sessions hold is theirs
        for pid in session_members(sid, ticks) if ticks is not None else []:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
    return len(killed)


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def clean_queue(paths: Paths) -> bool:
    """Remove the queue and data directories (master is stopped); True if any queue file
    was there."""
    had = paths.queue.is_dir() and any(
        f.is_file() for sub in paths.queue.iterdir() if sub.name != "pid"
        for f in sub.rglob("*"))
    for d in (paths.queue, paths.data):
        shutil.rmtree(d, ignore_errors=True)
    return had


def alive(state: State) -> bool:
    return is_alive(state.pid, state.ticks)


def status(run_dir: Path) -> tuple[State | None, bool]:
    """This run directory's Postfix, and whether it answers with a greeting."""
    state = State.load(run_dir)
    if state is None:
        return None, False
    return state, alive(state) and greeting(state.address, state.port)


def postqueue(paths: Paths, *args: str) -> str:
    """``postqueue -c CONF ARGS`` (``-j``: the queue as JSON lines; ``-f``: retry every
    deferred message now)."""
    done = subprocess.run(["postqueue", "-c", str(paths.conf), *args], capture_output=True,
                          text=True, timeout=60, env=_env())
    if done.returncode != 0:
        raise SpamdrillError(f"postqueue {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def queue_json(paths: Paths) -> str:
    return postqueue(paths, "-j")


def flush(paths: Paths) -> None:
    """Retry every deferred message now (``postqueue -f``), e.g. when a fault heals."""
    postqueue(paths, "-f")


def wait_queue(paths: Paths, until: Callable[[list[QueueEntry]], bool], timeout: float,
               what: str, *, poll: float = 0.1) -> list[QueueEntry]:
    """Poll the real queue (``postqueue -j``) until ``until`` holds for it; returns the
    queue then. SpamdrillError after ``timeout`` s, naming ``what`` was awaited."""
    t0 = time.monotonic()
    while True:
        entries = postqueue_parse(queue_json(paths))
        if until(entries):
            return entries
        if time.monotonic() - t0 > timeout:
            raise SpamdrillError(f"Postfix's queue: no {what} after {timeout:.0f} s "
                                 f"({len(entries)} message(s) queued)",
                                 f"see {paths.maillog}")
        time.sleep(poll)


def wait_drained(paths: Paths, timeout: float) -> float:
    """Wait until the queue is empty (bounces delivered too); returns the seconds taken."""
    t0 = time.monotonic()
    wait_queue(paths, lambda q: not q, timeout, "empty queue")
    return time.monotonic() - t0


def port_free(address: str, port: int) -> bool:
    """Nothing answers on ``address:port`` any more."""
    return not tcp_open(address, port, timeout=0.2)
