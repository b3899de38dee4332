"""spamdrill-spamc's one deadline over the whole check, sans-IO: the check as a generator
of actions (connect, sleep, talk), each with its bound, every wait cut at the deadline and
no sleep or new try started that the deadline would cut. The I/O (``main``) drives it with
real sockets, the tests with a fake clock; spamc's own reading of the reply and its exit
status are ``core``'s."""

from __future__ import annotations

from spamdrill.spamc.core import (
    CONNECT_DEADLINE,
    ECONNREFUSED,
    EINTR,
    ERRNO_TEXT,
    ETIMEDOUT,
    EX_OK,
    EX_TEMPFAIL,
    INF,
    KERNEL_CONNECT_S,
    Judged,
    Mode,
    connect_status,
    judge,
)

TYPE_CHECKING = False  # not typing's: importing typing costs start-up on every message
if TYPE_CHECKING:
    from collections.abc import Generator


def wait_for(now: float, end: float, step: float) -> tuple[float, bool]:
    """How long one wait may last: its own bound ``step`` (0 = none) cut at the deadline
    ``end`` (INF = none); and whether the deadline is what bounds it."""
    left = max(0.0, end - now)
    own = step if step > 0 else INF
    return (left, True) if left < own else (own, False)


def sleep_for(now: float, end: float, seconds: float) -> float | None:
    """A retry sleep, or None when the deadline would come first (then there is no point
    sleeping: the try after it could not start)."""
    if seconds <= 0:
        return 0.0
    return seconds if now + seconds < end else None


# --- the exchange, as a generator of actions ------------------------------------------

class Connect:
    """Connect to ``address`` (an index into the I/O layer's list), waiting at most
    ``timeout``; the reply is (errno or 0, now)."""

    __slots__ = ("address", "by_deadline", "timeout")

    def __init__(self, address: int, timeout: float, by_deadline: bool) -> None:
        self.address, self.timeout, self.by_deadline = address, timeout, by_deadline


class Sleep:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Talk:
    """Write ``request``, shut the write side, read until EOF (``headers_only``: until
    the blank line) with ``idle`` seconds at most between reads once written (0 = none),
    stopping at ``end``. The reply is a Heard."""

    __slots__ = ("end", "headers_only", "idle", "request")

    def __init__(self, request: bytes, idle: float, end: float, headers_only: bool) -> None:
        self.request, self.idle, self.end, self.headers_only = request, idle, end, headers_only


class Heard:
    __slots__ = ("data", "eof", "how", "now", "sent")

    def __init__(self, data: bytes, eof: bool, how: str, sent: int, now: float) -> None:
        # how: "eof", "idle" (-t passed), "deadline", "error", "headers" (CHECK's end)
        self.data, self.eof, self.how, self.sent, self.now = data, eof, how, sent, now


Action = Connect | Sleep | Talk
Reply = tuple[int, float] | float | Heard


class Result:
    """How the check ended: ``code`` (EX_OK or a failure), the judged reply, where it
    stopped, and whether the deadline ended it."""

    __slots__ = ("code", "deadline_hit", "judged", "stopped")

    def __init__(self, code: int, stopped: str, judged: Judged | None = None,
                 deadline_hit: bool = False) -> None:
        self.code, self.stopped, self.judged, self.deadline_hit = \
            code, stopped, judged, deadline_hit


