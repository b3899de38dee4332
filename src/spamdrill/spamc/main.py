"""spamdrill-spamc's I/O: stdin, the spamc flags, sockets, stdout, the log line.

The core (``core.py``) decides; this file only carries out its actions. Imports are the C
modules where the Python ones cost start-up time on every message (``socket`` pulls in
enum and selectors; ``os`` is ``posix`` under ``python -S``)."""

from __future__ import annotations

import _socket as socket
import posix as os
import select
import sys
import time

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
        name, eq, value = word.partition("=")
        if name in OUR_VALUES:
            if not eq:
                if i + 1 >= len(argv):
                    raise Usage(f"{name} needs a value")
                i += 1
                value = argv[i]
            ours[name] = value
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


# --- spamd's addresses ---------------------------------------------------------------

def addresses(mode: core.Mode, end: float = core.INF
              ) -> tuple[list[list[int]], list[tuple[int, object]], int]:
    """(hosts as indexes into the address list, the addresses, failure code).
    ``transport_setup``: each host's getaddrinfo() answers are one entry; none at all is
    EX_NOHOST (EX_TEMPFAIL when a lookup failed for now). A name DNS must answer is looked
    up within the deadline ``end``."""
    if mode.unix_socket is not None:
        return [[0]], [(socket.AF_UNIX, mode.unix_socket)], core.EX_OK
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(mode.family, socket.AF_UNSPEC)
    names: list[str | None] = list(mode.hosts) or [None]
    flat: list[tuple[int, object]] = []
    hosts: list[list[int]] = []
    temporary = False
    for name in names:
        found, again = _lookup(name, str(mode.port), family, end)
        temporary |= again
        if not found:
            continue
        hosts.append(list(range(len(flat), len(flat) + len(found))))
        flat += [(fam, addr) for fam, _, _, _, addr in found]
    if not hosts:
        return [], [], core.EX_TEMPFAIL if temporary else core.EX_NOHOST
    rand = int.from_bytes(os.urandom(2), "little")
    return core.host_order(hosts, mode.randomize, mode.safe_fallback, rand), flat, core.EX_OK


Address = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]
Found = list[tuple[int, int, int, str, Address]]


def _lookup(name: str | None, port: str, family: int, end: float) -> tuple[Found, bool]:
    """getaddrinfo: an address at once; a name in a thread, abandoned at the deadline
    (the C resolver cannot be interrupted). Returns (answers, failed for now)."""
    # bytes: a str host loads the idna codec, start-up time on every message
    host = name.encode() if name is not None and name.isascii() else name
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0,
                                  socket.AI_NUMERICHOST), False
    except socket.gaierror:
        pass
    import threading

    box: list[Found | int] = []

    def ask() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except socket.gaierror as exc:
            box.append(exc.errno or 0)
        except OSError:
            box.append(0)

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    t.join(None if end == core.INF else max(0.0, end - time.monotonic()))
    if not box:
        return [], True  # the deadline came first
    answer = box[0]
    if isinstance(answer, int):
        return [], answer == socket.EAI_AGAIN
    return answer, not answer


# --- carrying out the core's actions ---------------------------------------------------

