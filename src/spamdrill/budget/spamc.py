"""spamc's timing, from its source (SpamAssassin 4.0 ``spamc/libspamc.c``), sans-IO.

- ``_try_to_connect_tcp``: up to ``--connect-retries`` tries (default 3); each try's
  ``timeout_connect`` waits up to the connect timeout (``-n``, else ``-t``); between failed
  tries ``sleep(retry_sleep)`` (``--retry-sleep``, default 1), none after the last. A refused
  connection fails at once, so only the sleeps count.
- ``message_filter``'s filter loop repeats the *whole* exchange ``--filter-retries`` times
  (0 means 1) with ``sleep(filter_retry_sleep)`` (default 1) in between, but only while the
  failure is EX_IOERR from reading spamd's first line: a connect failure returns at once and
  is never filter-retried.
- ``_spamc_read_full_line`` reads one byte at a time and each ``fd_timeout_read`` is bounded
  by ``-t`` (``libspamc_timeout``): the bound is per read, so a spamd that sends a byte at
  least every ``-t`` seconds keeps spamc waiting with no limit at all.
- ``-t`` defaults to 600 s (spamc.c); 0 disables it (unbounded).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from spamdrill.errors import SpamdrillError

DEFAULT_TIMEOUT = 600
DEFAULT_CONNECT_RETRIES = 3
DEFAULT_RETRY_SLEEP = 1
DEFAULT_FILTER_RETRIES = 1
DEFAULT_FILTER_RETRY_SLEEP = 1


@dataclass(frozen=True)
class SpamcFlags:
    timeout: float = DEFAULT_TIMEOUT  # -t; 0 = none
    connect_timeout: float | None = None  # -n; None = -t
    connect_retries: int = DEFAULT_CONNECT_RETRIES
    retry_sleep: float = DEFAULT_RETRY_SLEEP
    filter_retries: int = DEFAULT_FILTER_RETRIES
    filter_retry_sleep: float = DEFAULT_FILTER_RETRY_SLEEP
    max_size: int = 500 * 1024  # -s
    safe_fallback: bool = True  # -x turns it off: failures are errors, not unscanned mail
    source: str = "spamc defaults"

    @property
    def connect_wait(self) -> float:
        return self.connect_timeout if self.connect_timeout else self.timeout

    def render(self) -> str:
        parts = [f"-t {self.timeout:g}"]
        if self.connect_timeout:
            parts.append(f"-n {self.connect_timeout:g}")
        if self.connect_retries != DEFAULT_CONNECT_RETRIES:
            parts.append(f"--connect-retries {self.connect_retries}")
        if self.retry_sleep != DEFAULT_RETRY_SLEEP:
            parts.append(f"--retry-sleep {self.retry_sleep:g}")
        if self.filter_retries != DEFAULT_FILTER_RETRIES:
            parts.append(f"--filter-retries {self.filter_retries}")
        return " ".join(parts)


_VALUE_FLAGS = {
    "-t": "timeout", "--timeout": "timeout",
    "-n": "connect_timeout", "--connect-timeout": "connect_timeout",
    "--connect-retries": "connect_retries", "--retry-sleep": "retry_sleep",
    "--filter-retries": "filter_retries", "--filter-retry-sleep": "filter_retry_sleep",
    "-s": "max_size", "--max-size": "max_size",
}
# flags that take a value we do not model (skip the value)
_OTHER_VALUE_FLAGS = {"-d", "--dest", "-p", "--port", "-u", "--username", "-F", "--config",
                      "-U", "--socket", "-H", "--randomize", "-e", "--pipe-to", "-L",
                      "--learntype", "-C", "--reporttype", "-K", "--ssl"}


def flag_number(argv: list[str], i: int, name: str, eq: str, value: str,
                what: str, where: str = "") -> tuple[float, int]:
    """The number a flag takes, from ``--flag=N`` or the next word (as spamc's and spamd's
    getopt read them); returns (number, index of the last word used)."""
    if not eq:
        i += 1
        if i >= len(argv):
            raise SpamdrillError(f"{what} flag {name} needs a value{where}")
        value = argv[i]
    try:
        return float(value), i
    except ValueError:
        raise SpamdrillError(f"{what} flag {name} {value!r} is not a number{where}") \
            from None


def parse_args(args: list[str] | str, source: str = "command line") -> SpamcFlags:
    """spamc's flags (as spamc.c's ``read_args`` reads them: ``-t 5``, ``-t5``,
    ``--timeout=5``); unknown flags are ignored, values are checked."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    values: dict[str, object] = {"source": source}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        key = _VALUE_FLAGS.get(name)
        if key is None and len(arg) > 2 and arg[:2] in _VALUE_FLAGS and not arg.startswith("--"):
            key, value, eq = _VALUE_FLAGS[arg[:2]], arg[2:], "="
        if key is not None:
            number, i = flag_number(argv, i, name, eq, value, "spamc", f" ({source})")
            if number < 0:
                raise SpamdrillError(f"spamc flag {name} must not be negative ({source})")
            values[key] = int(number) if key in ("connect_retries", "filter_retries",
                                                 "max_size") else number
        elif name in _OTHER_VALUE_FLAGS and not eq:
            i += 1
        elif arg in ("-x", "--no-safe-fallback"):
            values["safe_fallback"] = False
        i += 1
    flags = SpamcFlags(**values)  # type: ignore[arg-type]
    if flags.connect_retries < 1:
        flags = SpamcFlags(**{**flags.__dict__, "connect_retries": 1})
    if flags.filter_retries < 1:
        flags = SpamcFlags(**{**flags.__dict__, "filter_retries": 1})
    return flags