def check(mode: Mode, request: bytes, hosts: list[list[int]], start: float
          ) -> Generator[Action, Reply, Result]:
    """spamc's ``message_filter`` with ``_try_to_connect_*``, every wait inside one
    deadline. ``hosts``: for each host in order (after -H/-x), the indexes of its
    addresses (one for a UNIX socket)."""
    end = start + mode.deadline if mode.deadline > 0 else INF
    order = list(hosts)
    now = start
    tries = max(1, mode.filter_retries)
    attempt = 0
    while True:
        if attempt:
            if len(order) > 1:
                order = order[1:] + order[:1]
            pause = sleep_for(now, end, mode.filter_retry_sleep)
            if pause is None:
                return Result(EX_TEMPFAIL, "timed out at the deadline (no time for "
                              "another filter try)", deadline_hit=True)
            reply = yield Sleep(pause)
            assert isinstance(reply, float)
            now = reply
        attempt += 1
        connected = yield from _connect(mode, order, now, end)
        if isinstance(connected, Result):
            return connected
        now = connected
        heard = yield Talk(request, mode.timeout, end, mode.check_only)
        assert isinstance(heard, Heard)
        now = heard.now
        judged = judge(heard.data, heard.eof, mode, mode.max_size)
        if judged.code == EX_OK:
            return Result(EX_OK, "done", judged)
        if heard.how == "deadline":
            return Result(EX_TEMPFAIL, f"timed out at the deadline in {judged.stage}", judged,
                          True)
        if not judged.retryable or attempt >= tries:
            return Result(judged.code, f"{judged.stage}: {judged.why}", judged)


def _connect(mode: Mode, order: list[list[int]], now: float, end: float
             ) -> Generator[Action, Reply, float | Result]:
    """``_try_to_connect_tcp``: try i goes to host i % n, every address of it; a sleep
    after each failed try but the last, none after a refusal while hosts are untried.
    Returns the time it connected, or a Result (never filter-retried)."""
    tries = 1 if mode.unix_socket is not None else (mode.connect_retries or 3)
    errno = 0
    for i in range(tries):
        innocent = False
        for address in order[i % len(order)]:
            timeout, by_deadline = wait_for(now, end, mode.connect_timeout
                                            or KERNEL_CONNECT_S)
            if timeout <= 0:
                return Result(EX_TEMPFAIL, CONNECT_DEADLINE, deadline_hit=True)
            reply = yield Connect(address, timeout, by_deadline)
            assert isinstance(reply, tuple)
            errno, now = reply
            if errno == EINTR and not mode.connect_timeout:
                errno = ETIMEDOUT  # no alarm: only the kernel gives up
            if errno == 0:
                return now
            if errno == -1:  # cut by the deadline
                return Result(EX_TEMPFAIL, CONNECT_DEADLINE, deadline_hit=True)
            innocent = errno == ECONNREFUSED and i + 1 < len(order)
        if i + 1 < tries and not innocent and mode.unix_socket is None:
            pause = sleep_for(now, end, mode.retry_sleep)
            if pause is None:
                return Result(EX_TEMPFAIL, "connect to spamd timed out at the deadline "
                              "(no time for another try)",
                              deadline_hit=True)
            reply = yield Sleep(pause)
            assert isinstance(reply, float)
            now = reply
    return Result(connect_status(errno), "connect to spamd failed: "
                  + ERRNO_TEXT.get(errno, f"errno {errno}"))


# --- its worst case, from the same generator -----------------------------------------------

PEERS = ("refuse", "queue-full", "silent", "drip")


def worst_case(mode: Mode, peer: str, hosts: int = 1) -> float | None:
    """How long the check takes against ``peer`` (every host behaving alike), by running
    ``check`` on a clock that only the waits move: the budget's prediction for a drill of
    spamdrill-spamc comes from the code that runs, not from a second model of it. None:
    unbounded (a drip without --deadline)."""
    if peer not in PEERS:
        raise ValueError(f"no worst case for peer {peer!r}")
    steps = check(mode, b"", [[i] for i in range(hosts)], 0.0)
    now = 0.0
    reply: Reply | None = None
    try:
        while True:
            action = steps.send(reply) if reply is not None else next(steps)
            if isinstance(action, Sleep):
                now += action.seconds
                reply = now
            elif isinstance(action, Connect):
                if peer == "refuse":
                    reply = (ECONNREFUSED, now)
                elif peer == "queue-full":
                    now += action.timeout
                    reply = (-1 if action.by_deadline else EINTR, now)
                else:
                    reply = (0, now)
            else:
                if action.end == INF and (peer == "drip" or not action.idle):
                    return None
                wait = action.end - now if peer == "drip" else \
                    min(action.idle or INF, action.end - now)
                now += wait
                reply = Heard(b"", False, "deadline" if now >= action.end else "idle", 0,
                              now)
    except StopIteration:
        return now
