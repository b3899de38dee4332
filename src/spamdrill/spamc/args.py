"""spamdrill-spamc's command line: its own options (``--deadline``, ``--keep-slow``, ...)
taken out, the rest read as spamc reads it, config file first, by spamdrill's one reader of
spamc's flags (``spamdrill.system.spamc``)."""

from __future__ import annotations

import posix as os  # ``os`` is ~2.4 ms of imports under python -S, on every message

from spamdrill import lean
from spamdrill.spamc import core

USAGE = """\
usage: spamdrill-spamc [--deadline=SECONDS] [--keep-slow=DIR [--slow=SECONDS]]
                       [spamc 4.0.1 flags: -d HOST[,HOST...] -p PORT | -U SOCKET, -t -n
                        --connect-retries --retry-sleep --filter-retries
                        --filter-retry-sleep -u USER -s BYTES -x -X -E -c -R -r -y -H -4 -6
                        -l -F FILE]
       spamdrill-spamc --make-launcher PATH [--python=PYTHON]

spamc with the deadline people think -t gives. spamc's -t bounds each read, not the check:
a spamd that drips its answer keeps spamc waiting without end, and a full accept queue makes
-t count once per connect try. Here --deadline bounds the whole check (reading stdin,
connects, retries, sleeps, upload, scan, download). When it passes, or anything fails, the
original message is written byte for byte and the exit status is spamc's fail-open one: 0
(with -x: nothing written and a non-zero status, 75 for the deadline; -X turns 69 into 75).
The reply is read whole and checked (status line, headers, Content-length) before a byte is
written: it never writes an empty or truncated message, and a PROCESS "success" with an
empty message is a failure (spamc 4.0.1 writes nothing and exits 0). A message whose writer
stalls past the deadline is not whole: nothing is written, exit 75.

maildroprc (keep --deadline below maildrop's own 300 s timeout):
  xfilter "/usr/local/bin/spamdrill-spamc --deadline=60 -d spamd.example -t 30"

our options:
  --deadline=SECONDS    the whole check ends by then (default: none, as spamc; 0 < s <= 86400)
  --keep-slow=DIR       keep the message that met the deadline (or took longer than --slow)
                        and a JSON of what happened, in DIR (a directory, not a symlink,
                        not writable by others; `spamdrill replay FILE.eml` runs it again);
                        at most 200 messages of 2 MiB each and 100 MiB in all, files 0600
  --slow=SECONDS        with --keep-slow: keep checks slower than this too
  --make-launcher PATH  write a launcher that starts Python without site (python -I -S):
                        use PATH in maildroprc: ~20 ms more than spamc per message,
                        where Python with site costs ~100 ms more
                        (benchmarks/spamc_overhead.py)
  --python=PYTHON       with --make-launcher: the Python it names (default: this one)
refused (one line, exit 64): -L, -C, -K, -B, -e, -S, -z, --headers: they are not a
check of the message. spamc's config file (/etc/spamassassin/spamc.conf, or -F FILE) is
read as spamc reads it.
"""

OUR_VALUES = ("--deadline", "--keep-slow", "--slow", "--make-launcher", "--python")
MAX_DEADLINE = 86400.0


class Usage(Exception):
    pass


def split_args(argv: list[str]) -> tuple[dict[str, str], list[str], bool]:
    """Our own options out of argv (anywhere before spamc's first non-flag word); the
    rest goes to spamc's parser unchanged."""
    ours: dict[str, str] = {}
    rest: list[str] = []
    help_ = False
    i = 0
    while i < len(argv):
        word = argv[i]
        name = word.partition("=")[0]
        if name in OUR_VALUES:
            ours[name], i = lean.value_of(argv, i, Usage)
        elif word in ("-h", "--help"):
            help_ = True
        else:
            rest.append(word)
        i += 1
    return ours, rest, help_


def seconds(ours: dict[str, str], name: str) -> float:
    text = ours.get(name, "")
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise Usage(f"{name} must be seconds, not {text[:40]!r}") from None
    if not 0 < value <= MAX_DEADLINE:
        raise Usage(f"{name} must be more than 0 and at most {MAX_DEADLINE:g} s")
    return value


def parse(argv: list[str]) -> tuple[core.Mode, dict[str, str]]:
    """The Mode for these words: spamc's config file first, then the command line, read
    by spamdrill's one reader of spamc's flags (``spamdrill.system.spamc``)."""
    from spamdrill.errors import SpamdrillError
    from spamdrill.system import spamc as reader

    ours, rest, _ = split_args(argv)
    words: list[tuple[str, str]] = []
    conf = reader.config_file_of(rest)
    path = conf or reader.CONFIG_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if conf:
            raise Usage(f"cannot read spamc config file {conf[:200]!r}") from None
    else:
        try:
            text = os.read(fd, 1 << 16).decode("utf-8", "replace")
        finally:
            os.close(fd)
        try:
            words = reader.conf_words(text, path)
        except SpamdrillError as exc:
            raise Usage(exc.one_line()) from None
    words += [(w, "command line") for w in rest]
    try:
        command = reader.parse(words)
        mode = core.mode_of(command.options, command.flags)
    except SpamdrillError as exc:
        raise Usage(exc.one_line()) from None
    except ValueError as exc:
        raise Usage(str(exc)) from None
    mode.deadline = seconds(ours, "--deadline")
    return mode, ours
