"""Bring a lab up, report its status, take it down. Orchestration only: each component's
details live in its own module (mariadb, spamd, dns, maildrop)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab import dns, faults, maildrop, mariadb, netns, postfix, redis, spamd
from spamdrill.lab import rspamd as rspamd_lab
from spamdrill.lab.config import LabConfig
from spamdrill.lab.journal import Journal
from spamdrill.lab.layout import Layout, check_socket_room, default_run_dir, secure_dir
from spamdrill.lab.placement import (
    Progress,
    output_log,
    path_env,
    placed,
    plan_hosts,
    plan_loopback,
    state_proc,
)
from spamdrill.lab.procs import (
    MARKER,
    Proc,
    kill_marked,
    marked_pids,
    ours,
    session_members,
    shielded,
    spawn,
    stop,
    wait_until,
)
from spamdrill.lab.proxy import Shape, write_shape
from spamdrill.lab.state import LabState, ProcRef, RspamdRef
from spamdrill.lab.status import Component as Component
from spamdrill.lab.status import status as status

# binary -> Debian package, checked before anything starts
REQUIRED = {
    "spamd": "spamd", "spamc": "spamc", "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server", "maildrop": "maildrop",
    "maildirmake": "maildrop",
}
READY_TIMEOUT = 60.0
# a cold rspamd compiles its hyperscan cache first (36 s on 2 cores, see lab.rspamd)
RSPAMD_READY_TIMEOUT = 180.0
# clients before services: Postfix (its pipe commands run maildrop and spamc) first
STOP_ORDER = ("postfix", "spamd", "rspamd", "dbproxy", "redisproxy", "dns", "dns2", "redis",
              "mariadb")



def preflight() -> None:
    """One clear line for the first missing program, before anything is started."""
    for binary, package in REQUIRED.items():
        if shutil.which(binary) is None and not Path("/usr/sbin", binary).exists():
            raise SpamdrillError(
                f"{binary} not found (Debian package {package})",
                "run: sudo scripts/setup.sh (or apt-get install " + package + ")",
            )
    if not (mariadb.SQL_DOC_DIR / "bayes_mysql.sql").exists():
        raise SpamdrillError(f"{mariadb.SQL_DOC_DIR}/bayes_mysql.sql missing",
                             "run: apt-get install spamassassin")


def _check_reachable(root: Path) -> None:
    """As root, spamd and MariaDB drop privileges: every parent must be world-searchable."""
    if os.geteuid() != 0:
        return
    for parent in [root, *root.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise SpamdrillError(
                f"run directory {root} is not reachable by spamd's unprivileged user "
                f"({parent} is mode {stat.S_IMODE(parent.stat().st_mode):o})",
                "choose a --run-dir under /tmp",
            )


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Only one spamdrill at a time may bring up or take down a given lab. The run
    directory is checked first (``secure_dir``), and the lock opened without following a
    symlink or truncating anything."""
    secure_dir(layout.root)
    try:
        fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise SpamdrillError(f"{layout.lock} cannot be the lab's lock: {exc.strerror}",
                             "remove it (a symlink there is not spamdrill's)") from None
    with os.fdopen(fd) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpamdrillError(f"another spamdrill is working on the lab in {layout.root}",
                                 "wait for it, or run spamdrill lab down") from None
        yield


def running(layout: Layout) -> list[Proc]:
    return [p for r in Journal(layout.journal).running() if (p := Proc.of(r)).alive()]


def lab_pids(run_dir: Path) -> set[int]:
    """Every live process of the lab: the journaled leaders, their sessions, the marked."""
    pids: set[int] = set()
    if not os.path.lexists(run_dir):
        return pids
    layout = Layout(run_dir)
    for r in Journal(layout.journal).starts():
        if r.ticks is not None:
            pids.update(session_members(r.pid, r.ticks))
    state = LabState.load(layout)
    if state is not None:
        pids.update(marked_pids(state.marker))
    return pids



