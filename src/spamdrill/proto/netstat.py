"""The kernel's TCP counters (``/proc/net/netstat`` and ``/proc/net/snmp``), sans-IO.

Each file is pairs of lines: ``Prefix: Name1 Name2 ...`` then ``Prefix: v1 v2 ...``. Read in a
host's network namespace they count only that host's traffic, which is how a drill tells
a dropped SYN (``ListenOverflows``/``ListenDrops``) from one answered with a SYN cookie
(``TCPReqQFullDoCookies``) and a reset (``TcpOutRsts``), and an ICMP error sent
(``IcmpOutDestUnreachs``) from one the rate limit held back (``IcmpOutRateLimitHost``).
"""

from __future__ import annotations

# what a drill reports of spamd's host, in this order: its accept queue, its resets, and
# the ICMP errors a rejecting firewall sent or the kernel's rate limit held back
COUNTERS = ("TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPReqQFullDoCookies",
            "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv",
            "TcpOutRsts", "IcmpOutDestUnreachs", "IcmpOutRateLimitHost",
            "IcmpOutRateLimitGlobal")


def parse(text: str) -> dict[str, int]:
    """``{"TcpExtListenDrops": 12, ...}`` from the concatenated files."""
    out: dict[str, int] = {}
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if not names or names[0] != values[0] or len(names) != len(values):
            continue
        prefix = names[0].rstrip(":")
        for name, value in zip(names[1:], values[1:], strict=True):
            try:
                out[prefix + name] = int(value)
            except ValueError:
                continue
    return out


def delta(before: dict[str, int], after: dict[str, int],
          names: tuple[str, ...] = COUNTERS) -> dict[str, int]:
    """How much each named counter grew (names the kernel lacks are left out)."""
    return {n: after[n] - before.get(n, 0) for n in names if n in after}