def refused(f: SpamcFlags) -> float:
    """Every try refused at once: only the sleeps between tries."""
    return (f.connect_retries - 1) * f.retry_sleep


def accept_queue_full(f: SpamcFlags) -> float | None:
    """SYNs dropped: every try waits the whole connect timeout."""
    if not f.connect_wait:
        return None
    return f.connect_retries * f.connect_wait + (f.connect_retries - 1) * f.retry_sleep


def silent(f: SpamcFlags) -> float | None:
    """Connected, no answer: -t per filter try, filter-retry sleeps between."""
    if not f.timeout:
        return None
    return f.filter_retries * f.timeout + (f.filter_retries - 1) * f.filter_retry_sleep


def slow_drip(f: SpamcFlags) -> float | None:
    """-t bounds each read, not the answer: no bound."""
    return None


KERNEL_SEND_BUFFER = 4 << 20  # net.ipv4.tcp_wmem's maximum: what send() may take at once


@dataclass(frozen=True)
class SlowLink:
    """spamc over a link of ``rate`` bytes per second each way: the worst case over the
    message sizes spamc sends (up to ``-s``), and the size above which it fails open."""

    worst_s: float | None  # None: unbounded (no -t)
    worst_scanned: bool  # the worst case is a message that was scanned
    largest_scanned: int | None  # bytes; None: every size up to -s is scanned


def slow_link(f: SpamcFlags, rate: float) -> SlowLink:
    """``full_write()`` (spamc/utils.c) has no timeout and returns once the kernel holds
    the message (up to ``KERNEL_SEND_BUFFER``), so the upload still on the link counts
    against the first read's ``-t``; the answer (the whole message back, for PROCESS)
    comes in reads that each get data, which ``-t`` does not bound. A message is scanned
    if its upload ends before ``-t``: it then takes about twice its upload. A bigger one
    fails open at ``-t`` per filter try. Scan time is not modelled: it only adds."""
    size = f.max_size
    held = min(size, KERNEL_SEND_BUFFER)
    blocked = (size - held) / rate  # send() waits for what the kernel cannot hold
    if not f.timeout or held / rate < f.timeout:
        return SlowLink(2 * size / rate, True, None)
    largest = int(f.timeout * rate)  # its upload ends just inside -t ...
    scanned_s = 2 * largest / rate  # ... and its answer takes as long again: 2 x -t
    failed_s = (f.filter_retries * (blocked + f.timeout)
                + (f.filter_retries - 1) * f.filter_retry_sleep)
    if scanned_s >= failed_s:
        return SlowLink(scanned_s, True, largest)
    return SlowLink(failed_s, False, largest)