def up(run_dir: Path, config: LabConfig, progress: Progress = lambda _: None) -> LabState:
    """Start every component, wait for real readiness, provision; all or nothing."""
    check_socket_room(run_dir)
    layout = Layout(secure_dir(run_dir))
    with locked(layout):
        alive = running(layout)
        if alive:
            raise SpamdrillError(
                f"a lab is already running in {layout.root} "
                f"({', '.join(p.name for p in alive)})",
                f"use it, or run: spamdrill lab down --run-dir {layout.root}",
            )
        preflight()
        if config.maildrop.client == "rspamc" and not config.rspamd.enabled:
            raise SpamdrillError("maildrop.client = \"rspamc\" needs the lab's rspamd",
                                 "set rspamd.enabled = true")
        if config.rspamd.enabled:
            rspamd_lab.preflight()
            if config.topology.hosts:
                raise SpamdrillError("rspamd.enabled: the loopback topology only, so far",
                                     "set topology.kind = \"loopback\"")
        if config.topology.hosts:  # before anything starts: one clear line
            netns.require_root("topology.kind = hosts")
        _teardown(layout)  # whatever a crashed earlier lab left here
        _fresh(layout)
        _check_reachable(layout.root)
        try:
            return _start_all(layout, config, progress)
        except BaseException:
            progress("start-up failed: stopping what was started")
            _teardown(layout)
            raise


def _fresh(layout: Layout) -> None:
    for child in layout.root.iterdir():
        if child.name == layout.lock.name:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    for d in (layout.db_dir, layout.spamd_dir, layout.dns_dir, layout.maildrop_dir,
              layout.mail_dir, layout.proxy_dir):
        d.mkdir(parents=True)
    os.chmod(layout.root, 0o755)


def _start_all(layout: Layout, config: LabConfig, progress: Progress) -> LabState:
    root = os.geteuid() == 0
    state = LabState(run_dir=str(layout.root), marker=uuid.uuid4().hex, started=time.time(),
                     users=dict(config.users), private_resolver=root, owner_pid=os.getpid())
    state.save()  # the marker first: a teardown after a crash needs it
    if config.topology.hosts:
        plan_hosts(state, config, progress)
    else:
        plan_loopback(state, config)
    state.db_name = state.db.host if config.database.by_ip or not root else dns.DB_NAME
    state.save()
    t0 = time.monotonic()
    procs = _launch_all(state, config, progress)
    progress("maildrop: Maildirs and maildroprc")
    filter_ep = state.rspamd.normal if config.maildrop.client == "rspamc" and \
        state.rspamd is not None else state.spamd
    maildrop.setup(layout, config, filter_ep.host, filter_ep.port)
    _await_all(state, config, procs, progress)
    state.ready_s["all"] = time.monotonic() - t0
    state.save()
    return state


def _launch_all(state: LabState, config: LabConfig, progress: Progress) -> dict[str, Proc]:
    """Every lab process started, none awaited yet: they come up side by side."""
    layout = state.layout
    progress("lab DNS: starting")
    dns.write_zone(layout, {dns.DB_NAME: state.db.host, dns.SPAMD_NAME: state.spamd.host},
                   config.dns.zones)
    dns.clear_rules(layout)
    procs: dict[str, Proc] = {}
    if state.dns2 is not None:
        procs["dns2"] = _launch(state, "dns2", dns.server_argv(
            layout, state.dns2.host, state.dns2.port, secondary=True))
    procs["dns"] = _launch(state, "dns", dns.server_argv(layout, state.dns.host,
                                                         state.dns.port))
    progress("MariaDB: creating the datadir")
    mariadb.install_datadir(layout, env={**path_env(), MARKER: state.marker})
    mariadb.write_init_file(layout, mariadb.secrets_of(layout, config.database.password).admin)
    procs["mariadb"] = _launch(state, "mariadb", _db_argv(state, config))
    if state.db_proxy is not None:
        progress(f"fault proxy: spamd reaches MariaDB through {state.db_proxy}")
        write_shape(layout.db_proxy_shape, Shape())
        procs["dbproxy"] = _launch(state, "dbproxy", [
            sys.executable, "-m", "spamdrill.lab.proxy", state.db_proxy.host,
            str(state.db_proxy.port), state.db.host, str(state.db.port),
            str(layout.db_proxy_shape)])
    progress("spamd: writing its site config and starting")
    servers = [state.dns.host, *([state.dns2.host] if state.dns2 else [])]
    spamd.write_site_config(layout, config, db_host=state.db_name, db_port=state.dsn.port,
                            dns_host=state.dns.host, dns_port=state.dns.port,
                            secondary=(state.dns2.host, state.dns2.port)
                            if state.dns2 else None)
    if state.private_resolver:
        dns.write_resolv_conf(layout.resolv_conf, servers)
    if state.network is not None:
        dns.write_resolv_conf(layout.client_resolv_conf, servers)
    spamd.chown_for_children(layout)
    procs["spamd"] = _launch(state, "spamd", _spamd_argv(state, config))
    if state.rspamd is not None:
        procs.update(_launch_rspamd(state, config, progress))
    return procs


