"""Toxics: small units that shape one direction of a proxied TCP connection, after
Toxiproxy's (``toxics/toxic.go``: one method per toxic, each holding only its own fields,
registered by name, chained per direction; ``latency.go``, ``bandwidth.go``,
``slicer.go``, ``limit_data.go``, ``timeout.go``). Sans-IO apart from the clock: a toxic
gets a chunk and a ``send`` for the next stage, and says whether the connection lives on.

A ``Shape`` is the whole proxy's state: whether it accepts at all (``enabled``; off is
Toxiproxy's disabled proxy: new connections refused) and a chain of toxics per direction
(``upstream``: client to server; ``downstream``: server to client).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Final, Literal

import msgspec

Send = Callable[[bytes], None]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]

# what a toxic tells the proxy after a chunk
Disposition = Literal["pass", "close", "reset"]
PASS: Final = "pass"
CLOSE: Final = "close"
RESET: Final = "reset"


@dataclass
class LinkState:
    """Per connection and direction: what stateful toxics remember (bytes let through so
    far, when pacing started), and the counters a drill reads as evidence."""

    sent: int = 0
    paced_from: float | None = None
    paced_bytes: int = 0
    rng: random.Random = field(default_factory=random.Random)


class Toxic(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
            tag_field="type"):
    # swallows the sender's end of stream too: the peer never learns the sender is done
    holds_eof: ClassVar[bool] = False

    def apply(self, data: bytes, link: LinkState, send: Send) -> Disposition:
        raise NotImplementedError


class Latency(Toxic, tag="latency", frozen=True):
    """Each chunk waits ``latency`` seconds, give or take up to ``jitter``; order kept, as
    on one TCP connection."""

    latency: NonNeg = 0.0
    jitter: NonNeg = 0.0

    def delay(self, rng: random.Random) -> float:
        return max(0.0, self.latency + rng.uniform(-self.jitter, self.jitter))

    def apply(self, data: bytes, link: LinkState, send: Send) -> Disposition:
        time.sleep(self.delay(link.rng))
        send(data)
        return PASS


class Bandwidth(Toxic, tag="bandwidth", frozen=True):
    """At most ``rate`` bytes per second. Paced against the clock from the first byte of a
    burst (a token bucket with no credit kept across idle time), not by sleeping after
    each piece: per-piece sleeps add up their own overshoot, and the net-slow drill's
    line sits at -t x rate, where a few percent decide scanned or not."""

    rate: Annotated[float, msgspec.Meta(gt=0)]
    piece: Annotated[int, msgspec.Meta(ge=1)] = 1024

    def apply(self, data: bytes, link: LinkState, send: Send) -> Disposition:
        now = time.monotonic()
        if link.paced_from is None or now > link.paced_from + link.paced_bytes / self.rate:
            link.paced_from, link.paced_bytes = now, 0  # idle since: start a new burst
        for i in range(0, len(data), self.piece):
            chunk = data[i:i + self.piece]
            link.paced_bytes += len(chunk)
            due = link.paced_from + link.paced_bytes / self.rate
            send(chunk)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        return PASS


class Slicer(Toxic, tag="slicer", frozen=True):
    """``size`` bytes at a time, ``interval`` seconds apart: a peer that drips."""

    size: Annotated[int, msgspec.Meta(ge=1)] = 1
    interval: NonNeg = 0.0

    def apply(self, data: bytes, link: LinkState, send: Send) -> Disposition:
        for i in range(0, len(data), self.size):
            send(data[i:i + self.size])
            time.sleep(self.interval)
        return PASS


class LimitData(Toxic, tag="limit_data", frozen=True):
    """Let ``after`` bytes through, then end the connection: cleanly (``close``) or with a
    reset (``reset``: SO_LINGER 0, so close() sends RST)."""

    after: Annotated[int, msgspec.Meta(ge=0)] = 0
    how: Literal["close", "reset"] = "close"

    def apply(self, data: bytes, link: LinkState, send: Send) -> Disposition:
        allowed = max(0, self.after - link.sent)
        if len(data) < allowed:
            link.sent += len(data)
            send(data)
            return PASS
        if allowed:
            send(data[:allowed])
        link.sent += allowed
        return RESET if self.how == "reset" else CLOSE


class Blackhole(Toxic, tag="blackhole", frozen=True):
    """Swallow everything, the end of stream included: the peer waits forever
    (Toxiproxy's ``timeout`` with 0)."""

    holds_eof: ClassVar[bool] = True

    def apply(self, data: bytes, link: LinkState, send: Send) -> Disposition:
        return PASS


AnyToxic = Latency | Bandwidth | Slicer | LimitData | Blackhole


class Shape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    upstream: tuple[AnyToxic, ...] = ()
    downstream: tuple[AnyToxic, ...] = ()

    def both(self) -> tuple[tuple[str, tuple[AnyToxic, ...]], ...]:
        return (("upstream", self.upstream), ("downstream", self.downstream))

    def describe(self) -> str:
        if not self.enabled:
            return "down (connections refused)"
        parts = [f"{way}: " + " + ".join(_describe(t) for t in chain)
                 for way, chain in self.both() if chain]
        return "; ".join(parts) or "pass"

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> Shape:
        return msgspec.json.decode(raw, type=cls)


def _describe(t: AnyToxic) -> str:
    fields = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in msgspec.structs.asdict(t).items())
    return f"{t.__struct_config__.tag}" + (f" ({fields})" if fields else "")


def run_chain(chain: tuple[AnyToxic, ...], states: list[LinkState], data: bytes,
              send: Send) -> Disposition:
    """Pass ``data`` through every toxic of ``chain`` in order, the last one sending to the
    socket; a toxic that ends the connection stops the chain."""
    outcome: list[Disposition] = [PASS]

    def stage(i: int) -> Send:
        if i == len(chain):
            return send

        def step(chunk: bytes) -> None:
            if outcome[0] == PASS:
                v = chain[i].apply(chunk, states[i], stage(i + 1))
                if v != PASS:
                    outcome[0] = v
        return step

    stage(0)(data)
    return outcome[0]


def mode_shape(mode: str, *, latency: float = 0.0, jitter: float = 0.0, rate: float = 0.0,
               slice_: int = 1, interval: float = 0.0, after: int = 0) -> Shape:
    """The one-word shapes of scenario files (``mode = "bandwidth"``, both directions)."""
    chain: tuple[AnyToxic, ...]
    if mode == "pass":
        return Shape()
    if mode == "down":
        return Shape(enabled=False)
    if mode == "latency":
        chain = (Latency(latency=latency, jitter=jitter),)
    elif mode == "bandwidth":
        chain = (Bandwidth(rate=rate),)
    elif mode == "drip":
        chain = (Slicer(size=slice_, interval=interval),)
    elif mode in ("reset", "close"):
        chain = (LimitData(after=after, how="reset" if mode == "reset" else "close"),)
    elif mode == "blackhole":
        chain = (Blackhole(),)
    else:
        raise ValueError(f"unknown proxy mode {mode!r} ({', '.join(MODES)})")
    return Shape(upstream=chain, downstream=chain)


MODES = ("pass", "latency", "bandwidth", "drip", "blackhole", "reset", "close", "down")
