"""spamdrill-spamc's core, sans-IO: spamc 4.0.1's request, its reading of spamd's reply and
its exit status, plus one total deadline over the whole check.

From SpamAssassin 4.0.1's ``spamc/libspamc.c`` and ``spamc/spamc.c``:

- the verb: ``-c`` CHECK, ``-r`` REPORT_IFSPAM, ``-R`` REPORT, ``-y`` SYMBOLS, else PROCESS
  (``message_filter``); ``User:`` is ``-u`` or the effective user's name; the request is
  ``VERB SPAMC/1.5``, ``User:``, ``Content-length:``, a blank line, the message;
- the reply (``message_filter``, ``_handle_spamd_header``): a status line ``SPAMD/v code``
  (the code is not looked at), header lines of at most 8187 bytes, ``Spam: b ; s / t``
  and ``Content-length: n``; CHECK ends at the blank line, the others read the body to EOF
  and fail unless it is exactly ``Content-length`` bytes (plus the ``s/t`` line that
  REPORT writes first);
- only a failure to read the *first* line is filter-retried; a connect failure never is;
- ``main``'s exit: on success 0 (``-c``: 1 for spam; ``-E``: spamd's verdict); on failure
  the message again (or ``0/0`` for ``-c -r -R``, a blank line for ``-y``) and 0, or with
  ``-x`` nothing and the failure's sysexits code (69 -> 75 with ``-X``); a message over
  ``-s`` is passed through and exits 0.

What spamdrill-spamc adds: the deadline (``deadline``: every wait is cut at ``end``, and no
sleep or new try starts that the deadline would cut), and an empty or header-less PROCESS
"success" is a failure (spamc prints nothing and exits 0: maildrop then delivers an empty
message).
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False  # not typing's: importing typing costs start-up on every message
if TYPE_CHECKING:
    from spamdrill.system.spamc import SpamcFlags

EX_OK = 0
EX_ISSPAM = 1
EX_USAGE = 64
EX_NOHOST = 68
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_PROTOCOL = 76
EX_NOPERM = 77
EX_TOOBIG = 866  # libspamc.h: "too big", or no verdict header

LINE_MAX = 8187  # _spamc_read_full_line: buf of 8192 - 4, less the terminating NUL
EXPANSION_ALLOWANCE = 16384  # libspamc.c: how much larger than the message a reply may be
KERNEL_CONNECT_S = 127.0  # no alarm: connect() gives up after tcp_syn_retries resends

# errno values (Linux) that _translate_connect_errno names; connect() cut by spamc's alarm
# fails with EINTR, which it maps to EX_SOFTWARE
ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EACCES, EINTR = 111, 110, 101, 13, 4


ERRNO_TEXT = {ECONNREFUSED: "Connection refused", ETIMEDOUT: "Connection timed out",
              ENETUNREACH: "Network is unreachable", EACCES: "Permission denied",
              EINTR: "timed out (spamc's -n/-t alarm)", 2: "No such file or directory"}


CONNECT_DEADLINE = "connect to spamd timed out at the deadline"


def connect_status(errno: int) -> int:
    """``_translate_connect_errno``: what a failed connect makes spamc exit with."""
    if errno in (ECONNREFUSED, ETIMEDOUT, ENETUNREACH):
        return EX_UNAVAILABLE
    if errno == EACCES:
        return EX_NOPERM
    return EX_SOFTWARE


class Mode:
    """What one run does: spamc's flags as spamc 4.0.1 reads them, and the deadline."""

    def __init__(self) -> None:
        self.verb = "PROCESS"
        self.use_exit_code = False  # -E
        self.safe_fallback = True  # -x clears it
        self.unavail_tempfail = False  # -X after -x
        self.max_size = 500 * 1024  # -s
        self.user: str | None = None  # -u
        self.timeout = 600.0  # -t; 0 = none
        self.connect_timeout = 0.0  # -n (or -t); 0 = no alarm: the kernel's
        self.connect_retries = 3
        self.retry_sleep = 1.0
        self.filter_retries = 1
        self.filter_retry_sleep = 1.0
        self.hosts: tuple[str, ...] = ()  # -d; () = localhost
        self.unix_socket: str | None = None  # -U
        self.port = 783
        self.family = 0  # -4 / -6
        self.randomize = False  # -H
        self.log_to_stderr = False  # -l
        self.deadline = 0.0  # --deadline; 0 = none (as spamc)

    @property
    def check_only(self) -> bool:
        return self.verb == "CHECK"

    @property
    def reports(self) -> bool:
        return self.verb in ("REPORT", "REPORT_IFSPAM")


