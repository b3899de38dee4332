"""Root's file access inside directories that a service user owns (``mail/`` is pipe(8)'s
user's, ``mariadb/`` is mysql's, spamd's log is debian-spamd's).

Whoever owns a directory can put a symlink, a FIFO or a hard link where root expects a
file of its own; root following it would truncate, append to, or copy out any file on the
machine. So every file there is reached from the run directory (checked by
``layout.check_run_dir``) one component at a time, each directory opened with
``O_NOFOLLOW | O_DIRECTORY`` relative to the previous one's descriptor, the file itself
with ``O_NOFOLLOW``; and what was opened must be a regular file with one link. Writes that
replace a file go to a fresh temporary name (``O_EXCL``) in the same directory and are
renamed over it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path under the run directory that is not what root may touch (a symlink, a
    special file, a hard link, or outside the run directory)."""


def _parts(base: Path, path: Path) -> tuple[str, ...]:
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(base))
    except ValueError:
        raise UnsafePath(errno.EXDEV, f"{path} is not under {base}") from None
    if any(p in ("", ".", "..") for p in rel.parts) or not rel.parts:
        raise UnsafePath(errno.EINVAL, f"{path}: not a file under {base}")
    return rel.parts


@contextlib.contextmanager
def dir_fd(base: Path, rel: tuple[str, ...] = ()) -> Iterator[int]:
    """A descriptor of ``base/rel...``, no component followed through a symlink."""
    fd = os.open(base, _DIR)
    try:
        for name in rel:
            try:
                nxt = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(exc.errno, f"{name} in {base} is not a directory "
                                     "(a symlink?)") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _checked(fd: int, path: Path) -> int:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise UnsafePath(errno.EPERM, f"{path} is not a regular file with one link")
    return fd


def open_fd(base: Path, path: Path, flags: int, mode: int = 0o600) -> int:
    """``path`` (under ``base``) opened with ``flags``, never through a symlink; a regular
    file with one link, or UnsafePath. A FIFO is not waited on (``O_NONBLOCK``)."""
    *dirs, name = _parts(base, path)
    truncate = flags & os.O_TRUNC  # only once it is known to be a file of its own
    with dir_fd(base, tuple(dirs)) as dfd:
        try:
            fd = os.open(name, (flags & ~os.O_TRUNC) | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, mode, dir_fd=dfd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):
                raise UnsafePath(exc.errno, f"{path} is a symlink or a special file") \
                    from None
            raise
    fd = _checked(fd, path)
    os.set_blocking(fd, True)
    if truncate:
        os.ftruncate(fd, 0)
    return fd


def read_bytes(base: Path, path: Path) -> bytes:
    with os.fdopen(open_fd(base, path, os.O_RDONLY), "rb") as fh:
        return fh.read()


def read_text(base: Path, path: Path) -> str:
    return read_bytes(base, path).decode(errors="replace")


def tail(base: Path, path: Path, limit: int) -> tuple[bytes, int]:
    """The last ``limit`` bytes of ``path`` and its whole size."""
    with os.fdopen(open_fd(base, path, os.O_RDONLY), "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - limit))
        return fh.read(), size


def append_fd(base: Path, path: Path, mode: int = 0o600) -> int:
    """``path`` opened to append (made if missing), never through a symlink."""
    return open_fd(base, path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)


def write_atomic(base: Path, path: Path, data: bytes, mode: int = 0o600,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` (under ``base``) with ``data``: written to a fresh temporary name
    in its directory (``O_EXCL``, so nothing planted is opened) and renamed over it
    (a planted symlink at ``path`` is replaced, not followed). ``owner``: (uid, gid)."""
    *dirs, name = _parts(base, path)
    with dir_fd(base, tuple(dirs)) as dfd:
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, mode, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                if owner is not None:
                    os.fchown(fh.fileno(), *owner)
                os.fchmod(fh.fileno(), mode)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise


def unlink(base: Path, path: Path) -> None:
    """Remove ``path`` (a symlink there is removed, never followed); missing is fine."""
    *dirs, name = _parts(base, path)
    try:
        with dir_fd(base, tuple(dirs)) as dfd:
            os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass


def stat_file(base: Path, path: Path) -> os.stat_result:
    """The regular file ``path``'s status, read without following a symlink."""
    fd = open_fd(base, path, os.O_RDONLY)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def chown_tree(base: Path, path: Path, uid: int, gid: int) -> None:
    """Hand ``path`` (under ``base``) and everything below it to ``uid:gid``. With
    ``os.fwalk`` every directory is entered through a descriptor, never through a name a
    symlink could have replaced since it was listed (``os.walk`` would then chown what lies
    behind the link); nothing below is followed."""
    rel = _parts(base, path)
    with dir_fd(base, rel[:-1]) as parent:
        os.chown(rel[-1], uid, gid, dir_fd=parent, follow_symlinks=False)
    for _dirpath, dirs, files, fd in os.fwalk(path, follow_symlinks=False):
        for name in (*dirs, *files):
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
