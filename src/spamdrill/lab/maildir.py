"""A Maildir++ quota, filled and emptied on purpose (sans-IO where it reckons).

maildrop reads a Maildir's quota from ``maildirsize`` (Courier's Maildir++: the first line
is the quota, e.g. ``10000000S``; each further line ``bytes count`` adds up what the Maildir
holds) and refuses a delivery that would pass it ("maildir over quota"). Filling it takes
both a file of that size (maildrop recounts the files when ``maildirsize`` grows old or
large) and a line saying so; emptying it takes both away again, leaving every other line.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from spamdrill.lab import safefs

FILLER = "spamdrill-quota-filler"
_QUOTA = re.compile(r"(\d+)S")


def quota_bytes(first_line: str) -> int | None:
    """The byte quota of ``maildirsize``'s first line (``10000000S,100C``), if any."""
    for part in first_line.strip().split(","):
        m = _QUOTA.fullmatch(part)
        if m:
            return int(m.group(1))
    return None


def usage(text: str) -> tuple[int, int | None]:
    """(bytes held, byte quota) from ``maildirsize``'s text."""
    lines = text.splitlines()
    limit = quota_bytes(lines[0]) if lines else None
    held = 0
    for line in lines[1:]:
        words = line.split()
        if words and words[0].lstrip("-").isdigit():
            held += int(words[0])
    return held, limit


def without_line(text: str, line: str) -> str:
    """``text`` less the first line equal to ``line``."""
    lines = text.splitlines(keepends=True)
    for i, have in enumerate(lines):
        if have.rstrip("\n") == line:
            del lines[i]
            break
    return "".join(lines)


def _filler_line(limit: int) -> str:
    return f"{limit} 1"


def fill_quota(base: Path, maildir: Path) -> None:
    """Fill ``maildir`` to its quota: a filler file of the quota's size in ``cur/`` and
    the matching ``maildirsize`` line (owner kept, so the pipe user can still write it).
    The Maildir is the pipe user's: every file is reached from the run directory ``base``
    without following a symlink (``safefs``)."""
    size_file = maildir / "maildirsize"
    _held, limit = usage(safefs.read_text(base, size_file))
    if limit is None:
        raise ValueError(f"{size_file} sets no byte quota")
    st = safefs.stat_file(base, size_file)
    fd = safefs.open_fd(base, maildir / "cur" / FILLER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.ftruncate(fd, limit)  # sparse: counts as its size, costs no disk
        os.fchown(fd, st.st_uid, st.st_gid)
    finally:
        os.close(fd)
    fd = safefs.open_fd(base, size_file, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a") as fh:
        fh.write(_filler_line(limit) + "\n")


def unfill_quota(base: Path, maildir: Path) -> None:
    """Undo ``fill_quota`` (nothing to do if it was not filled)."""
    size_file = maildir / "maildirsize"
    safefs.unlink(base, maildir / "cur" / FILLER)
    try:
        text = safefs.read_text(base, size_file)
        st = safefs.stat_file(base, size_file)
    except FileNotFoundError:
        return
    _held, limit = usage(text)
    if limit is not None:
        safefs.write_atomic(base, size_file, without_line(text, _filler_line(limit)).encode(),
                            mode=stat.S_IMODE(st.st_mode), owner=(st.st_uid, st.st_gid))
