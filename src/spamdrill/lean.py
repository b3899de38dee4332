"""What the two programs in the delivery chain (spamdrill-deliver, spamdrill-spamc) share,
in one module because each module is start-up time on every message: how an option's value
is read, and the one syslog line.

Options: ``--name=value`` or ``--name value``, hand-parsed (argparse costs start-up time);
the ``=`` form is what master.cf and maildroprc should use, so an address that starts with
``-`` is never read as an option.

The syslog line: straight to the local socket, no helper process, no blocking, and no
failure that could touch the delivery (Perl's Sys::Syslog dies when syslogd goes away; the
field report's wrapper forked ``logger`` for every line). Every field is cut to a set
length: a datagram larger than the socket takes is refused (EMSGSIZE) and the line is lost
without a trace (a 480 kB recipient did that), and RFC 5424 asks receivers to accept only
2048 bytes. Cut fields end in ``...``."""

from __future__ import annotations

# the C modules: ``socket`` imports enum and selectors, ~7 ms of every delivery; ``os``
# is ``posix`` and ~2.4 ms of imports under ``python -S`` (run.py)
import _socket as socket
import posix as os
import time

LOG_MAIL = 2
LOG_INFO = 6
IDENT = "spamdrill-deliver"
MAX_LINE = 2048  # bytes, the whole line with its header


def value_of(argv: list[str], i: int, error: type[Exception]) -> tuple[str, int]:
    """The value of the option at ``argv[i]`` and the index of its last word; ``error``
    (the caller's usage error) when the value is missing."""
    name, eq, value = argv[i].partition("=")
    if eq:
        return value, i
    if i + 1 >= len(argv):
        raise error(f"{name} needs a value")
    return argv[i + 1], i + 1


def clean(text: str) -> str:
    """No control characters from recipient text may forge a second log line."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def field(text: str, limit: int) -> str:
    """``text`` made printable and cut to ``limit`` characters (cut before cleaning too,
    so a huge field costs no time)."""
    shown = clean(text[: limit + 1])
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def format_line(message: str, pid: int, now: float, ident: str = IDENT) -> bytes:
    t = time.localtime(now)
    stamp = time.strftime("%b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S", t)
    data = f"<{LOG_MAIL * 8 + LOG_INFO}>{stamp} {ident}[{pid}]: {clean(message)}".encode(
        "utf-8", "replace")
    return data if len(data) <= MAX_LINE else data[: MAX_LINE - 3] + b"..."


def send(message: str, path: str = "/dev/log", ident: str = IDENT) -> bool:
    """Best effort: True if the line was handed to the socket. A line that could not be
    (no such socket, syslogd down) is said once on stderr, which pipe(8) reads with the
    wrapper's output, so the loss is not silent."""
    data = format_line(message, os.getpid(), time.time(), ident)
    failed: BaseException | None = None
    for kind, payload in ((socket.SOCK_DGRAM, data), (socket.SOCK_STREAM, data + b"\0")):
        try:  # a datagram socket first; some syslogds listen on a stream socket
            s = socket.socket(socket.AF_UNIX, kind)
            try:
                # never wait on a datagram; a stream gets a short bound
                s.settimeout(0.0 if kind == socket.SOCK_DGRAM else 0.2)
                s.connect(path)
                s.sendall(payload)
                return True
            finally:
                s.close()
        except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
            failed = failed or exc
            continue
    _say_lost(path, failed, ident)
    return False


def _say_lost(path: str, exc: BaseException | None, ident: str = IDENT) -> None:
    why = getattr(exc, "strerror", None) or str(exc)
    text = f"{ident}: no syslog line: {clean(path[:200])}: {clean(why[:100])}\n"
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:  # nowhere left to say it; the exit status still counts
        return
