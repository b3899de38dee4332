"""Who sends what (sans-IO): a flood split over workers, each worker's jobs, the rules a
worker enforces on what it is told to flood, and the records of messages that never came
back.

Messages are numbered once for the whole flood and made where they are sent: message ``i``
is ``corpus.make(kinds[i % len(kinds)], seed * 1_000_000 + i)``, as ``corpus.mix`` numbers
them, so the master can name (and size) a dead worker's messages without having sent their
bytes, and no two workers send the same message. Workers take every W-th message (round
robin), so a rate or a staircase keeps its shape in total and each worker carries an even
part of every step.

A worker builds its spamc commands itself from the target and the flags; it never runs a
command line it was sent. The master could otherwise make every worker run anything
(spamc's own ``-e`` runs a command), and a target is only what the worker's rules allow:
loopback, the lab's own hosts (198.18.0.0/15, the client host's namespace), or an address
its operator said they own (``--i-own-this-target`` on that worker).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Literal

import msgspec

from spamdrill import corpus
from spamdrill.errors import SpamdrillError
from spamdrill.history import MessageRecord
from spamdrill.load.spamc import Job
from spamdrill.system import spamc as spamc_flags
from spamdrill.vocab import Outcome

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
LAB_CLIENT_NS = re.compile(r"spamdrill-[0-9a-z]+-client[2-8]?")
MAX_PER_WORKER = 10_000  # the local load's own bound, per machine


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What every spamc of the flood talks to. ``lab``: the lab's spamd (``users`` cycled
    as ``-u``, ``netns`` the client host's namespace in the hosts topology); ``address``: a
    spamd the user named."""

    kind: Literal["lab", "address"]
    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    users: tuple[str, ...] = ()
    netns: str | None = None


class Share(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One worker's part: global message numbers and each one's release offset (seconds
    after the common release)."""

    run: str
    seed: Annotated[int, msgspec.Meta(ge=0)]
    kinds: tuple[str, ...]
    indices: tuple[int, ...]
    offsets: tuple[float, ...]
    spamc_args: tuple[str, ...]
    target: Target
    max_wait: Annotated[float, msgspec.Meta(gt=0)]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.offsets):
            raise ValueError("indices and offsets differ in length")
        if len(self.indices) > MAX_PER_WORKER:
            raise ValueError(f"more than {MAX_PER_WORKER} messages for one worker")
        if not self.kinds:
            raise ValueError("no message kinds")
        for kind in self.kinds:
            corpus.check_kind(kind)


def split(count: int, workers: int) -> list[list[int]]:
    """Message numbers per worker, round robin: worker k sends k, k+W, k+2W, ..."""
    if workers < 1:
        raise ValueError("at least one worker")
    return [list(range(k, count, workers)) for k in range(workers)]


def shares(run: str, seed: int, kinds: tuple[str, ...], offsets: list[float],
           spamc_args: tuple[str, ...], targets: list[Target], max_wait: float,
           workers: int) -> list[Share]:
    """The flood's shares; worker k talks to ``targets[k % len(targets)]`` (one target for
    a flood; one each for a pool of spamd hosts, or for the benchmark's listeners)."""
    return [Share(run, seed, kinds, tuple(idx), tuple(offsets[i] for i in idx), spamc_args,
                  targets[k % len(targets)], max_wait)
            for k, idx in enumerate(split(len(offsets), workers))]


def message(share: Share, i: int) -> corpus.Message:
    return corpus.make(share.kinds[i % len(share.kinds)], share.seed * 1_000_000 + i)


def flags_for(share: Share, i: int) -> list[str]:
    users = share.target.users
    return [*share.spamc_args, "-u", users[i % len(users)]] if users else \
        list(share.spamc_args)


def jobs(share: Share, spamc: str, wrap: Callable[[list[str]], list[str]]) -> list[Job]:
    """The worker's jobs, built as ``drills.targets`` builds the local load's."""
    t = share.target
    out = []
    for i, offset in zip(share.indices, share.offsets, strict=True):
        flags = flags_for(share, i)
        argv = wrap([spamc, "-l", "-d", t.host, "-p", str(t.port), *flags])
        out.append(Job(message(share, i), argv, flags, offset))
    return out


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_target(target: Target, owned: bool) -> None:
    """The explicit-target rule, applied by the worker that would send the load."""
    ip = _ip(target.host)
    if target.kind == "lab" and target.netns is not None:
        if not LAB_CLIENT_NS.fullmatch(target.netns):
            raise SpamdrillError(f"{target.netns!r} is not a lab's client host")
        if ip is None or ip not in LAB_NET:
            raise SpamdrillError(f"lab target {target.host} is not one of the lab's hosts "
                                 f"({LAB_NET})")
        return
    if target.host in ("localhost", "ip6-localhost") or (ip is not None and ip.is_loopback):
        return
    if not owned:
        raise SpamdrillError(f"target {target.host} is not on loopback",
                             "a worker floods only a spamd its operator owns: start it with "
                             "--i-own-this-target")


def check_flags(args: Iterable[str]) -> None:
    """spamc flags may change how spamc behaves, never where it connects (the target does
    that) nor make it run a command (``-e``): read as spamc 4.0.1 reads them."""
    words = list(args)
    if spamc_flags.config_file_of(words) is not None or "--config" in \
            [w.partition("=")[0] for w in words]:
        raise SpamdrillError("spamc flags may not name a config file (-F): it can name "
                             "another spamd", "give the flags themselves")
    parsed = spamc_flags.parse([(w, "spamc flags") for w in words])
    f = parsed.flags
    named = [flag for flag, said in (("-d", "hosts" in parsed.sources),
                                     ("-p", "port" in parsed.sources),
                                     ("-U", f.unix_socket is not None)) if said]
    if named:
        raise SpamdrillError(f"spamc flags may not choose the spamd ({', '.join(named)}): "
                             "the target does", "use --target HOST:PORT")
    if any(m.endswith(spamc_flags.MODES["e"]) for m in parsed.modes):
        raise SpamdrillError("spamc flag -e (run a command) is not allowed in a flood")


def lost(share: Share, missing: Iterable[int], worker: str, reason: str,
         release_ns: int) -> list[MessageRecord]:
    """Records for messages whose spamc never reported back: lost, with why; each starts
    at its planned release (``release_ns`` plus its offset)."""
    offsets = dict(zip(share.indices, share.offsets, strict=True))
    out = []
    for i in missing:
        msg = message(share, i)
        out.append(MessageRecord(
            id=msg.id, kind=msg.kind, size=len(msg.data),
            start_ns=release_ns + round(offsets[i] * 1e9), end_ns=None, outcome=Outcome.LOST,
            exit_code=None, reason=reason, spamc_args=flags_for(share, i), worker=worker))
    return out


def message_ids(share: Share) -> dict[str, int]:
    """Each message's id -> its number, to match the records that come back."""
    return {f"{share.kinds[i % len(share.kinds)].split(':')[0]}-"
            f"{share.seed * 1_000_000 + i}": i for i in share.indices}
