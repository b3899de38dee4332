"""``--keep-slow DIR``: the message that met the deadline (or was slower than ``--slow``)
and a small JSON of what happened, so the slow message can be studied
(``spamdrill replay FILE``) instead of being gone from view.

Bounded: at most MAX_COUNT kept checks, MAX_MESSAGE bytes of each message (a longer one is
cut, and the JSON says so) and MAX_TOTAL bytes in the directory; past a bound nothing is
written and the log line says why. Written safely: DIR must be a real directory (not a
symlink) owned by this user or root and not writable by others; files are created with
O_EXCL | O_NOFOLLOW, mode 0600, relative to the directory's descriptor.
"""

from __future__ import annotations

import json
import posix as os
import stat
import time

from spamdrill.spamc import core

MAX_COUNT = 200
MAX_MESSAGE = 2 << 20
MAX_TOTAL = 100 << 20
HEADER_LIMIT = 64 << 10  # Message-ID is looked for in the first 64 KiB only


def message_id(message: bytes) -> str:
    """The Message-ID header's value (unfolded, printable, at most 200 characters), or ""."""
    head = message[:HEADER_LIMIT]
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0),
              default=len(head))
    lines = head[:end].replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(lines):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            for more in lines[i + 1:]:
                if more[:1] not in (b" ", b"\t"):
                    break
                value += b" " + more.strip()
            text = value.strip().decode("latin-1")
            return "".join(c if c.isprintable() else "?" for c in text)[:200]
    return ""


def record(mode: core.Mode, events: list[dict[str, object]], sent: int, received: int,
           stopped: str, elapsed: float, message: bytes, code: int,
           user: str | None = None) -> dict[str, object]:
    """What the JSON holds (sans-IO). ``user``: the User: sent to spamd (whose settings
    scanned it): ``spamdrill replay FILE.eml --user USER`` runs it again in a lab."""
    return {
        "user": user,
        "version": 1,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "spamd": list(mode.hosts) or ([mode.unix_socket] if mode.unix_socket else
                                      ["localhost"]),
        "port": mode.port, "deadline_s": mode.deadline, "timeout_s": mode.timeout,
        "elapsed_s": round(elapsed, 4), "stopped": stopped, "exit": code,
        "events": events, "bytes_sent": sent, "bytes_received": received,
        "message_bytes": len(message), "message_kept_bytes": min(len(message), MAX_MESSAGE),
        "message_id": message_id(message),
    }


def admit(count: int, total: int, size: int) -> str:
    """Why a kept check would pass a bound, or "" (sans-IO)."""
    if count >= MAX_COUNT:
        return f"{MAX_COUNT} checks kept already"
    if total + size > MAX_TOTAL:
        return f"{MAX_TOTAL >> 20} MiB kept already"
    return ""


def safe_dir(path: str) -> int:
    """The directory's descriptor, or OSError/ValueError saying why it is not safe."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path[:200]!r} is not a directory (a symlink is refused)")
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o002:
        raise ValueError(f"{path[:200]!r} is writable by others or owned by someone else")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    if os.fstat(fd).st_ino != st.st_ino:  # replaced between lstat and open
        os.close(fd)
        raise ValueError(f"{path[:200]!r} changed while it was opened")
    return fd


def store(path: str, message: bytes, info: dict[str, object]) -> str:
    """Write ``<stamp>-<pid>.eml`` and ``.json`` in ``path``; returns the log line's
    words: " kept=FILE" or " not kept: WHY"."""
    try:
        dfd = safe_dir(path)
    except (OSError, ValueError) as exc:
        return f" not kept: {exc}"
    try:
        names = [n for n in os.listdir(dfd) if n.endswith(".eml")]
        total = 0
        for n in os.listdir(dfd):
            try:
                total += os.stat(n, dir_fd=dfd, follow_symlinks=False).st_size
            except OSError:
                continue
        body = message[:MAX_MESSAGE]
        doc = json.dumps(info, indent=1, sort_keys=True).encode() + b"\n"
        why = admit(len(names), total, len(body) + len(doc))
        if why:
            return f" not kept: {why}"
        base = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        for suffix, data in ((".eml", body), (".json", doc)):
            fd = os.open(base + suffix, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o600, dir_fd=dfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        return f" kept={path}/{base}.eml"
    except OSError as exc:
        return f" not kept: {exc.strerror or exc}"
    finally:
        os.close(dfd)
