"""A host's files given as a tarball (``--etc host-etc.tar.gz``): each member judged
before anything is written (sans-IO: ``refusal``), then extracted into a private
directory with tarfile's ``data`` filter as a second guard.

Refused, in one line naming the member: an absolute path, a ``..`` in a path, a symbolic
or hard link whose target leaves the tarball (absolute, or climbing out), a device, a
FIFO or any other special file; a tarball past ``MAX_BYTES`` or ``MAX_MEMBERS``. A copy
of /etc made with ``tar -C / -czf etc.tgz etc`` holds absolute links (/etc/localtime):
``tar -h`` (follow links) makes one that is not refused.
"""

from __future__ import annotations

import contextlib
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spamdrill.errors import SpamdrillError

MAX_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 200_000
FIX = "make it with tar -h (links followed) of the files doctor reads: tar -C / -chzf " \
      "etc.tgz etc usr/local/bin/WRAPPER var/log/mail.log"


@dataclass(frozen=True)
class Member:
    """What decides a member's safety: its name, its kind, a link's target, its size."""

    name: str
    kind: str  # file | dir | symlink | hardlink | special
    link: str = ""
    size: int = 0


def _climbs(path: str) -> bool:
    norm = posixpath.normpath(path)
    return norm == ".." or norm.startswith("../")


def refusal(m: Member) -> str | None:
    """Why this member may not be extracted (None: it may)."""
    if m.name.startswith("/"):
        return "an absolute path"
    if ".." in m.name.split("/"):
        return "'..' in its path"
    if m.kind == "special":
        return "a device, FIFO or other special file"
    if m.kind in ("symlink", "hardlink"):
        if not m.link:
            return "a link to nothing"
        if m.link.startswith("/"):
            return f"a link out of the tarball (to {m.link})"
        base = posixpath.dirname(m.name) if m.kind == "symlink" else ""
        if _climbs(posixpath.join(base, m.link)) or (m.kind == "hardlink"
                                                     and ".." in m.link.split("/")):
            return f"a link out of the tarball (to {m.link})"
    return None


def check(members: Iterable[Member]) -> list[Member]:
    """Every member, or a one-line error naming the first unsafe one."""
    out, total = [], 0
    for m in members:
        why = refusal(m)
        if why is not None:
            raise SpamdrillError(f"tarball member {m.name!r}: {why}; refused", FIX)
        total += m.size
        out.append(m)
        if len(out) > MAX_MEMBERS:
            raise SpamdrillError(f"the tarball holds more than {MAX_MEMBERS} members",
                                 "give only the files doctor reads")
        if total > MAX_BYTES:
            raise SpamdrillError(f"the tarball unpacks to more than {MAX_BYTES >> 20} MB",
                                 "give only the files doctor reads")
    return out


def _member(t: tarfile.TarInfo) -> Member:
    kind = ("file" if t.isreg() else "dir" if t.isdir() else "symlink" if t.issym()
            else "hardlink" if t.islnk() else "special")
    return Member(t.name, kind, t.linkname, t.size)


def _lead(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return parts[0] if parts else ""


@contextlib.contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """The tarball's files as a root (``etc/...`` under it; a tarball of /etc's contents
    alone is put under ``etc/``), in a private directory removed on the way out."""
    try:
        tf = tarfile.open(path)  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise SpamdrillError(f"--etc {path}: not a directory, nor a tarball ({exc})",
                             "give the root of a copy of the host's files, or a "
                             "tarball of them") from None
    with tf, tempfile.TemporaryDirectory(prefix="spamdrill-doctor-etc-") as tmp:
        try:
            infos = tf.getmembers()
        except (OSError, tarfile.TarError) as exc:
            raise SpamdrillError(f"--etc {path}: unreadable tarball ({exc})") from None
        check(_member(t) for t in infos)
        root = Path(tmp) / "root"
        root.mkdir(mode=0o700)
        whole = any(_lead(t.name) == "etc" for t in infos)
        dest = root if whole else root / "etc"
        dest.mkdir(exist_ok=True)
        try:
            tf.extractall(dest, infos, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise SpamdrillError(f"--etc {path}: refused while unpacking: {exc}",
                                 FIX) from None
        yield root


@contextlib.contextmanager
def root_of(etc: Path) -> Iterator[Path]:
    """``--etc``: a directory as it is, or a tarball unpacked; else a one-line error."""
    if etc.is_dir():
        yield etc
        return
    if not etc.is_file():
        raise SpamdrillError(f"--etc {etc}: no such directory or tarball",
                             "give the root of a system's files, e.g. / or a copy of it, "
                             "or a tarball of them")
    with unpacked(etc) as root:
        yield root


def relabel(value: Any, root: Path, tarball: Path) -> Any:
    """A document's paths under the unpacked root (gone once doctor exits) as the
    tarball's: ``/tmp/.../root/etc/maildroprc:6`` -> ``host.tgz!/etc/maildroprc:6``."""
    old, new = str(root), f"{tarball}!"
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [relabel(v, root, tarball) for v in value]
    if isinstance(value, dict):
        return {k: relabel(v, root, tarball) for k, v in value.items()}
    return value
