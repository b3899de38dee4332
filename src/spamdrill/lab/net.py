"""Loopback addresses and ports for a lab: pick free ones, refuse taken ones."""

from __future__ import annotations

import errno
import random
import socket

from spamdrill.errors import SpamdrillError


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


def free_port(host: str = "127.0.0.1", udp: bool = False) -> int:
    """A port free for TCP (and UDP when asked) on ``host``, chosen by the kernel."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not udp or _bindable(host, port, socket.SOCK_DGRAM):
            return port
    raise SpamdrillError(f"no free port on {host}")


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
