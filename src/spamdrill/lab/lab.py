"""Bring a lab up, report its status, take it down. Orchestration only: each component's
details live in its own module (mariadb, spamd, dns, maildrop)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab import dns, faults, maildrop, mariadb, netns, spamd
from spamdrill.lab.config import LabConfig
from spamdrill.lab.layout import Layout, default_run_dir
from spamdrill.lab.net import claim_port, free_loopback_53
from spamdrill.lab.procs import (
    MARKER,
    Journal,
    Proc,
    kill_marked,
    marked_pids,
    session_members,
    shielded,
    spawn,
    stop,
    wait_until,
)
from spamdrill.lab.proxy import Shape, write_shape
from spamdrill.proto.spamd_log import describe_states, last_child_states

# binary -> Debian package, checked before anything starts
REQUIRED = {
    "spamd": "spamd", "spamc": "spamc", "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server", "maildrop": "maildrop",
    "maildirmake": "maildrop",
}
READY_TIMEOUT = 60.0
STOP_ORDER = ("spamd", "dbproxy", "dns", "dns2", "mariadb")  # clients before services
LOOPBACK = "127.0.0.1"
# which host of the multi-host topology each lab process runs on
ROLE = {"spamd": "spamd", "mariadb": "db", "dbproxy": "db", "dns": "dns", "dns2": "dns"}
# the well-known ports, free in a namespace of the lab's own
HOST_PORTS = {"spamd": 783, "mariadb": 3306, "dbproxy": 3307}


@dataclass
class Component:
    name: str
    up: bool
    pid: int | None
    host: str | None
    port: int | None
    since: float | None = None
    detail: str = ""

    def public(self) -> dict[str, object]:
        return {"name": self.name, "up": self.up, "pid": self.pid, "host": self.host,
                "port": self.port, "uptime_s": round(time.time() - self.since, 1)
                if self.up and self.since else None, "detail": self.detail}


@dataclass
class LabState:
    """What ``lab.json`` holds: enough for any later process to find and drive the lab."""

    run_dir: str
    marker: str
    started: float
    spamd_host: str = LOOPBACK
    spamd_port: int = 0
    db_host: str = LOOPBACK
    db_name: str = LOOPBACK
    db_port: int = 0
    dns_host: str = LOOPBACK
    dns_port: int = 0
    dns2: list[str | int] = field(default_factory=list)  # [host, port] of a secondary
    private_resolver: bool = False
    net: list[str] = field(default_factory=list)  # [tag, prefix] of the multi-host topology
    db_proxy_port: int = 0  # where spamd's DSN points when the fault proxy is in between
    owner_pid: int = 0  # the spamdrill that brought it up (a drill's lab dies with it)
    users: dict[str, float] = field(default_factory=dict)
    ready_s: dict[str, float] = field(default_factory=dict)
    pids: dict[str, list[int | None]] = field(default_factory=dict)  # name -> [pid, ticks]

    def save(self, layout: Layout) -> None:
        layout.state.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, layout: Layout) -> LabState | None:
        try:
            return cls(**json.loads(layout.state.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    @property
    def layout(self) -> Layout:
        return Layout(Path(self.run_dir))

    @property
    def network(self) -> netns.Net | None:
        """The multi-host topology, or None on loopback."""
        return netns.Net(*self.net) if self.net else None

    @property
    def dsn_port(self) -> int:
        return self.db_proxy_port or self.db_port

    def client_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run where the lab's clients live: here, or on the client host."""
        net = self.network
        if net is None:
            return argv
        return net.host("client").exec(argv, self.layout.client_resolv_conf)


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