def _launch_rspamd(state: LabState, config: LabConfig, progress: Progress,
                   ) -> dict[str, Proc]:
    """The lab's Redis and rspamd (its DNS the lab's), started side by side."""
    ref = state.rspamd
    assert ref is not None
    paths = rspamd_lab.Paths(state.layout.root)
    px = ref.redis_proxy
    ports = rspamd_lab.Ports(ref.normal.host, ref.normal.port, ref.controller.port,
                             ref.proxy.port, ref.redis.port, px.port if px else 0)
    progress("rspamd: writing its configuration over Debian's; Redis starting")
    rspamd_lab.write_config(paths, config.rspamd, ports, str(state.dns))
    procs = {"redis": _launch(state, "redis", redis.argv(paths.redis_dir, ref.redis.host,
                                                          ref.redis.port))}
    if px is not None:
        progress(f"fault proxy: rspamd reaches Redis through {px}")
        write_shape(paths.redis_proxy_shape, Shape())
        procs["redisproxy"] = _launch(state, "redisproxy", [
            sys.executable, "-m", "spamdrill.lab.proxy", px.host, str(px.port),
            ref.redis.host, str(ref.redis.port), str(paths.redis_proxy_shape)])
    procs["rspamd"] = _launch(state, "rspamd", rspamd_lab.argv(paths))
    return procs


def _await_rspamd(state: LabState, procs: dict[str, Proc], progress: Progress) -> None:
    ref = state.rspamd
    assert ref is not None
    state.ready_s["redis"] = wait_until(
        procs["redis"], lambda: redis.ping(ref.redis.host, ref.redis.port), READY_TIMEOUT,
        "PING")
    px = ref.redis_proxy
    if px is not None:  # Redis answers through it, as rspamd will ask
        wait_until(procs["redisproxy"], lambda: redis.ping(px.host, px.port), READY_TIMEOUT,
                   f"PING through the proxy {px}")
    state.ready_s["rspamd"] = wait_until(
        procs["rspamd"], lambda: rspamd_ready(ref), RSPAMD_READY_TIMEOUT,
        "rspamc stat, and GTUBE scanned as reject")
    rspamd_lab.keep_hs_cache(rspamd_lab.Paths(state.layout.root))
    progress(f"rspamd: ready in {state.ready_s['rspamd']:.1f} s")


def rspamd_ready(ref: RspamdRef) -> bool:
    """The controller answers ``stat``, the normal worker scans GTUBE as reject, and the
    proxy negotiates milter options."""
    return rspamd_lab.stat(ref.controller.host, ref.controller.port) and \
        rspamd_lab.scans_gtube(ref.normal.host, ref.normal.port) and \
        rspamd_lab.milter_negotiates(ref.proxy.host, ref.proxy.port)


def _await_all(state: LabState, config: LabConfig, procs: dict[str, Proc],
               progress: Progress) -> None:
    """Wait for each process's real probe, in the order they depend on each other."""
    layout = state.layout
    if state.dns2 is not None:
        dns2 = state.dns2
        wait_until(procs["dns2"], lambda: dns.probe(dns2.host, dns2.port), READY_TIMEOUT,
                   "DNS query")
    state.ready_s["dns"] = wait_until(
        procs["dns"], lambda: dns.probe(state.dns.host, state.dns.port), READY_TIMEOUT,
        "DNS query")
    progress("lab DNS: answering")
    state.ready_s["mariadb"] = wait_until(procs["mariadb"], lambda: mariadb.probe(layout),
                                          READY_TIMEOUT, "SELECT 1")
    mariadb.provision(layout, config)
    progress("MariaDB: ready, SpamAssassin schema loaded")
    if state.db_proxy is not None:
        px = state.db_proxy
        wait_until(procs["dbproxy"], lambda: mariadb.tcp_probe(px.host, px.port),
                   READY_TIMEOUT, f"TCP to the proxy {px}")
    state.ready_s["spamd"] = wait_until(
        procs["spamd"], lambda: spamd.ping(state.spamd.host, state.spamd.port),
        READY_TIMEOUT, "PING")
    progress("spamd: PONG")
    if state.rspamd is not None:
        _await_rspamd(state, procs, progress)
    if state.network is not None:  # spamd reaches it across the bridge: prove that too
        wait_until(procs["mariadb"], lambda: mariadb.tcp_probe(state.db.host, state.db.port),
                   READY_TIMEOUT, f"TCP to {state.db}")