VERBS = {"c": "CHECK", "r": "REPORT_IFSPAM", "R": "REPORT", "y": "SYMBOLS"}
PRIORITY = ("CHECK", "REPORT_IFSPAM", "REPORT", "SYMBOLS", "PROCESS")  # message_filter's
REFUSED = {
    "L": "learning (-L) is not a check: use spamc -L",
    "C": "reporting (-C) is not a check: use spamc -C",
    "K": "-K only pings spamd: use spamc -K",
    "B": "BSMTP (-B) is not supported",
    "e": "-e (pipe the output to a command) is not supported: use it as a filter",
    "S": "SSL (-S) is not supported: run it on a trusted network or a UNIX socket (-U)",
    "ssl-cert": "SSL is not supported", "ssl-key": "SSL is not supported",
    "ssl-ca-file": "SSL is not supported", "ssl-ca-path": "SSL is not supported",
    "z": "compression (-z) is not supported",
    "2": "--headers is not supported",
}


def mode_of(options: tuple[tuple[str, str | None], ...], f: SpamcFlags) -> Mode:
    """A Mode from the spamc parser's result (``spamdrill.system.spamc``): its flags and
    the option codes in order. Raises ValueError naming a flag that makes spamc something
    other than a filter of the whole message."""
    m = Mode()
    verbs = set()
    for code, value in options:
        if code in REFUSED:
            raise ValueError(REFUSED[code])
        if code in VERBS:
            verbs.add(VERBS[code])
        elif code == "E":
            m.use_exit_code = True
        elif code == "l":
            m.log_to_stderr = True
        elif code == "u":
            m.user = value
    m.verb = next(v for v in PRIORITY if v in verbs or v == "PROCESS")
    m.timeout = float(f.timeout)
    m.connect_timeout = float(f.connect_timeout or 0)
    m.connect_retries, m.retry_sleep = int(f.connect_retries), float(f.retry_sleep)
    m.filter_retries = int(f.filter_retries)
    m.filter_retry_sleep = float(f.filter_retry_sleep)
    m.max_size = int(f.max_size)
    m.safe_fallback, m.unavail_tempfail = f.safe_fallback, f.unavail_tempfail
    m.hosts, m.unix_socket, m.port = tuple(f.hosts), f.unix_socket, int(f.port)
    m.family, m.randomize = int(f.family), f.randomize
    return m


# --- the request -------------------------------------------------------------------

def build_request(mode: Mode, user: str | None, message: bytes) -> bytes:
    """The bytes spamc writes, in its order (``message_filter``)."""
    head = f"{mode.verb} SPAMC/1.5\r\n"
    if user is not None:
        head += f"User: {user}\r\n"
    head += f"Content-length: {len(message)}\r\n\r\n"
    return head.encode("latin-1", "replace") + message


def host_order(hosts: list[list[int]], randomize: bool, safe_fallback: bool,
               rand: int) -> list[list[int]]:
    """``transport_setup``: with -H the list is rotated by ``rand % n``; with -x only
    the first is kept."""
    order = list(hosts)
    if randomize and len(order) > 1:
        k = rand % len(order)
        order = order[k:] + order[:k]
    if not safe_fallback and len(order) > 1:
        order = order[:1]
    return order


# --- the reply ----------------------------------------------------------------------

