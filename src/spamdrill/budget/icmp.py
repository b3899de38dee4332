"""spamc against a firewall that rejects with ICMP port unreachable, sans-IO: a simulation
of many spamc connecting at once from one host, from the kernel's and spamc's sources.

- ICMP errors are rate-limited per destination host (``net/ipv4/icmp.c``
  ``icmpv4_xrlim_allow`` → ``net/ipv4/inetpeer.c`` ``inet_peer_xrlim_allow``): a token
  bucket of ``XRLIM_BURST_FACTOR`` (6) x ``net.ipv4.icmp_ratelimit`` (1000 ms), one
  ``icmp_ratelimit`` per ICMP: a burst of 6, then one a second. A SYN that gets none is
  simply unanswered (``IcmpOutRateLimitHost``).
- An unanswered SYN is sent again after ``TCP_TIMEOUT_INIT`` (1 s), doubling each time
  (``net/ipv4/tcp_timer.c`` ``tcp_retransmit_timer``); kernels with
  ``net.ipv4.tcp_syn_linear_timeouts`` (6.x; 4 on this machine's 6.18) first resend that
  many + 1 times at 1 s: SYNs at 0, 1, 2, 3, 4, 5, 7, 11 s (counted with an nft rule).
  ``net.ipv4.tcp_syn_retries`` (6) gives up after the exponential schedule's 127 s (this
  kernel, linear first: 11 SYNs, ETIMEDOUT after 133.3 s, measured).
- ``net/ipv4/tcp_ipv4.c`` ``tcp_v4_err``: port unreachable in SYN_SENT ends the connect
  with ECONNREFUSED, unless the socket is owned by the user at that moment, when it is only
  a soft error. That happens when the ICMP comes back inside the connect() call itself:
  with no delay between the hosts (veth pairs, as in the lab) the first ICMP of every
  connect is lost that way and the connect fails at the SYN sent again a second later
  (``soft_first``; measured: one spamc took 5.05 s, 6 ICMPs, not 2 s).
- spamc (``libspamc.c``): each of ``--connect-retries`` tries waits up to the connect
  timeout, ``--retry-sleep`` between failed tries (``spamdrill.budget.spamc``).

Simultaneous starts are the worst case; ties are served in start order.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import lru_cache

from spamdrill.budget.spamc import SpamcFlags

XRLIM_BURST_FACTOR = 6
ICMP_RATELIMIT_S = 1.0  # net.ipv4.icmp_ratelimit, 1000 ms
TCP_TIMEOUT_INIT_S = 1.0
TCP_SYN_RETRIES = 6
KERNEL_GIVES_UP_S = sum(TCP_TIMEOUT_INIT_S * 2**i for i in range(TCP_SYN_RETRIES + 1))


@dataclass(frozen=True)
class Rejected:
    ends: list[float]  # when each spamc gave up (unscanned), in order
    sent: int  # ICMPs the spamd host sent
    limited: int  # SYNs it left unanswered (IcmpOutRateLimitHost)

    @property
    def worst_s(self) -> float:
        return max(self.ends, default=0.0)


def syn_offsets(wait: float, linear: int = 0) -> list[float]:
    """When a connect sends its SYNs, from its start, within ``wait``; ``linear``:
    ``net.ipv4.tcp_syn_linear_timeouts``."""
    offsets, rto, t, sent = [], TCP_TIMEOUT_INIT_S, 0.0, 0
    while t < min(wait, KERNEL_GIVES_UP_S):
        offsets.append(t)
        sent += 1
        if sent > linear + 1:
            rto *= 2
        t += rto
    return offsets


class _Bucket:
    """The kernel's per-destination ICMP token bucket (``inet_peer_xrlim_allow``)."""

    def __init__(self, ratelimit_s: float) -> None:
        self.cost = ratelimit_s
        self.cap = XRLIM_BURST_FACTOR * ratelimit_s
        self.tokens, self.last = self.cap, 0.0
        self.sent = self.limited = 0

    def allow(self, t: float) -> bool:
        self.tokens, self.last = min(self.cap, self.tokens + (t - self.last)), t
        if self.tokens < self.cost:
            self.limited += 1
            return False
        self.tokens -= self.cost
        self.sent += 1
        return True


@dataclass
class _Clients:
    """Each spamc's connect tries as events: (time, order, client, try, SYN index; -1 =
    the try's connect timeout)."""

    n: int
    retries: int  # spamc's --connect-retries: tries per client
    retry_sleep: float
    wait: float
    offsets: list[float]
    events: list[tuple[float, int, int, int, int]] = field(default_factory=list)
    order: int = 0

    def __post_init__(self) -> None:
        self.tries, self.ends, self.done = [1] * self.n, [0.0] * self.n, [False] * self.n
        for c in range(self.n):
            self.start(c, 0.0)

    def push(self, t: float, c: int, k: int, i: int) -> None:
        heapq.heappush(self.events, (t, self.order, c, k, i))
        self.order += 1

    def start(self, c: int, t: float) -> None:
        for i, off in enumerate(self.offsets):
            self.push(t + off, c, self.tries[c], i)
        self.push(t + self.wait, c, self.tries[c], -1)

    def fail(self, c: int, t: float) -> None:
        if self.tries[c] < self.retries:
            self.tries[c] += 1
            self.start(c, t + self.retry_sleep)
        else:
            self.done[c], self.ends[c] = True, t


def simulate(n: int, f: SpamcFlags, soft_first: bool = False, syn_linear: int = 0,
             ratelimit_s: float = ICMP_RATELIMIT_S) -> Rejected:
    """``n`` spamc started together from one host, every SYN to spamd's port rejected."""
    wait = min(f.connect_wait or KERNEL_GIVES_UP_S, KERNEL_GIVES_UP_S)
    ends, sent, limited = _simulate(n, f.connect_retries, f.retry_sleep, wait, soft_first,
                                    syn_linear, ratelimit_s)
    return Rejected(list(ends), sent, limited)


@lru_cache(maxsize=512)
def _simulate(n: int, retries: int, retry_sleep: float, wait: float, soft_first: bool,
              syn_linear: int, ratelimit_s: float) -> tuple[tuple[float, ...], int, int]:
    """The simulation, on the only inputs it reads: a pure function, so remembered (the
    budget's what-ifs and its checks ask for the same burst again and again, and a burst
    of 300 is thousands of events)."""
    clients = _Clients(n, retries, retry_sleep, wait, syn_offsets(wait, syn_linear))
    bucket = _Bucket(ratelimit_s)
    while clients.events:
        t, _, c, k, i = heapq.heappop(clients.events)
        if clients.done[c] or k != clients.tries[c]:
            continue  # that try already ended
        # a try ends at its connect timeout, or at an ICMP the kernel lets through (but
        # not the first SYN's, on the lab's veth pairs: a soft error inside connect())
        if i < 0 or (bucket.allow(t) and not (soft_first and i == 0)):
            clients.fail(c, t)
    return tuple(sorted(clients.ends)), bucket.sent, bucket.limited