def _path_env() -> dict[str, str]:
    # mariadbd and spamd live in /usr/sbin, which an ordinary user's PATH may lack
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": path + ":/usr/sbin:/sbin"} if "/usr/sbin" not in path else {}


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
    """Only one spamdrill at a time may bring up or take down a given lab."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.lock.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpamdrillError(f"another spamdrill is working on the lab in {layout.root}",
                                 "wait for it, or run spamdrill lab down") from None
        yield


def running(layout: Layout) -> list[Proc]:
    return [p for p in Journal(layout.journal).started() if p.alive()]


def lab_pids(run_dir: Path) -> set[int]:
    """Every live process of the lab: the journaled leaders, their sessions, the marked."""
    layout = Layout(run_dir.resolve())
    pids: set[int] = set()
    for ev in Journal(layout.journal).events():
        pid, ticks = ev.get("pid"), ev.get("ticks")
        if ev.get("event") == "start" and isinstance(pid, int) and isinstance(ticks, int):
            pids.update(session_members(pid, ticks))
    state = LabState.load(layout)
    if state is not None:
        pids.update(marked_pids(state.marker))
    return pids


Progress = Callable[[str], None]


def up(run_dir: Path, config: LabConfig, progress: Progress = lambda _: None) -> LabState:
    """Start every component, wait for real readiness, provision; all or nothing."""
    layout = Layout(run_dir.resolve())
    with locked(layout):
        alive = running(layout)
        if alive:
            raise SpamdrillError(
                f"a lab is already running in {layout.root} "
                f"({', '.join(p.name for p in alive)})",
                f"use it, or run: spamdrill lab down --run-dir {layout.root}",
            )
        preflight()
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
              layout.mail_dir):
        d.mkdir(parents=True)
    os.chmod(layout.root, 0o755)


def _start_all(layout: Layout, config: LabConfig, progress: Progress) -> LabState:
    root = os.geteuid() == 0
    state = LabState(run_dir=str(layout.root), marker=uuid.uuid4().hex, started=time.time(),
                     users=dict(config.users), private_resolver=root, owner_pid=os.getpid())
    if config.topology.hosts:
        _plan_hosts(state, config, progress)
    else:
        _plan_loopback(state, config)
    state.db_name = state.db_host if config.database.by_ip or not root else dns.DB_NAME
    state.save(layout)
    t0 = time.monotonic()
    progress("lab DNS: starting")
    dns.write_zone(layout, {dns.DB_NAME: state.db_host, dns.SPAMD_NAME: state.spamd_host},
                   config.dns.zones)
    dns.clear_rules(layout)
    dns2_proc = _launch(state, "dns2", dns.server_argv(
        layout, str(state.dns2[0]), int(state.dns2[1]), secondary=True)) if state.dns2 else None
    dns_proc = _launch(state, "dns", dns.server_argv(layout, state.dns_host, state.dns_port))

    progress("MariaDB: creating the datadir")
    mariadb.install_datadir(layout, env={**_path_env(), MARKER: state.marker})
    db_proc = _launch(state, "mariadb", _db_argv(state, config))
    proxy_proc = None
    if state.db_proxy_port:
        progress(f"fault proxy: spamd reaches MariaDB through port {state.db_proxy_port}")
        write_shape(layout.db_proxy_shape, Shape())
        proxy_proc = _launch(state, "dbproxy", [
            sys.executable, "-m", "spamdrill.lab.proxy", state.db_host,
            str(state.db_proxy_port), state.db_host, str(state.db_port),
            str(layout.db_proxy_shape)])

    progress("spamd: writing its site config and starting")
    servers = [state.dns_host, *([str(state.dns2[0])] if state.dns2 else [])]
    spamd.write_site_config(layout, config, db_host=state.db_name, db_port=state.dsn_port,
                            dns_host=state.dns_host, dns_port=state.dns_port,
                            secondary=(str(state.dns2[0]), int(state.dns2[1]))
                            if state.dns2 else None)
    if root:
        dns.write_resolv_conf(layout.resolv_conf, servers)
    if state.network is not None:
        dns.write_resolv_conf(layout.client_resolv_conf, servers)
    spamd.chown_for_children(layout)
    spamd_proc = _launch(state, "spamd", _spamd_argv(state, config))

    progress("maildrop: Maildirs and maildroprc")
    maildrop.setup(layout, config, state.spamd_host, state.spamd_port)

    if dns2_proc is not None:
        wait_until(dns2_proc, lambda: dns.probe(str(state.dns2[0]), int(state.dns2[1])),
                   READY_TIMEOUT, "DNS query")
    state.ready_s["dns"] = wait_until(
        dns_proc, lambda: dns.probe(state.dns_host, state.dns_port), READY_TIMEOUT,
        "DNS query")
    progress("lab DNS: answering")
    state.ready_s["mariadb"] = wait_until(db_proc, lambda: mariadb.probe(layout),
                                          READY_TIMEOUT, "SELECT 1")
    mariadb.provision(layout, config)
    progress("MariaDB: ready, SpamAssassin schema loaded")
    if proxy_proc is not None:
        wait_until(proxy_proc, lambda: mariadb.tcp_probe(state.db_host, state.db_proxy_port),
                   READY_TIMEOUT, f"TCP to the proxy {state.db_host}:{state.db_proxy_port}")
    state.ready_s["spamd"] = wait_until(
        spamd_proc, lambda: spamd.ping(state.spamd_host, state.spamd_port), READY_TIMEOUT,
        "PING")
    progress("spamd: PONG")
    if state.network is not None:  # spamd reaches it across the bridge: prove that too
        wait_until(db_proc, lambda: mariadb.tcp_probe(state.db_host, state.db_port),
                   READY_TIMEOUT, f"TCP to {state.db_host}:{state.db_port}")
    state.ready_s["all"] = time.monotonic() - t0
    state.save(layout)
    return state


def _plan_loopback(state: LabState, config: LabConfig) -> None:
    """Everything on 127.0.0.1; ports claimed first, so a taken one fails before anything
    runs."""
    state.spamd_port = claim_port(LOOPBACK, config.spamd.port, "spamd")
    state.db_port = claim_port(LOOPBACK, config.database.port, "MariaDB")
    if config.database.proxy:
        state.db_proxy_port = claim_port(LOOPBACK, 0, "the database proxy")
    if state.private_resolver:
        # libc needs port 53: a private 127.53.x.y of our own, used only by spamd's namespace
        state.dns_host = free_loopback_53()
        state.dns_port = 53
    else:
        state.dns_port = claim_port(LOOPBACK, config.dns.port, "lab DNS", udp=True)
    if config.dns.secondary:
        state.dns2 = [free_loopback_53(), 53] if state.private_resolver else \
            [LOOPBACK, claim_port(LOOPBACK, 0, "lab DNS (secondary)", udp=True)]


def _plan_hosts(state: LabState, config: LabConfig, progress: Progress) -> None:
    """Client, spamd, database and DNS hosts in namespaces of their own (root only)."""
    net = netns.plan(state.marker)
    journal = Journal(state.layout.journal)
    for ns in net.namespaces():  # journaled before they exist: lab down finds them all
        journal.record(event="netns", ns=ns, host_if=net.control_if if ns == net.switch
                       else "")
    progress(f"hosts: {', '.join(f'{r} {net.ip(r)}' for r in netns.ROLES)} on {net.cidr}")
    netns.create(net)
    state.net = [net.tag, net.prefix]
    topo = config.topology
    for role, value in (("spamd", topo.spamd_somaxconn), ("client", topo.client_somaxconn),
                        ("db", topo.db_somaxconn)):
        if value:
            netns.set_somaxconn(net.host(role), value)
    state.spamd_host, state.db_host = net.ip("spamd"), net.ip("db")
    state.spamd_port = config.spamd.port or HOST_PORTS["spamd"]
    state.db_port = config.database.port or HOST_PORTS["mariadb"]
    state.db_proxy_port = HOST_PORTS["dbproxy"] if config.database.proxy else 0
    state.dns_host, state.dns_port = net.ip("dns"), 53
    if config.dns.secondary:
        state.dns2 = [net.ip("dns2"), 53]


def _spamd_argv(state: LabState, config: LabConfig) -> list[str]:
    net = state.network
    allowed = "127.0.0.0/8" + (f",{net.cidr}" if net is not None else "")
    return spamd.argv(state.layout, config, state.spamd_port, host=state.spamd_host,
                      allowed=allowed)


def _state_proc(state: LabState, name: str) -> Proc | None:
    """The process lab.json records under ``name``, if any."""
    pid, ticks = state.pids.get(name) or [None, None]
    if not isinstance(pid, int):
        return None
    return Proc(name, pid, ticks if isinstance(ticks, int) else None,
                _output_log(state.layout, name))


def _output_log(layout: Layout, name: str) -> Path:
    """Where a lab process's stdout and stderr go."""
    return {"spamd": layout.spamd_out, "mariadb": layout.db_log.with_suffix(".out"),
            "dbproxy": layout.db_proxy_out, "dns": layout.dns_out,
            "dns2": layout.dns_out.with_name("server-secondary.out")}[name]


