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
from spamdrill.lab.journal import Journal
from spamdrill.lab.layout import Layout
from spamdrill.lab.net import claim_port, tcp_open
from spamdrill.lab.postfix_cf import ENV_VAR as ENV_VAR
from spamdrill.lab.postfix_cf import PIPE_USER as PIPE_USER
from spamdrill.lab.postfix_cf import RECIPIENT_DOMAIN as RECIPIENT_DOMAIN
from spamdrill.lab.postfix_cf import SENDER as SENDER
from spamdrill.lab.postfix_cf import SENDER_DOMAIN as SENDER_DOMAIN
from spamdrill.lab.postfix_cf import SERVICES as SERVICES
from spamdrill.lab.postfix_cf import ConfigError as ConfigError
from spamdrill.lab.postfix_cf import Paths as Paths
from spamdrill.lab.postfix_cf import Settings as Settings
from spamdrill.lab.postfix_cf import Transport as Transport
from spamdrill.lab.postfix_cf import deliver_transport as deliver_transport
from spamdrill.lab.postfix_cf import maildrop_transport as maildrop_transport
from spamdrill.lab.postfix_cf import render_main_cf as render_main_cf
from spamdrill.lab.postfix_cf import render_master_cf as render_master_cf
from spamdrill.lab.procs import (
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

NAME = "postfix"  # the journal's name for the master process
READY_TIMEOUT = 30.0
# the parameters post-install needs; given on its command line, it skips one postconf
# run per parameter (0.4 s -> 0.3 s of a 1 s start-up budget)
_INSTALL_PARAMS = ("command_directory", "daemon_directory", "data_directory",
                   "html_directory", "mail_owner", "mailq_path", "manpage_directory",
                   "newaliases_path", "queue_directory", "readme_directory",
                   "sample_directory", "sendmail_path", "setgid_group", "shlib_directory",
                   "meta_directory")


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
                                 f"({_queued(entries)}); its log's last lines: "
                                 f"{_last_words(paths)}", f"see {paths.maillog}")
        time.sleep(poll)


def _queued(entries: list[QueueEntry]) -> str:
    """What the queue held, per message: where, and why if Postfix said."""
    said = [f"{e.queue_id} in {e.queue_name}" + (f" ({e.reason[:80]})" if e.reason else
                                                 ", no reason")
            for e in entries[:5]]
    return f"{len(entries)} message(s) queued" + (": " + "; ".join(said) if said else "")


def _last_words(paths: Paths, lines: int = 6) -> str:
    """The maillog's last lines, one string: a wait that failed names what Postfix did
    last (a daemon that died, a warning), not only where its log was."""
    try:
        text = paths.maillog.read_text(errors="replace")
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return " | ".join(text.splitlines()[-lines:]) or "empty"


def wait_drained(paths: Paths, timeout: float) -> float:
    """Wait until the queue is empty (bounces delivered too); returns the seconds taken."""
    t0 = time.monotonic()
    wait_queue(paths, lambda q: not q, timeout, "empty queue")
    return time.monotonic() - t0


def port_free(address: str, port: int) -> bool:
    """Nothing answers on ``address:port`` any more."""
    return not tcp_open(address, port, timeout=0.2)