class Judged:
    """spamc's reading of what spamd sent: ``code`` EX_OK with ``out`` the bytes to
    write, or a failure code; ``stage`` says where it stopped (first-line failures alone
    are filter-retried)."""

    __slots__ = ("code", "is_spam", "out", "stage", "why")

    def __init__(self, code: int, stage: str, why: str = "", out: bytes = b"",
                 is_spam: int = EX_TOOBIG) -> None:
        self.code, self.stage, self.why, self.out, self.is_spam = code, stage, why, out, is_spam

    @property
    def retryable(self) -> bool:
        return self.code == EX_IOERR and self.stage == "first-line"

    def __repr__(self) -> str:
        return f"Judged({self.code}, {self.stage!r}, {self.why!r})"


def f32(x: float) -> float:
    """A C float: libspamc's score arithmetic is single precision."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def _strtol(text: str) -> tuple[int, str]:
    """(value, rest) as strtol(…, 10) reads a prefix (0 when there are no digits)."""
    s = text.lstrip()
    sign = 1
    body = s
    if body[:1] in "+-" and body[:1]:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    digits = 0
    for ch in body:
        if not "0" <= ch <= "9":
            break
        digits += 1
    if not digits:
        return 0, text
    return sign * int(body[:digits]), body[digits:]


def safe_float(text: str) -> float:
    """``_locale_safe_string_to_float``, in C float arithmetic."""
    ret_i, rest = _strtol(text)
    ret = f32(float(ret_i))
    if not rest.startswith("."):
        return ret
    cp = rest[1:]
    post_i, _ = _strtol(cp)
    postdot = f32(float(post_i))
    if -0.00001 <= postdot <= 0.00001:
        return ret
    divider = 10 ** len(cp)
    part = f32(postdot / f32(float(divider)))
    return f32(ret - part) if text.startswith("-") else f32(ret + part)


def _spam_header(line: str) -> tuple[str, str, str] | None:
    """``sscanf(buf, "Spam: %5s ; %20s / %20s")`` == 3."""
    if not line.startswith("Spam:"):
        return None
    rest = line[5:].lstrip()
    words = []
    for limit, sep in ((5, ";"), (20, "/"), (20, "")):
        n = 0
        while n < len(rest) and n < limit and not rest[n].isspace():
            n += 1
        if n == 0:
            return None
        words.append(rest[:n])
        rest = rest[n:].lstrip()
        if sep:
            if not rest.startswith(sep):
                return None
            rest = rest[1:].lstrip()
    return words[0], words[1], words[2]


def _content_length(line: str) -> int | None:
    """``sscanf(buf, "Content-length: %d")`` == 1."""
    if not line.startswith("Content-length:"):
        return None
    rest = line[15:].lstrip()
    value, after = _strtol(rest)
    return None if after == rest else value


def score_line(score: float, threshold: float) -> bytes:
    return b"%.1f/%.1f\n" % (score, threshold)


def judge(data: bytes, complete: bool, mode: Mode, max_size: int) -> Judged:
    """What spamc makes of ``data`` from spamd; ``complete``: spamd closed its side (EOF),
    else the reading stopped (``-t``, the deadline, an error) and only an answer that is
    already whole counts."""
    lines_at = 0
    line, lines_at, status = _line(data, lines_at)
    if line is None:
        return Judged(status, "first-line", "no status line from spamd")
    parts = line.split()
    if not parts or not parts[0].startswith("SPAMD/") or len(parts[0]) > 24 or len(parts) < 2 \
            or _strtol(parts[1])[1] == parts[1]:
        return Judged(EX_PROTOCOL, "status", f"spamd responded with bad string {line[:80]!r}")
    if safe_float(parts[0][6:]) < 1.0:
        return Judged(EX_PROTOCOL, "status", "spamd responded with a bad version")
    headers = _headers(data, lines_at)
    if isinstance(headers, Judged):
        return headers
    score, threshold, is_spam, content_length, lines_at = headers
    if mode.check_only:
        if is_spam == EX_TOOBIG:
            return Judged(EX_PROTOCOL, "headers", "no Spam: header in CHECK's answer")
        return Judged(EX_OK, "done", out=score_line(score, threshold), is_spam=is_spam)
    return _body(data[lines_at:], complete, mode, max_size, content_length, is_spam,
                 score_line(score, threshold))


def _headers(data: bytes, at: int) -> Judged | tuple[float, float, int, int, int]:
    """The header lines up to the blank one: (score, threshold, is_spam, Content-length,
    the body's offset), or the failure."""
    score = threshold = 0.0
    is_spam = EX_TOOBIG
    content_length = -1
    while True:
        line, at, status = _line(data, at)
        if line is None:
            return Judged(status, "headers", "spamd's headers ended early")
        if line == "":
            return score, threshold, is_spam, content_length, at
        spam = _spam_header(line)
        if spam is not None:
            score = max(-1e10, min(1e10, safe_float(spam[1][:19])))
            threshold = max(-1e10, min(1e10, safe_float(spam[2][:19])))
            is_spam = EX_ISSPAM if spam[0].lower() == "true" else EX_OK
            continue
        length = _content_length(line)
        if length is not None:
            if length < 0:
                return Judged(EX_PROTOCOL, "headers", "spamd sent a negative Content-length")
            content_length = length


def _body(body: bytes, complete: bool, mode: Mode, max_size: int, content_length: int,
          is_spam: int, line: bytes) -> Judged:
    if content_length < 0:
        return Judged(EX_PROTOCOL, "headers", "no Content-length from spamd")
    prefix = line if (mode.verb == "REPORT" or (mode.verb == "REPORT_IFSPAM"
                                                and is_spam == EX_ISSPAM)) else b""
    if len(prefix) + len(body) > max_size + EXPANSION_ALLOWANCE:
        return Judged(EX_TOOBIG, "body", "spamd's answer is larger than spamc takes")
    if len(body) != content_length:
        return Judged(EX_PROTOCOL if complete or len(body) > content_length else EX_IOERR,
                      "body", f"failed sanity check, {content_length} bytes claimed, "
                      f"{len(body)} bytes seen")
    if mode.verb == "PROCESS":
        if not body:
            return Judged(EX_PROTOCOL, "body", "spamd answered success with an empty message")
        if is_spam == EX_TOOBIG:
            return Judged(EX_PROTOCOL, "body", "spamd's answer has no Spam: header")
    return Judged(EX_OK, "done", out=prefix + body, is_spam=is_spam)


def _line(data: bytes, at: int) -> tuple[str | None, int, int]:
    """The line at ``at`` without its CR LF, the next line's offset, and the failure
    code when there is no whole line (EX_TOOBIG for an over-long one, as spamc)."""
    end = data.find(b"\n", at, at + LINE_MAX + 1)
    if end < 0:
        return None, at, EX_TOOBIG if len(data) - at > LINE_MAX else EX_IOERR
    raw = data[at:end]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    nul = raw.find(b"\0")  # C string: a NUL ends the line's text
    return (raw if nul < 0 else raw[:nul]).decode("latin-1"), end + 1, EX_OK


# --- the outcome --------------------------------------------------------------------

def finish(mode: Mode, message: bytes, code: int, judged: Judged | None) -> tuple[bytes, int]:
    """(stdout, exit status) as spamc.c's ``main`` ends: ``code`` EX_OK with ``judged``
    a success, or a failure code (EX_TOOBIG for a message over ``-s``)."""
    if code == EX_OK and judged is not None and judged.code == EX_OK:
        if mode.check_only:
            return judged.out, judged.is_spam
        if mode.use_exit_code and judged.is_spam != EX_TOOBIG:
            return judged.out, judged.is_spam
        return judged.out, EX_OK
    if mode.check_only or mode.reports:
        out = b"0/0\n"
    elif mode.verb == "SYMBOLS":
        out = b"\n"
    else:
        out = message if (mode.safe_fallback or code == EX_TOOBIG) else b""
    if code == EX_TOOBIG or mode.safe_fallback:
        return out, EX_OK
    if mode.unavail_tempfail and code == EX_UNAVAILABLE:
        return out, EX_TEMPFAIL
    return out, code


INF = float("inf")  # no deadline