def stop_spamd(state: LabState, sig_grace: float = 10.0) -> None:
    """Stop spamd (SIGTERM to its process group; SIGKILL after ``sig_grace``)."""
    proc = _state_proc(state, "spamd")
    if proc is not None:
        stop(proc, Journal(state.layout.journal), grace=sig_grace)
        state.pids.pop("spamd", None)
        state.save(state.layout)


def _placed(state: LabState, name: str, argv: list[str]) -> list[str]:
    """``argv`` on its host (multi-host topology); spamd, as root, with the lab's
    resolv.conf in a private mount namespace, so the DSN's host name is resolved by the
    lab DNS and the machine's file is untouched."""
    resolv = state.layout.resolv_conf if name == "spamd" and state.private_resolver \
        else None
    net = state.network
    if net is not None:
        return net.host(ROLE[name]).exec(argv, resolv)
    return netns.with_resolv(argv, resolv) if resolv is not None else argv


def _launch(state: LabState, name: str, argv: list[str]) -> Proc:
    """Start one lab process: placed, journaled, marked, and its pid kept in lab.json."""
    layout = state.layout
    proc = spawn(name, _placed(state, name, argv), log=_output_log(layout, name),
                 journal=Journal(layout.journal), marker=state.marker, env=_path_env())
    state.pids[name] = [proc.pid, proc.ticks]
    state.save(state.layout)
    return proc


