"""Each failure mode's worst case taken apart into the steps spamc waits through, sans-IO:
connect tries, retry sleeps, read waits, spamd's scan (or its wait on the database or
DNS), the link. The steps are built from the same functions the model adds up
(``spamdrill.budget.spamc``, ``model.evaluate``), in the order ``libspamc.c`` takes them:
``_try_to_connect_tcp`` tries, sleeping between tries; ``message_filter`` repeats the
exchange ``--filter-retries`` times, sleeping between; each read is bounded by ``-t``.
Their sum is the mode's ``spamc_s``; a term of the model the steps do not know shows as
a step of its own ("not broken down"), never silently. Where spamdrill-spamc's
``--deadline`` ends the check first, spamc's own steps are cut there and a last step of
its own says so (its start-up and exit, the model's margin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from spamdrill.budget import spamc as spamc_model
from spamdrill.budget.model import ModeResult, Setup, evaluate
from spamdrill.budget.spamc import SpamcFlags

TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class Step:
    label: str
    kind: str  # connect | sleep | read | scan | dns | link | other
    seconds: float
    unbounded: bool = False


def _tries(f: SpamcFlags, each_s: float, sleeps: int, what: str) -> list[Step]:
    """``f.tries`` connect tries of ``each_s``; the ``sleeps`` retry sleeps come after the
    last tries but one (a refusal while another -d host is untried sleeps not)."""
    steps: list[Step] = []
    first_sleep = f.tries - 1 - sleeps
    for i in range(f.tries):
        steps.append(Step(f"connect try {i + 1}: {what}", "connect", each_s))
        if first_sleep <= i < f.tries - 1:
            steps.append(Step(f"--retry-sleep {f.retry_sleep:g}", "sleep", f.retry_sleep))
    return steps


def _reads(f: SpamcFlags, what: str) -> list[Step]:
    """Connected, no answer within -t: each filter try's read waits -t."""
    steps: list[Step] = []
    for i in range(f.filter_retries):
        steps.append(Step(f"read {i + 1}: {what}, -t {f.timeout:g}", "read", f.timeout))
        if i < f.filter_retries - 1:
            steps.append(Step(f"--filter-retry-sleep {f.filter_retry_sleep:g}", "sleep",
                              f.filter_retry_sleep))
    return steps


def _answered(r: ModeResult) -> bool:
    return r.spamd_s is not None and r.spamc_s == r.spamd_s


SPAMD_WAITS = {"db-unreachable": ("scan", "spamd waits on the database's TCP connects"),
               "db-locked": ("scan", "spamd's queries wait on the lock"),
               "dns-dead": ("dns", "spamd waits on DNS"),
               "dns-db-servfail": ("dns", "spamd re-asks DNS for the database's name"),
               "spamd-overloaded": ("scan", "queued for a free child")}


def _connect_steps(f: SpamcFlags, mode: str, r: ModeResult) -> list[Step] | None:
    if mode == "spamd-refused":
        return _tries(f, 0.0, spamc_model.connect_failures(f, True)[1], "refused at once")
    if mode == "spamd-accept-queue-full":
        sleeps = spamc_model.connect_failures(f, False)[1]
        return _tries(f, f.addresses_per_try * f.connect_wait, sleeps,
                      f"SYN dropped, {f.addresses_per_try} x {f.connect_wait:g} s")
    if mode == "spamd-rejected" and r.spamc_s is not None:
        sleeps = spamc_model.connect_failures(f, False)[1]
        return [Step("connect tries: ICMP rate-limited, the rest wait out the connect "
                     "timeout", "connect", r.spamc_s - sleeps * f.retry_sleep),
                Step(f"{sleeps} x --retry-sleep {f.retry_sleep:g}", "sleep",
                     sleeps * f.retry_sleep)]
    return None


def _link_steps(s: Setup, f: SpamcFlags) -> list[Step]:
    link = spamc_model.slow_link(f, s.link_rate or 1.0)
    if not link.worst_scanned:
        return _reads(f, "the upload still on the link")
    size = link.largest_scanned if link.largest_scanned is not None else f.max_size
    up = size / (s.link_rate or 1.0)
    return [Step(f"upload {size} bytes", "link", up),
            Step(f"answer {size} bytes back", "link", (link.worst_s or 0.0) - up)]


def _steps(s: Setup, r: ModeResult) -> list[Step]:
    f = s.spamc
    connect = _connect_steps(f, r.mode, r)
    if connect is not None:
        return connect
    if r.spamc_s is None:
        return [Step("-t bounds each read, not the answer: no bound", "read", 0.0, True)]
    if r.mode == "net-slow":
        return _link_steps(s, f)
    kind, what = SPAMD_WAITS.get(r.mode, ("scan", "spamd"))
    if _answered(r):
        return [Step(f"{what}, then answers", kind, r.spamd_s or 0.0)]
    if r.mode == "dns-dead" and s.spamd_names_by_dns and r.spamd_s is None:
        return [Step("spamc looks up spamd's name(s); none answers", "dns", r.spamc_s)]
    return _reads(f, what if r.mode in SPAMD_WAITS else "spamd silent")


def breakdown(s: Setup, r: ModeResult) -> list[Step]:
    """The steps of one mode's spamc worst case (``model.evaluate``'s row ``r``)."""
    d = s.spamc_deadline
    if d is not None:
        free = replace(s, spamc_deadline=None)  # spamc's flags alone
        own = next((x for x in evaluate(free) if x.mode == r.mode), None)
        if own is not None and (own.spamc_s is None or own.spamc_s > d) \
                and r.spamc_s is not None:
            return _cut(breakdown(free, own), d, r.spamc_s)
    steps = _steps(s, r)
    if r.spamc_s is not None and not any(x.unbounded for x in steps):
        rest = r.spamc_s - sum(x.seconds for x in steps)
        if abs(rest) > TOLERANCE_S and math.isfinite(rest):
            steps.append(Step("not broken down (see the mode's why)", "other", rest))
    return steps


def _cut(steps: list[Step], deadline: float, total: float) -> list[Step]:
    """spamc's steps up to spamdrill-spamc's deadline (the one it is in, cut short), then
    the check's end: its start-up and exit, up to the model's ``total``."""
    out: list[Step] = []
    at = 0.0
    for x in steps:
        if x.unbounded or at + x.seconds > deadline:
            out.append(Step(f"{x.label}: cut at the deadline", x.kind, deadline - at))
            at = deadline
            break
        out.append(x)
        at += x.seconds
    out.append(Step(f"spamdrill-spamc --deadline {deadline:g} ends the check "
                    "(+ start-up and exit)", "deadline", total - at))
    return out
