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
from spamdrill.system import spamc as reader
from spamdrill.system.spamc import (
    DEFAULT_CONNECT_RETRIES,
    DEFAULT_FILTER_RETRIES,
    DEFAULT_FILTER_RETRY_SLEEP,
    DEFAULT_RETRY_SLEEP,
    DEFAULT_TIMEOUT,
    KERNEL_CONNECT_S,
    SpamcFlags,
)

__all__ = ["DEFAULT_CONNECT_RETRIES", "DEFAULT_FILTER_RETRIES", "DEFAULT_FILTER_RETRY_SLEEP",
           "DEFAULT_RETRY_SLEEP", "DEFAULT_TIMEOUT", "KERNEL_CONNECT_S", "SpamcFlags"]


def flag_number(argv: list[str], i: int, name: str, eq: str, value: str,
                what: str, where: str = "") -> tuple[float, int]:
    """The number a flag takes, from ``--flag=N`` or the next word; returns (number,
    index of the last word used)."""
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


def split_own(argv: list[str], source: str = "command line") -> tuple[list[str], float | None]:
    """spamdrill-spamc's own flags out of a command line (the rest are spamc's), and its
    ``--deadline`` (None: not given)."""
    from spamdrill.system.maildroprc import own_flags

    words, deadline = own_flags([(w, source) for w in argv], source)
    return [w for w, _ in words], deadline


def parse_args(args: list[str] | str, source: str = "command line") -> SpamcFlags:
    """spamc's flags, read as spamc 4.0.1 reads them (``spamdrill.system.spamc``):
    unknown or malformed flags are errors naming the flag. spamdrill-spamc's own flags
    (``--deadline``, ``--keep-slow``, ``--slow``) are set aside: the rest are spamc's."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    argv, _ = split_own(argv, source)
    return reader.parse([(w, source) for w in argv], defaults_source=source).flags


def connect_failures(f: SpamcFlags, refused: bool) -> tuple[int, int]:
    """(connect() calls, retry sleeps) when every connect fails, from
    ``_try_to_connect_tcp``: try ``i`` goes to host ``i % nhosts`` and calls connect()
    on each of its addresses; it sleeps after every try but the last, except after a
    refusal while untried hosts remain ("innocent")."""
    tries = f.tries
    calls = tries * f.addresses_per_try
    if f.unix_socket is not None:
        return calls, 0
    sleeps = sum(1 for i in range(tries - 1) if not (refused and i + 1 < f.tried_hosts))
    return calls, sleeps


def refused(f: SpamcFlags) -> float:
    """Every try refused at once: only the sleeps between tries (none after a refusal
    while another host of a ``-d a,b`` list is still untried)."""
    return connect_failures(f, refused=True)[1] * f.retry_sleep


def accept_queue_full(f: SpamcFlags) -> float:
    """SYNs dropped: every connect() waits the whole connect timeout."""
    calls, sleeps = connect_failures(f, refused=False)
    return calls * f.connect_wait + sleeps * f.retry_sleep


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
