"""End to end: messages go over SMTP into the lab's own Postfix, whose pipe(8) runs each
wrapper under test, which runs maildrop, which runs spamc; what became of every message is
read back from the real system once the queue drains (``spamdrill.lab.outcomes``). This is
where a transient failure becomes a deferral, a bounce or a loss, and the real Postfix
decides which.

Each wrapper gets its own pipe(8) transport and recipient domain in the one Postfix, so the
wrappers run side by side on the same fault; ``spamdrill-deliver`` is always among them.
Wrappers named in a scenario are the field report's versions shipped with spamdrill
(``drills/wrappers/``); ``spamdrill run --wrapper PATH`` adds the postmaster's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import math
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from spamdrill import corpus
from spamdrill.checks.delivery import SENDER_GOT
from spamdrill.drills.control import ClientSide
from spamdrill.drills.targets import LoadPlan, Started, Tick, new_seed
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.fates import Injected, MessageFate
from spamdrill.history import MessageRecord
from spamdrill.lab import outcomes, postfix, wrappers
from spamdrill.lab.state import LabState
from spamdrill.load import smtp
from spamdrill.proto import spamd_log
from spamdrill.proto.postfix_log import Delivery
from spamdrill.vocab import Fate, Outcome

DELIVER = "spamdrill-deliver"
SETTLED_POLL_S = 0.2
SENDER_RETRY_S = 2.0  # a refused sender's retries, its queue's backoff compressed


def shipped_wrappers() -> Path:
    return Path(str(resources.files("spamdrill.drills") / "wrappers"))


def wrapper_source(name: str) -> Path:
    """A shipped wrapper by its file name, or a path the postmaster gave."""
    shipped = shipped_wrappers() / name
    if "/" not in name and shipped.is_file():
        return shipped
    path = Path(name)
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in shipped_wrappers().iterdir()))
        raise SpamdrillError(f"wrapper {name!r} is neither shipped nor a file",
                             f"shipped: {known}; or give a path")
    return path


class PostfixTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                    tag_field="kind", tag="postfix"):
    """The lab's Postfix (root). ``wrappers``: what runs maildrop, side by side
    (``spamdrill-deliver`` is always one of them); ``deliver_flags``: spamdrill-deliver's
    own flags (``--over-quota=bounce``); ``to``: the recipients' local parts (the lab's
    users unless given); ``maildrop``: ``filter`` (the lab's maildroprc, ``maildrop
    FILTER USER``) or ``lookup`` (``maildrop -d USER`` as production runs it: maildrop
    looks the user up in the machine's passwd, where the lab creates no one, so this is
    for unknown-user drills); ``settle``: production seconds to wait, once the fault is
    healed, for Postfix to deliver what it deferred. ``milter``: Postfix's smtpd hands
    every message to the lab's rspamd through its proxy worker in milter mode before it
    queues it (``smtpd_milters``, with the lab config's ``[rspamd]
    milter_default_action``); pair it with ``[lab.maildrop] client = "none"``, so the
    milter alone scans. A message refused with a 4xx is what a sender keeps and tries
    again (RFC 5321, 4.2.5): once the fault is healed and the milter answers, each is
    sent again until accepted (``SENDER_RETRY_S`` apart, within ``settle``), and its
    record keeps the first refusal. ``client_addr``: each message is sent as if from this
    IPv4 address (Postfix's XCLIENT, allowed to the lab's own address only), so rspamd
    sees an outside client where the lab's loopback is a local one."""

    wrappers: tuple[str, ...] = (DELIVER,)
    deliver_flags: tuple[str, ...] = ()
    to: tuple[Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")], ...] = ()
    maildrop: Literal["filter", "lookup"] = "filter"
    settle: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    milter: bool = False
    client_addr: str = ""
    needs_lab: bool = True

    def __post_init__(self) -> None:
        for name in self.wrappers:
            if name != DELIVER:
                try:
                    wrapper_source(name)
                except SpamdrillError as exc:
                    raise ValueError(exc.one_line()) from None
        if self.client_addr:
            try:
                ipaddress.IPv4Address(self.client_addr)
            except ValueError:
                raise ValueError(f"client_addr: {self.client_addr!r} is not an IPv4 "
                                 "address") from None
        for flag in self.deliver_flags:
            if not flag.startswith("--") or "=" not in flag or any(c.isspace() for c in flag):
                raise ValueError(f"deliver_flags: {flag!r} is not --option=value")

    def prepare(self, plan: LoadPlan, scale: Scale, lab: ClientSide | None) -> SmtpLoad:
        if lab is None:
            raise SpamdrillError("the postfix target needs a lab")
        return SmtpLoad(lab.state, plan, self, scale.seconds(self.settle))


def _transports(state: LabState, target: PostfixTarget, extra: tuple[Path, ...],
                ) -> list[postfix.Transport]:
    """One transport per wrapper, each with its own recipient domain."""
    run = Path(state.run_dir)
    filt = postfix.grant_mail(state.layout)
    lookup = target.maildrop == "lookup"
    out = []
    names = [*target.wrappers, *(str(p) for p in extra)]
    if DELIVER not in names:
        names.insert(0, DELIVER)
    for i, name in enumerate(dict.fromkeys(names)):
        label = f"w{i}"
        domain = f"{label}.lab.test"
        if name == DELIVER:
            d = wrappers.install_deliver(run)
            out.append(postfix.maildrop_transport(filt, name=label, domain=domain, wrapper=(
                str(d.launcher), "--recipient=${recipient}", "--sender=${sender}",
                "--queue-id=${queue_id}", *target.deliver_flags, "--"), lookup=lookup))
        else:
            path = wrappers.install_wrapper(run, wrapper_source(name))
            out.append(postfix.maildrop_transport(filt, name=label, domain=domain,
                                                  wrapper=(str(path),), lookup=lookup))
    return out


def _case(t: postfix.Transport) -> str:
    """A transport's wrapper, as the report names it."""
    first = Path(t.argv[0]).name
    return DELIVER if first.startswith(DELIVER) else first


@dataclass
class SmtpLoad:
    """The plan's messages into the lab's Postfix, each transport getting all of them."""

    state: LabState
    plan: LoadPlan
    target: PostfixTarget
    settle_s: float
    sent: list[Injected] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # corpus id -> kind
    cases: dict[str, str] = field(default_factory=dict)  # corpus id -> wrapper
    ps: postfix.State | None = None
    jobs: dict[str, smtp.Job] = field(default_factory=dict)  # corpus id -> its job
    first_refusal: dict[str, str] = field(default_factory=dict)  # id -> a 4xx, retried
    refusals: dict[str, int] = field(default_factory=dict)  # id -> the 4xx it got

    def run(self, workdir: Path, started: Started, progress: Tick) -> None:
        transports = _transports(self.state, self.target, self.plan.wrappers)
        milter, action, content = self._milter()
        self.ps = postfix.up(Path(self.state.run_dir), postfix.Settings(
            transports=tuple(transports), recipients=self._recipients(), milter=milter,
            milter_default_action=action, milter_content_timeout=content,
            xclient=bool(self.target.client_addr)),
            marker=self.state.marker)
        self.sent = self._inject(self._jobs(transports), started)
        accepted = [s for s in self.sent if s.queue_id]
        self._wait_settled(len(accepted), progress)

    def _milter(self) -> tuple[str, str, int]:
        """main.cf's milter, its default action and content timeout (whole seconds, 0:
        Postfix's): the lab's rspamd proxy, when the target asks ("" for none)."""
        if not self.target.milter:
            return "", "tempfail", 0
        ref = self.state.rspamd
        if ref is None:
            raise SpamdrillError("the postfix target's milter needs the lab's rspamd",
                                 "set [lab.rspamd] enabled = true in the scenario")
        return (f"inet:{ref.proxy.host}:{ref.proxy.port}", ref.milter_default_action,
                math.ceil(ref.milter_content_timeout))

    def _recipients(self) -> tuple[str, ...]:
        """The local parts this drill sends to: the only ones its Postfix accepts."""
        return tuple(self.target.to or self.state.users)

    def _jobs(self, transports: list[postfix.Transport]) -> list[tuple[float, smtp.Job]]:
        """Each transport gets the plan's messages, each at its release offset."""
        users, seed, jobs = list(self._recipients()), new_seed(), []
        for t in transports:
            for i in range(self.plan.count):
                to = f"{users[i % len(users)]}@{t.domain}"
                m = corpus.make(self.plan.kinds[i % len(self.plan.kinds)], seed, to=to)
                seed += 1
                self.kinds[m.id], self.cases[m.id] = m.kind, _case(t)
                self.jobs[m.id] = smtp.Job(m, to, client_addr=self.target.client_addr)
                jobs.append((self.plan.offsets[i], self.jobs[m.id]))
        return jobs

    def _inject(self, jobs: list[tuple[float, smtp.Job]], started: Started,
                ) -> list[Injected]:
        """All at once through one barrier, or wave by wave at their offsets, open loop
        (the first wave's release is the nemesis' clock)."""
        assert self.ps is not None
        waves: dict[float, list[smtp.Job]] = {}
        for offset, job in jobs:
            waves.setdefault(offset, []).append(job)
        return smtp.inject_waves(self.ps.address, self.ps.port, list(waves.items()),
                                 started=started)

    def _wait_settled(self, accepted: int, progress: Tick) -> None:
        """Until Postfix has given every message a first verdict: nothing in its incoming
        or active queue (only deferred mail, waiting for its retry), bounded by the plan's
        ``max_wait``."""
        assert self.ps is not None
        deadline = time.monotonic() + self.plan.max_wait
        while time.monotonic() < deadline:
            queue = postfix.wait_queue(self.ps.paths, lambda q: True, 30, "queue")
            busy = [e for e in queue if e.queue_name != "deferred"]
            progress(accepted - len(busy), accepted)
            if not busy:
                return
            time.sleep(SETTLED_POLL_S)

    def records(self) -> list[MessageRecord]:
        """The fault is healed: Postfix retries what it deferred, the queue drains (or
        ``settle`` runs out), and each message's fate is read from the real system."""
        if self.ps is None:
            return []
        deadline = time.monotonic() + self.settle_s
        self._sender_retries(deadline)
        postfix.flush(self.ps.paths)
        with contextlib.suppress(SpamdrillError):  # still queued: deferred, saying why
            postfix.wait_drained(self.ps.paths, self.settle_s)
        found = outcomes.read(Path(self.state.run_dir), self.state.layout.mail_dir, self.sent)
        said = spamd_log.verdicts_by_message_id(self._spamd_finished(deadline))
        return [self._record(s, o, said.get(s.message_id or "", ""))
                for s, o in zip(self.sent, found, strict=True)]

    def _sender_retries(self, deadline: float) -> None:
        """Each message refused with a 4xx, sent again as its sender would, once the
        milter answers again, every ``SENDER_RETRY_S`` until accepted or ``deadline`` (a
        sending MTA's queue, its backoff compressed); the last attempt replaces it in
        ``sent``, with the first attempt's start, ``first_refusal`` keeps what the sender
        got first and ``refusals`` how many 4xx it got."""
        assert self.ps is not None
        ref = self.state.rspamd
        waited = False
        while True:
            refused = [i for i, s in enumerate(self.sent) if s.queue_id is None
                       and s.reply.startswith("4") and s.id in self.jobs]
            if not refused or time.monotonic() >= deadline:
                return
            if self.target.milter and ref is not None and not waited:
                from spamdrill.lab.rspamd import milter_negotiates

                while not milter_negotiates(ref.proxy.host, ref.proxy.port) \
                        and time.monotonic() < deadline:
                    time.sleep(SETTLED_POLL_S)
                waited = True
            elif self.refusals:
                time.sleep(SENDER_RETRY_S)
            again, _ = smtp.inject(self.ps.address, self.ps.port,
                                   [self.jobs[self.sent[i].id] for i in refused])
            for i, new in zip(refused, again, strict=True):
                old = self.sent[i]
                self.first_refusal.setdefault(old.id, old.reply)
                self.refusals[old.id] = self.refusals.get(old.id, 0) + 1
                self.sent[i] = dataclasses.replace(new, start_ns=old.start_ns)

    def _spamd_finished(self, deadline: float) -> str:
        """spamd's log once it has logged a verdict on every message it began (a scan
        spamc gave up on goes on, and its verdict is the join's evidence), or at the
        ``settle`` deadline."""
        ours = {s.message_id for s in self.sent if s.message_id}
        while True:
            try:
                text = self.state.layout.spamd_log.read_text(errors="replace")
            except OSError:
                return ""
            if not spamd_log.unfinished(text) & ours or time.monotonic() >= deadline:
                return text
            time.sleep(SETTLED_POLL_S)

    def _record(self, s: Injected, o: MessageFate, spamd: str) -> MessageRecord:
        word = _OUTCOME[o.fate] if o.fate is not None else \
            Outcome.DEFERRED if s.reply.startswith("4") else Outcome.ERROR
        if o.fate == Fate.DELIVERED and ".Spam" in o.folders:
            word = Outcome.SPAM
        first = self.first_refusal.get(s.id)
        reason = f"{SENDER_GOT}{first}; sent again: {o.reason}" if first else o.reason
        seconds = o.seconds
        end = s.start_ns + int(seconds * 1e9) if seconds is not None else s.end_ns or None
        last = o.log[-1] if o.log else None
        return MessageRecord(
            id=s.id, kind=self.kinds.get(s.id, ""), size=len(s.data), start_ns=s.start_ns,
            end_ns=None if o.fate == Fate.LOST else end, outcome=word, exit_code=None,
            reason=reason, spamc_args=list(self.plan.spamc_args), case=self.cases[s.id],
            peer="postfix", fate=o.fate,
            dsn=o.dsn_status or (last.dsn if last else "") or _enhanced(s.reply),
            deferrals=sum(1 for d in o.log if d.status == "deferred")
            + self.refusals.get(s.id, 0) + (o.fate is None and s.reply.startswith("4")),
            intact=o.intact,
            queue_id=s.queue_id or "", spamd=spamd, delays=_delays(last),
            message_id=s.message_id or "")

    def notes(self) -> list[str]:
        return []

    def close(self) -> None:
        postfix.down(Path(self.state.run_dir))


_ENHANCED = re.compile(r"^[245][0-9]{2}[ -]([245]\.[0-9]{1,3}\.[0-9]{1,3})\b")


def _enhanced(reply: str) -> str:
    """The enhanced status code (RFC 3463) of an SMTP reply, "4.7.1"; "" without one."""
    m = _ENHANCED.match(reply)
    return m[1] if m else ""


def _delays(d: Delivery | None) -> str:
    if d is None or d.delays is None:
        return ""
    x = d.delays
    return f"{x.before_qmgr:g}/{x.in_qmgr:g}/{x.connect:g}/{x.transmission:g}"


# the outcome word (vocab.Outcome) of a message Postfix judged
_OUTCOME = {Fate.DELIVERED: Outcome.HAM, Fate.DELIVERED_UNSCANNED: Outcome.UNSCANNED,
            Fate.DEFERRED: Outcome.DEFERRED, Fate.BOUNCED: Outcome.BOUNCED, Fate.LOST: Outcome.LOST,
            Fate.DUPLICATED: Outcome.DUPLICATED}
