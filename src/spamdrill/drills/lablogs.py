"""The lab's logs, kept before the lab goes: a drill's lab directory is removed when the
drill ends, so what spamd, MariaDB, maildrop and Postfix wrote is copied into the run's
own directory first (the tail, at most ``KEEP_BYTES`` each), and an excerpt goes into the
run's document for the report (``spamdrill.logexcerpt``).
"""

from __future__ import annotations

from pathlib import Path

from spamdrill.lab import safefs
from spamdrill.lab.layout import Layout
from spamdrill.logexcerpt import Excerpt, excerpt

KEEP_BYTES = 1 << 20


def sources(lab_dir: Path) -> dict[str, Path]:
    """Each log a drill's lab may have written (Postfix only in end-to-end drills)."""
    layout = Layout(lab_dir)
    return {"spamd": layout.spamd_log, "mariadb": layout.db_log,
            "maildrop": layout.maildrop_log, "postfix": lab_dir / "postfix" / "maillog",
            "rspamd": lab_dir / "rspamd" / "rspamd.log"}  # rspamd's drills only


def _tail(lab_dir: Path, path: Path, limit: int = KEEP_BYTES) -> str:
    """The log's last ``limit`` bytes. The logs live in directories their services own
    (mariadb/ is mysql's): read from the lab directory without following a symlink, a
    regular file only, or a planted link would copy any file into a world-readable run."""
    data, size = safefs.tail(lab_dir, path, limit)
    if size > limit:  # start at a whole line
        data = data[data.find(b"\n") + 1:]
    return data.decode(errors="replace")


def keep(lab_dir: Path, into: Path) -> list[Excerpt]:
    """Copy each existing log's tail to ``into/<name>.log``; excerpts of those present.
    Never raises for a file (it runs in the clean-up that must still take the lab down):
    a log that cannot be read is left out, one that cannot be copied keeps its lab path."""
    kept = []
    for name, path in sources(lab_dir).items():
        try:
            text = _tail(lab_dir, path)
        except OSError:
            continue
        saved = into / f"{name}.log"
        try:
            into.mkdir(parents=True, exist_ok=True)
            saved.write_text(text)
        except OSError:
            saved = path
        kept.append(excerpt(name, str(saved), text))
    return kept