def _spamd_argv(state: LabState, config: LabConfig) -> list[str]:
    net = state.network
    allowed = "127.0.0.0/8" + (f",{net.cidr}" if net is not None else "")
    return spamd.argv(state.layout, config, state.spamd.port, host=state.spamd.host,
                      allowed=allowed)


def stop_spamd(state: LabState, sig_grace: float = 10.0) -> None:
    """Stop spamd (SIGTERM to its process group; SIGKILL after ``sig_grace``)."""
    proc = state_proc(state, "spamd")
    if proc is not None:
        stop(proc, state.journal, grace=sig_grace, marker=state.marker)
        state.pids.pop("spamd", None)
        state.save()


def _launch(state: LabState, name: str, argv: list[str]) -> Proc:
    """Start one lab process: placed, journaled, marked, and its pid and argv kept in
    lab.json (so a heal can start it again)."""
    proc = spawn(name, placed(state, name, argv), log=output_log(state.layout, name),
                 journal=state.journal, marker=state.marker, env=path_env())
    state.pids[name] = ProcRef(proc.pid, proc.ticks)
    state.argv[name] = argv
    state.save()
    return proc


def _db_argv(state: LabState, config: LabConfig) -> list[str]:
    return mariadb.server_argv(state.layout, config, state.db.port, bind=state.db.host)


def start_spamd(state: LabState, config: LabConfig | None = None, wait: bool = True) -> Proc:
    """Start spamd again, with ``config``'s flags or as it was started before; ``wait``
    for its PONG or return at once (a drill that sends mail while spamd comes up)."""
    argv = _spamd_argv(state, config) if config is not None else state.argv["spamd"]
    proc = _launch(state, "spamd", argv)
    if wait:
        wait_until(proc, lambda: spamd.ping(state.spamd.host, state.spamd.port),
                   READY_TIMEOUT, "PING")
    return proc


def start_mariadb(state: LabState) -> Proc:
    """Start the lab's MariaDB again on its datadir (after a drill killed it)."""
    proc = _launch(state, "mariadb", state.argv["mariadb"])
    wait_until(proc, lambda: mariadb.probe(state.layout), READY_TIMEOUT, "SELECT 1")
    return proc


def stop_named(state: LabState, name: str, sig_grace: float = 10.0) -> None:
    """Stop one lab process (``rspamd``, ``redis``) as ``stop_spamd`` stops spamd."""
    proc = state_proc(state, name)
    if proc is not None:
        stop(proc, state.journal, grace=sig_grace, marker=state.marker)
        state.pids.pop(name, None)
        state.save()


def start_named(state: LabState, name: str, wait: bool = True) -> Proc:
    """Start ``rspamd`` or ``redis`` again as it was started; ``wait`` for its probe."""
    ref = state.rspamd
    if ref is None:
        raise SpamdrillError("this lab has no rspamd", "set rspamd.enabled = true")
    proc = _launch(state, name, state.argv[name])
    if wait and name == "redis":
        wait_until(proc, lambda: redis.ping(ref.redis.host, ref.redis.port), READY_TIMEOUT,
                   "PING")
    elif wait:
        wait_until(proc, lambda: rspamd_ready(ref), RSPAMD_READY_TIMEOUT, "rspamc stat")
    return proc


def heal(run_dir: Path) -> list[str]:
    """Undo every fault the lab's journal shows as still in effect (also one a killed
    spamdrill left), starting again what a fault stopped."""
    if not os.path.lexists(run_dir):
        return []
    layout = Layout(run_dir)
    state = LabState.load(layout)
    if state is None:
        return []

    def restart(name: str) -> None:
        if name == "spamd" and not spamd.ping(state.spamd.host, state.spamd.port):
            start_spamd(state, wait=True)
        if name == "mariadb" and not mariadb.probe(state.layout):
            start_mariadb(state)
        ref = state.rspamd
        if name == "redis" and ref is not None and not redis.ping(ref.redis.host,
                                                                   ref.redis.port):
            start_named(state, "redis")
        if name == "rspamd" and ref is not None and not rspamd_ready(ref):
            start_named(state, "rspamd")

    return faults.heal_journaled(state.journal, restart)