class Wire:
    """The sockets and what happened on them (for the log line and --keep-slow)."""

    def __init__(self, flat: list[tuple[int, object]]) -> None:
        self.flat = flat
        self.sock: socket.socket | None = None
        self.events: list[dict[str, object]] = []
        self.sent = self.received = 0
        self.peer = ""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def connect(self, action: core.Connect, start: float) -> tuple[int, float]:
        self.close()
        family, address = self.flat[action.address]
        t0 = time.monotonic()
        errno = self._connect(family, address, action.timeout, action.by_deadline)
        now = time.monotonic()
        self.peer = _show(address)
        self.events.append({"connect": self.peer, "at_s": round(t0 - start, 4),
                            "took_s": round(now - t0, 4),
                            "result": "ok" if errno == 0 else
                            ("deadline" if errno == -1 else
                             core.ERRNO_TEXT.get(errno, f"errno {errno}"))})
        return errno, now

    def _connect(self, family: int, address: object, timeout: float,
                 by_deadline: bool) -> int:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            return exc.errno or core.EX_SOFTWARE
        s.setblocking(False)
        until = time.monotonic() + timeout
        err = 0
        while True:
            err = s.connect_ex(address)  # type: ignore[arg-type]
            if err == 11 and family == socket.AF_UNIX:  # EAGAIN: the backlog is full
                if time.monotonic() >= until:
                    s.close()
                    return -1 if by_deadline else core.EINTR
                time.sleep(0.01)
                continue
            break
        if err in (0, 106):  # EISCONN
            self.sock = s
            return 0
        if err != 115:  # EINPROGRESS
            s.close()
            return err
        poller = select.poll()
        poller.register(s.fileno(), select.POLLOUT)
        if not poller.poll(max(0, int((until - time.monotonic()) * 1000) + 1)):
            s.close()
            return -1 if by_deadline else core.EINTR  # spamc's alarm: EINTR
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            s.close()
            return err
        self.sock = s
        return 0

    def talk(self, action: core.Talk, limit: int) -> core.Heard:
        """Write the request while reading whatever comes; after the write, ``idle``
        bounds each wait for data (spamc's -t per read); ``end`` bounds all."""
        s = self.sock
        assert s is not None
        t = _Talk(s, action.request)
        how = "eof"
        while True:
            now = time.monotonic()
            wait = action.end - now
            if t.written and action.idle > 0:
                wait = min(wait, action.idle - (now - t.last))
            if wait <= 0:
                how = "deadline" if action.end <= now else "idle"
                break
            how = t.step(wait)
            if how == "more":
                if len(t.data) > limit:
                    how = "too-big"
                elif not (action.headers_only and _headers_end(t.data)):
                    continue
                else:
                    how = "headers"
            if how != "wait":
                break
        self.sent += t.sent
        self.received += len(t.data)
        now = time.monotonic()
        self.events.append({"talk": self.peer, "sent": t.sent, "received": len(t.data),
                            "ended": how, "last_byte_s_ago": round(now - t.last, 4)})
        self.close()
        return core.Heard(bytes(t.data), how == "eof", how, t.sent, now)


class _Talk:
    """One exchange's state: what is written, what has come back, when data last moved."""

    def __init__(self, s: socket.socket, request: bytes) -> None:
        self.s = s
        self.view = memoryview(request)
        self.sent = 0
        self.data = bytearray()
        self.last = time.monotonic()
        self.poller = select.poll()

    @property
    def written(self) -> bool:
        return self.sent >= len(self.view)

    def step(self, wait: float) -> str:
        """Wait up to ``wait`` s for the socket; "wait" (nothing yet or written some),
        "more" (data came), "eof" or "error"."""
        writing = not self.written
        self.poller.register(self.s.fileno(),
                             select.POLLIN | (select.POLLOUT if writing else 0))
        events = self.poller.poll(int(min(wait, 3600.0) * 1000) + 1)  # inf: no deadline
        if not events:
            return "wait"
        flags = events[0][1]
        if writing and flags & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            self._send()
        if not flags & (select.POLLIN | select.POLLERR | select.POLLHUP):
            return "wait"
        try:
            chunk = self.s.recv(1 << 16)
        except BlockingIOError:
            return "wait"
        except OSError:
            return "error"
        if not chunk:
            return "eof"
        self.data += chunk
        self.last = time.monotonic()
        return "more"

    def _send(self) -> None:
        try:
            self.sent += self.s.send(self.view[self.sent:self.sent + (1 << 18)])
        except BlockingIOError:
            return
        except OSError:
            self.sent = len(self.view)  # spamc ignores a failed write and reads on
        if self.written:
            self.last = time.monotonic()  # -t counts from here
            try:
                self.s.shutdown(socket.SHUT_WR)
            except OSError:
                return


def _headers_end(data: bytearray) -> bool:
    first = data.find(b"\n")
    return first >= 0 and (data.find(b"\n\r\n", first) >= 0 or data.find(b"\n\n", first) >= 0)


def _show(address: object) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def run_check(mode: core.Mode, request: bytes, hosts: list[list[int]], wire: Wire,
              start: float) -> core.Result:
    """Drive the core's generator: each action carried out, its answer sent back."""
    steps = core.check(mode, request, hosts, start)
    limit = mode.max_size + core.EXPANSION_ALLOWANCE + 2 * core.LINE_MAX + 64
    reply: core.Reply | None = None
    try:
        while True:
            action = steps.send(reply) if reply is not None else next(steps)
            if isinstance(action, core.Connect):
                reply = wire.connect(action, start)
            elif isinstance(action, core.Sleep):
                time.sleep(action.seconds)
                reply = time.monotonic()
            else:
                reply = wire.talk(action, limit)
    except StopIteration as done:
        result: core.Result = done.value
        return result
    finally:
        wire.close()


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


def check_message(mode: core.Mode, message: bytes, wire: Wire, start: float) -> core.Result:
    end = start + mode.deadline if mode.deadline > 0 else core.INF
    hosts, flat, failed = addresses(mode, end)
    if failed:
        return core.Result(failed, "could not resolve any hosts")
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
    from spamdrill.lean import syslog

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