def _db_argv(state: LabState, config: LabConfig) -> list[str]:
    return mariadb.server_argv(state.layout, config, state.db_port, bind=state.db_host)


def start_spamd(state: LabState, config: LabConfig, wait: bool = True) -> Proc:
    """Start spamd again with ``config``'s flags; ``wait`` for its PONG or return at once
    (a drill that sends mail while spamd comes up)."""
    proc = _launch(state, "spamd", _spamd_argv(state, config))
    if wait:
        wait_until(proc, lambda: spamd.ping(state.spamd_host, state.spamd_port),
                   READY_TIMEOUT, "PING")
    return proc


def start_mariadb(state: LabState, config: LabConfig) -> Proc:
    """Start the lab's MariaDB again on its datadir (after a drill killed it)."""
    proc = _launch(state, "mariadb", _db_argv(state, config))
    wait_until(proc, lambda: mariadb.probe(state.layout), READY_TIMEOUT, "SELECT 1")
    return proc


def status(run_dir: Path) -> tuple[LabState | None, list[Component]]:
    layout = Layout(run_dir.resolve())
    state = LabState.load(layout)
    if state is None:
        return None, []

    def proc_up(name: str) -> tuple[bool, int | None]:
        proc = _state_proc(state, name)
        return (proc is not None and proc.alive()), proc.pid if proc else None

    comps: list[Component] = []
    net = state.network
    if net is not None:
        comps.append(Component(
            "hosts", all(netns.exists(ns) for ns in net.namespaces()), None, net.cidr, None,
            state.started, f"{net.cidr}: " + ", ".join(f"{r} {net.host(r).ns} {net.ip(r)}"
                                     for r in netns.ROLES)))
    up_dns, pid = proc_up("dns")
    comps.append(Component("dns", up_dns and dns.probe(state.dns_host, state.dns_port), pid,
                           state.dns_host, state.dns_port, state.started,
                           _dns_detail(layout)))
    if state.dns2:
        up2, pid2 = proc_up("dns2")
        host2, port2 = str(state.dns2[0]), int(state.dns2[1])
        comps.append(Component("dns2", up2 and dns.probe(host2, port2), pid2, host2, port2,
                               state.started, "secondary: drills never break it"))
    up_db, pid = proc_up("mariadb")
    comps.append(Component("mariadb", up_db and mariadb.probe(layout), pid, state.db_host,
                           state.db_port, state.started, f"spamd's DSN host: {state.db_name}"))
    up_spamd, pid = proc_up("spamd")
    if state.db_proxy_port:
        up_px, pid_px = proc_up("dbproxy")
        comps.append(Component("dbproxy", up_px and mariadb.tcp_probe(
            state.db_host, state.db_proxy_port), pid_px, state.db_host, state.db_proxy_port,
            state.started, "fault proxy between spamd and MariaDB"))
    comps.append(Component("spamd", up_spamd and spamd.ping(state.spamd_host,
                                                           state.spamd_port), pid,
                           state.spamd_host, state.spamd_port, state.started,
                           _spamd_detail(layout)))
    has_rc = layout.maildroprc.exists()
    comps.append(Component("maildrop", has_rc and shutil.which("maildrop") is not None, None,
                           None, None, state.started, str(layout.maildroprc)))
    return state, comps


