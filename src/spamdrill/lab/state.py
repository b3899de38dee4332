"""What ``lab.json`` holds: enough for any later process to find and drive a lab. Typed
and decoded in one place (msgspec validates it on the way in), so no caller re-casts a
list into a host and a port."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from spamdrill.lab import netns, safefs
from spamdrill.lab.journal import Journal
from spamdrill.lab.layout import Layout

LOOPBACK = "127.0.0.1"


class Endpoint(msgspec.Struct, frozen=True):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class ProcRef(msgspec.Struct, frozen=True):
    """A lab process: pid and kernel start time (a recycled pid never matches)."""

    pid: int
    ticks: int | None


class RspamdRef(msgspec.Struct, frozen=True):
    """Where the lab's rspamd workers and its Redis listen (``spamdrill.lab.rspamd``)."""

    normal: Endpoint
    controller: Endpoint
    proxy: Endpoint
    redis: Endpoint
    # what the lab's Postfix does when this milter is unavailable (the config's rspamd
    # section: a Postfix started by a drill reads it here)
    milter_default_action: str = "tempfail"
    milter_content_timeout: float = 0.0  # 0: Postfix's own (300 s)
    # where rspamd's redis.servers points with the fault proxy (rspamd.redis_proxy)
    redis_proxy: Endpoint | None = None


class NetRef(msgspec.Struct, frozen=True):
    tag: str
    prefix: str
    clients: int = 1

    def net(self) -> netns.Net:
        return netns.Net(self.tag, self.prefix, self.clients)


class LabState(msgspec.Struct, kw_only=True):
    run_dir: str
    marker: str
    started: float
    spamd: Endpoint = Endpoint(LOOPBACK, 0)
    db: Endpoint = Endpoint(LOOPBACK, 0)
    db_name: str = LOOPBACK  # the host spamd's DSN names: an address, or a name
    dns: Endpoint = Endpoint(LOOPBACK, 0)
    dns2: Endpoint | None = None  # a secondary lab DNS, listed after the first
    db_proxy: Endpoint | None = None  # where spamd's DSN points with the fault proxy
    private_resolver: bool = False
    net: NetRef | None = None  # the multi-host topology
    rspamd: RspamdRef | None = None  # the lab's rspamd and Redis, when enabled
    owner_pid: int = 0  # the spamdrill that brought it up (a drill's lab dies with it)
    users: dict[str, float] = {}
    ready_s: dict[str, float] = {}
    pids: dict[str, ProcRef] = {}
    argv: dict[str, list[str]] = {}  # how each process was started, to start it again

    def save(self, layout: Layout | None = None) -> None:
        layout = layout or self.layout
        safefs.write_atomic(layout.root, layout.state, msgspec.json.encode(self), 0o600)

    @classmethod
    def load(cls, layout: Layout) -> LabState | None:
        with contextlib.suppress(OSError, msgspec.ValidationError, msgspec.DecodeError):
            fd = os.open(layout.state, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                state = msgspec.json.decode(fh.read(), type=cls)
            if Path(state.run_dir).resolve() == layout.root.resolve():
                return state
        return None

    @property
    def layout(self) -> Layout:
        return Layout(Path(self.run_dir))

    @property
    def journal(self) -> Journal:
        return Journal(self.layout.journal, tag=self.marker[:6], marker=self.marker)

    @property
    def network(self) -> netns.Net | None:
        """The multi-host topology, or None on loopback."""
        return self.net.net() if self.net is not None else None

    @property
    def dsn(self) -> Endpoint:
        """Where spamd's DSN points: MariaDB, or the fault proxy in front of it."""
        return self.db_proxy or self.db

    def client_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run where the lab's clients live: here, or on the client host."""
        net = self.network
        if net is None:
            return argv
        return net.host("client").exec(argv, self.layout.client_resolv_conf)
