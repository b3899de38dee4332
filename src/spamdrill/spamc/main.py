"""spamdrill-spamc's I/O: stdin, stdout, the log line; the flags are ``args``'s, the sockets
``wire``'s.

The core (``core.py``, ``deadline.py``) decides; this file only carries out its actions.
Imports are the C modules where the Python ones cost start-up time on every message
(``socket`` pulls in enum and selectors; ``os`` is ``posix`` under ``python -S``)."""

from __future__ import annotations

import posix as os
import select
import sys
import time

from spamdrill.spamc import core, deadline
from spamdrill.spamc.args import USAGE, Usage, parse, seconds, split_args
from spamdrill.spamc.wire import Wire, addresses, run_check

# --- stdin and stdout ------------------------------------------------------------------

def read_message(limit: int, end: float = core.INF, fd: int = 0) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of stdin (spamc reads ``-s`` + 1 to tell a big one), and
    whether they came before the deadline ``end``: a writer that stalls (maildrop, or
    whatever feeds the filter) cannot hold the check past it."""
    chunks: list[bytes] = []
    got = 0
    poller = None
    if end != core.INF:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
    while got < limit:
        if poller is not None and not _readable(poller, end):
            return b"".join(chunks), False
        try:
            chunk = os.read(fd, min(1 << 20, limit - got))
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks), True


def _readable(poller: select.poll, end: float) -> bool:
    """Wait for stdin until ``end``: True once a read will not block (data, EOF, an
    error for the read to raise), False at the deadline."""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(int(min(left, 3600.0) * 1000) + 1):
            return True


def write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return False
        view = view[n:]
    return True


def copy_rest(fd_in: int, fd_out: int, end: float = core.INF) -> bool:
    """The rest of stdin to stdout; False when the deadline ``end`` came first."""
    poller = None
    if end != core.INF:
        poller = select.poll()
        poller.register(fd_in, select.POLLIN)
    while True:
        if poller is not None and not _readable(poller, end):
            return False
        chunk = os.read(fd_in, 1 << 20)
        if not chunk or not write_all(fd_out, chunk):
            return True


# --- the run ---------------------------------------------------------------------------

def user_name(mode: core.Mode) -> str | None:
    if mode.user is not None:
        return mode.user
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


def main(argv: list[str], start: float) -> int:
    try:
        ours, _, help_ = split_args(argv)
        if help_:
            sys.stdout.write(USAGE)
            return 0
        if "--make-launcher" in ours:
            from spamdrill.spamc import launcher

            return launcher.make(ours["--make-launcher"], ours.get("--python", ""))
        mode, ours = parse(argv)
        slow = seconds(ours, "--slow")
        if slow and "--keep-slow" not in ours:
            raise Usage("--slow needs --keep-slow=DIR")
    except Usage as exc:
        sys.stderr.write(f"spamdrill-spamc: {exc}\n")
        return core.EX_USAGE
    end = start + mode.deadline if mode.deadline > 0 else core.INF
    message, whole = read_message(mode.max_size + 1, end)
    if not whole:
        # not the whole message: nothing can go out (a prefix is a truncated message), so
        # a temporary failure, as -x's: maildrop keeps the mail and Postfix retries it
        log(mode, f"deadline: reading the message from stdin ({len(message)} bytes in "
            f"{time.monotonic() - start:.3f}s); nothing written, exit {core.EX_TEMPFAIL}")
        return core.EX_TEMPFAIL
    _READ[:] = [message]
    if len(message) > mode.max_size:
        return too_big(mode, message, end, start)
    if not message:
        out, code = core.finish(mode, message, core.EX_IOERR, None)
        write_all(1, out)
        return code
    wire = Wire([])
    result = check_message(mode, message, wire, start)
    out, code = core.finish(mode, message, result.code, result.judged)
    _WRITTEN.append(True)
    write_all(1, out)
    elapsed = time.monotonic() - start
    kept = ""
    if "--keep-slow" in ours and (result.deadline_hit or (slow and elapsed > slow)):
        from spamdrill.spamc import keep

        kept = keep.store(ours["--keep-slow"], message, keep.record(
            mode, wire.events, wire.sent, wire.received, result.stopped, elapsed,
            message, code, user_name(mode)))
    if result.code != core.EX_OK or kept:
        log(mode, f"{'deadline' if result.deadline_hit else 'failed'}: {result.stopped}; "
            f"{'message passed through' if out == message else 'exit'} {code} "
            f"after {elapsed:.3f}s{kept}" if result.code != core.EX_OK else
            f"slow: {elapsed:.3f}s{kept}")
    return code


def check_message(mode: core.Mode, message: bytes, wire: Wire, start: float) -> deadline.Result:
    end = start + mode.deadline if mode.deadline > 0 else core.INF
    hosts, flat, failed = addresses(mode, end)
    if failed:
        return deadline.Result(failed, "could not resolve any hosts")
    wire.flat = flat
    return run_check(mode, core.build_request(mode, user_name(mode), message), hosts, wire,
                     start)


def too_big(mode: core.Mode, head: bytes, end: float = core.INF, start: float = 0.0) -> int:
    """Over ``-s``: spamc passes the whole message through unscanned and exits 0. A rest
    that does not come by the deadline makes it a temporary failure: what went out is a
    prefix, which a non-zero exit tells maildrop not to deliver."""
    out, code = core.finish(mode, head, core.EX_TOOBIG, None)
    _WRITTEN.append(True)
    write_all(1, out)
    if out == head and not copy_rest(0, 1, end):
        log(mode, "deadline: passing a message over -s through (stdin stalled); "
            f"exit {core.EX_TEMPFAIL} after {time.monotonic() - start:.3f}s")
        return core.EX_TEMPFAIL
    return code


def log(mode: core.Mode, text: str) -> None:
    if mode.log_to_stderr:
        sys.stderr.write(f"spamdrill-spamc: {text}\n")
        return
    from spamdrill import lean as syslog

    syslog.send(text, ident="spamdrill-spamc")


_READ: list[bytes] = []  # the message once read, for the last resort
_WRITTEN: list[bool] = []


def entry() -> None:
    start = time.monotonic()
    try:
        code = main(sys.argv[1:], start)
    except BaseException as exc:  # never a traceback, never a lost message
        code = last_resort(exc)
    sys.exit(code)


def _say(exc: BaseException) -> None:
    try:
        sys.stderr.write(f"spamdrill-spamc: internal error {type(exc).__name__}: "
                         f"{str(exc)[:200]}\n")
    except BaseException:  # the exit status is what counts
        return


def last_resort(exc: BaseException) -> int:
    """Anything unforeseen: the message as read goes out unscanned (exit 0), unless
    output has begun or -x is given (then 75: maildrop keeps the message and retries)."""
    _say(exc)
    if _READ and not _WRITTEN and "-x" not in sys.argv[1:] and write_all(1, _READ[0]):
        return core.EX_OK
    return core.EX_TEMPFAIL