def _spamd_detail(layout: Layout) -> str:
    try:
        text = layout.spamd_log.read_text(errors="replace")
    except OSError:
        return "no log yet"
    states = last_child_states(text)
    return f"children: {states} ({describe_states(states)})" if states else "no child states"


def _dns_detail(layout: Layout) -> str:
    rules = dns.read_rules(layout)
    if not rules:
        return "all names answer"
    return "; ".join(f"{name}: {r.get('mode')}" for name, r in sorted(rules.items()))


def drill_labs_dir() -> Path:
    """Where each drill's own lab lives (``down_all`` and the next run look there)."""
    return default_run_dir().parent / "drills"


def down_all(base: Path | None = None, only_orphans: bool = False) -> list[str]:
    """Take down every drill lab under ``base`` (default: this user's drill labs); with
    ``only_orphans``, only those whose owning spamdrill is gone (killed mid-drill)."""
    base = base or drill_labs_dir()
    if not base.is_dir():
        return []
    done = []
    for d in sorted(base.iterdir()):
        if not d.is_dir():
            continue
        state = LabState.load(Layout(d))
        if only_orphans and state is not None and state.owner_pid and \
                Path(f"/proc/{state.owner_pid}").exists():
            continue
        stopped = down(d)
        shutil.rmtree(d, ignore_errors=True)
        if stopped:
            done.append(f"{d.name}: {', '.join(stopped)}")
    return done


def _proc_of(event: dict[str, object]) -> Proc | None:
    pid, ticks = event.get("pid"), event.get("ticks")
    if event.get("event") != "start" or not isinstance(pid, int):
        return None
    return Proc(name=str(event.get("name")), pid=pid,
                ticks=ticks if isinstance(ticks, int) else None,
                log=Path(str(event.get("log", "/dev/null"))))


def down(run_dir: Path) -> list[str]:
    """Stop everything this lab started, even if the process that started it was killed."""
    layout = Layout(run_dir.resolve())
    if not layout.root.exists():
        return []
    with locked(layout):
        return _teardown(layout)


def _teardown(layout: Layout) -> list[str]:
    with shielded():
        return _teardown_now(layout)


def _teardown_now(layout: Layout) -> list[str]:
    journal = Journal(layout.journal)
    faults.heal_journaled(journal)  # a paused mariadbd would not even stop on SIGTERM
    # every start ever journaled, stopped or not: a leader that died on its own may have
    # left children in its session
    procs = [p for ev in journal.events() if (p := _proc_of(ev)) is not None]
    order = {name: i for i, name in enumerate(STOP_ORDER)}
    stopped = []
    for proc in sorted(procs, key=lambda p: order.get(p.name, len(order))):
        if proc.alive():
            stopped.append(proc.name)
            stop(proc, journal)
        else:
            stop(proc, None)  # kills what it left in its session, if anything
    state = LabState.load(layout)
    if state is not None:
        leftovers = kill_marked(state.marker)
        if leftovers:
            stopped.append(f"{len(leftovers)} stray process(es)")
    for ev in journal.events():  # namespaces last: nothing runs in them any more
        if ev.get("event") == "netns" and netns.exists(str(ev.get("ns"))):
            netns.delete(str(ev["ns"]), str(ev.get("host_if") or ""))
            stopped.append(f"namespace {ev['ns']}")
    if state is not None:
        layout.state.unlink()
    return stopped

