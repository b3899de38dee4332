"""Read what the real system shows after a drill, and judge every message (``fates``):
the recipients' Maildirs, the private Postfix's queue, the sender's mailbox and its log.
Thin I/O around the sans-IO parsers in ``proto/`` and ``fates``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from spamdrill.fates import Found, Injected, MessageFate, judge
from spamdrill.lab import postfix, safefs
from spamdrill.proto import postfix_log, postqueue
from spamdrill.proto.mailfile import Dsn, NotADsn, intact, parse_delivered, parse_dsn


def _message_files(maildir: Path) -> Iterable[tuple[str, Path]]:
    """(folder, file) for every message in a Maildir and its ``.Folder`` sub-Maildirs."""
    for base in [maildir, *sorted(p for p in maildir.glob(".*") if p.is_dir())]:
        folder = "" if base == maildir else base.name
        for sub in ("new", "cur"):
            d = base / sub
            if d.is_dir():
                for f in sorted(d.iterdir()):
                    if f.is_file():
                        yield folder, f


def maildirs(mail_dir: Path) -> list[Path]:
    """Every ``USER/Maildir`` under the lab's mail directory."""
    return sorted(p for p in mail_dir.glob("*/Maildir") if p.is_dir())


def scan(mail_dir: Path, sent: Iterable[Injected]) -> dict[str, list[Found]]:
    """Every copy of every message in the lab's Maildirs, keyed by Message-ID; each
    checked whole against the body that was sent with that Message-ID."""
    bodies = {s.message_id: s.data for s in sent if s.message_id}
    found: dict[str, list[Found]] = {}
    for maildir in maildirs(mail_dir):
        for folder, path in _message_files(maildir):
            # moved or removed meanwhile, or not a file of its own (the Maildirs are the
            # pipe user's: nothing there is followed, see safefs)
            with contextlib.suppress(OSError):
                raw = safefs.read_bytes(mail_dir.parent, path)
                msg = parse_delivered(raw)
                if msg.message_id is None:
                    continue
                ok = msg.message_id in bodies and intact(bodies[msg.message_id], raw)
                found.setdefault(msg.message_id, []).append(
                    Found(str(path), folder, msg, ok))
    return found


def bounces(paths: postfix.Paths) -> list[Dsn]:
    """Every DSN in the sender's mailbox."""
    out: list[Dsn] = []
    for _folder, path in _message_files(paths.sender_maildir):
        with contextlib.suppress(OSError, NotADsn):
            out.extend(parse_dsn(safefs.read_bytes(paths.root.parent, path)))
    return out


def log_stories(paths: postfix.Paths) -> dict[str, postfix_log.QueueStory]:
    try:
        text = paths.maillog.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    return postfix_log.stories(text)


def read(run_dir: Path, mail_dir: Path, sent: list[Injected]) -> list[MessageFate]:
    """Every message's outcome from the real system (call once the queue has drained, or
    as far as it will: what is still queued is ``deferred``)."""
    paths = postfix.Paths.of(run_dir)
    queue = postqueue.parse(postfix.queue_json(paths))
    return judge(sent, scan(mail_dir, sent), queue, bounces(paths), log_stories(paths))