def drill_labs_dir() -> Path:
    """Where each drill's own lab lives (``down_all`` and the next run look there)."""
    return secure_dir(default_run_dir().parent / "drills")


def down_all(base: Path | None = None, only_orphans: bool = True) -> list[str]:
    """Take down every drill lab under ``base`` (default: this user's drill labs) that no
    living spamdrill owns: one killed mid-drill left it. A lab whose owner still runs, or
    that another spamdrill holds the lock of (one being brought up, before its lab.json
    names its owner), is left alone, so two runs side by side never take down each
    other's labs. ``only_orphans=False`` takes down the owned ones too."""
    base = base or drill_labs_dir()
    if not base.is_dir():
        return []
    done = []
    for d in sorted(base.iterdir()):
        if not d.is_dir() or d.is_symlink():
            continue
        try:
            state = LabState.load(Layout(d))
        except SpamdrillError:
            continue  # not a directory spamdrill may trust: not one of its labs
        if only_orphans and state is not None and state.owner_pid and \
                Path(f"/proc/{state.owner_pid}").exists():
            continue
        try:
            stopped = down(d)
        except SpamdrillError:  # another spamdrill is working on it: not an orphan
            continue
        shutil.rmtree(d, ignore_errors=True)
        if stopped:
            done.append(f"{d.name}: {', '.join(stopped)}")
    return done


def down(run_dir: Path) -> list[str]:
    """Stop everything this lab started, even if the process that started it was killed."""
    if not run_dir.exists() and not run_dir.is_symlink():
        return []
    layout = Layout(secure_dir(run_dir))
    with locked(layout):
        return _teardown(layout)


def _teardown(layout: Layout) -> list[str]:
    with shielded():
        return _teardown_now(layout)


def _keep_rspamd_cache(state: LabState | None, layout: Layout) -> None:
    """What rspamd's hs_helper compiled, kept for the next lab's warm start."""
    if state is not None and state.rspamd is not None:
        with contextlib.suppress(OSError, SpamdrillError):
            rspamd_lab.keep_hs_cache(rspamd_lab.Paths(layout.root))


def _teardown_now(layout: Layout) -> list[str]:
    state = LabState.load(layout)
    # without lab.json the journal's namespace records cannot be told ours: none is trusted
    journal = state.journal if state is not None else Journal(layout.journal)
    faults.heal_journaled(journal)  # a paused mariadbd would not even stop on SIGTERM
    # Postfix first, with its pipe commands (sessions of their own) and its queue
    stopped = postfix.down(layout.root)
    # every start ever journaled, stopped or not: a leader that died on its own may have
    # left children in its session
    procs = [Proc.of(r) for r in journal.starts()]
    order = {name: i for i, name in enumerate(STOP_ORDER)}
    # without lab.json no process is provably the lab's: none is signalled
    for proc in sorted(procs, key=lambda p: order.get(p.name, len(order))):
        if state is None:
            break
        leader = proc.alive() and ours(proc.pid, state.marker, proc.log)
        # a dead or unmarked leader: only what its session holds that is provably ours
        hit = stop(proc, journal if leader else None, marker=state.marker)
        if leader:
            stopped.append(proc.name)
        elif hit:
            stopped.append(f"{len(hit)} process(es) {proc.name} left")
    _keep_rspamd_cache(state, layout)
    if state is not None:
        leftovers = kill_marked(state.marker)
        if leftovers:
            stopped.append(f"{len(leftovers)} stray process(es)")
    for rec in journal.namespaces():  # namespaces last: nothing runs in them any more
        if netns.exists(rec.ns):
            netns.delete(rec.ns, rec.host_if)
            stopped.append(f"namespace {rec.ns}")
    if state is not None:
        layout.state.unlink()
    # a clean teardown leaves no journal: nothing in it may steer a later one
    layout.journal.unlink(missing_ok=True)
    return stopped
