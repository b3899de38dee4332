"""Loopback addresses and ports for a lab: pick free ones, refuse taken ones.

A port is picked some time before its program binds it (MariaDB takes seconds to start),
and two things can take it meanwhile: another lab picking at the same moment, and any
outgoing connection, whose source port the kernel draws from its ephemeral range (a
flood's thousands of spamc connections). So a lab's ports come from below that range,
at random, each reserved across processes (a lock on one byte of a file, held by the
process that picked it) until its program has long bound it. Found by two test processes
side by side: MariaDB aborted with "another server running on port"."""

from __future__ import annotations

import collections
import errno
import fcntl
import os
import random
import socket
from pathlib import Path

from spamdrill.errors import SpamdrillError

LOWEST = 10000  # below: ports other software is configured on more often
KEEP = 256  # reservations a process holds at once (its oldest labs bound theirs long ago)
_held: collections.deque[int] = collections.deque()  # ports this process reserved
_fd: int | None = None


def _bindable(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def ephemeral_range(text: str | None = None) -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports (Linux's default if it
    cannot be read)."""
    try:
        if text is None:
            text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = (int(x) for x in text.split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def listen_range(ephemeral: tuple[int, int]) -> tuple[int, int]:
    """Where a lab's listeners go: below the ephemeral range, or above it when it starts
    too low to leave room (a tuned host), within 1024-65535."""
    low, high = ephemeral
    if low - LOWEST >= 4096:
        return LOWEST, low - 1
    if 65535 - high >= 4096:
        return high + 1, 65535
    return 1024, 65535  # no room outside it: the reservation and the bind check still hold


def _lock_file() -> int:
    """This user's reservations file, /tmp/spamdrill-ports-UID (not under $TMPDIR, so
    processes with different temporary directories see each other's): opened once,
    never through a symlink, and only if it is ours."""
    global _fd
    if _fd is None:
        path = Path("/tmp") / f"spamdrill-ports-{os.geteuid()}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if os.fstat(fd).st_uid != os.geteuid():
            os.close(fd)
            raise SpamdrillError(f"{path} belongs to another user",
                                 "remove it (it only holds port reservations)")
        _fd = fd
    return _fd


def _reserve(port: int) -> bool:
    """Hold ``port`` for this process: a lock on byte ``port`` of the reservations file
    (False: another process holds it, or this one already handed it out). The oldest
    beyond ``KEEP`` are let go."""
    if port in _held:
        return False
    fd = _lock_file()
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    _held.append(port)
    while len(_held) > KEEP:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _held.popleft())
    return True


def free_port(host: str = "127.0.0.1", udp: bool = False) -> int:
    """A port free for TCP (and UDP when asked) on ``host``, outside the kernel's
    ephemeral range and reserved for this process (see the module)."""
    low, high = listen_range(ephemeral_range())
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(low, high + 1)
        if not _reserve(port):
            continue
        if _bindable(host, port, socket.SOCK_STREAM) and (
                not udp or _bindable(host, port, socket.SOCK_DGRAM)):
            return port
    raise SpamdrillError(f"no free port on {host}",
                         "see what holds the ports: ss -lntup")


def claim_port(host: str, port: int, what: str, udp: bool = False) -> int:
    """``port`` if it is free (0 picks one); a clear error if something holds it."""
    if port == 0:
        return free_port(host, udp)
    if not _bindable(host, port, socket.SOCK_STREAM) or (
        udp and not _bindable(host, port, socket.SOCK_DGRAM)
    ):
        raise SpamdrillError(
            f"{what} port {host}:{port} is already in use",
            f"choose another in the lab config, or 0 for a free one (see: ss -lntup "
            f"'sport = :{port}')",
        )
    return port


def free_loopback_53() -> str:
    """A 127.x.y.z address whose port 53 is free, so a lab resolver can serve libc (root only)."""
    rng = random.SystemRandom()
    for _ in range(50):
        host = f"127.53.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
        if _bindable(host, 53, socket.SOCK_DGRAM) and _bindable(host, 53, socket.SOCK_STREAM):
            return host
    raise SpamdrillError("no free 127.53.x.y:53 for the lab resolver")


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
