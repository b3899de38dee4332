"""The lab's own Redis, for rspamd (Bayes, ratelimit, reputation, history): Debian's
redis-server with no configuration file, every setting on the command line, so the
machine's /etc/redis/redis.conf and its instance are never touched.

No persistence (``--save ""``, ``--appendonly no``): a lab's Redis starts empty and leaves
nothing behind but its directory. Readiness is a real ``PING`` answered ``+PONG`` (RESP,
https://redis.io/docs/reference/protocol-spec/), never a sleep.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

REDIS_SERVER = "redis-server"


def binary() -> str:
    return shutil.which(REDIS_SERVER) or f"/usr/bin/{REDIS_SERVER}"


def argv(directory: Path, host: str, port: int) -> list[str]:
    """redis-server on ``host:port`` only, in the foreground, without persistence.

    ``--protected-mode yes`` keeps it refusing non-loopback clients that have no password
    (redis.conf's own default); ``--daemonize no`` keeps it in the session the lab journals;
    ``--set-proc-title no`` keeps its environment (a title would overwrite it), so the lab's
    marker proves it is the lab's before a fault or a heal signals it.
    """
    return [binary(), "--port", str(port), "--bind", host, "--protected-mode", "yes",
            "--daemonize", "no", "--set-proc-title", "no", "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--logfile", "", "--databases", "16"]


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """``PING`` in RESP; True on ``+PONG``. A frozen (SIGSTOPped) Redis accepts the
    connection in the kernel and never answers: that is False after ``timeout``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def command(host: str, port: int, *words: str, timeout: float = 2.0) -> bytes:
    """One command, its raw first reply (enough for ``DBSIZE`` or ``INFO``'s first lines);
    raises OSError when Redis does not answer."""
    req = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(w.encode())}\r\n".encode() + w.encode() + b"\r\n" for w in words)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(req)
        return s.recv(65536)
