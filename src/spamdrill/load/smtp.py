"""Inject messages into Postfix over SMTP, released together.

Each message has its own connection (Python's smtplib, one thread each): greeting, EHLO,
MAIL FROM, RCPT TO and DATA are done first, up to Postfix's ``354``; then every
connection waits at one barrier, and on release sends its message and the final ``.``,
the moment Postfix takes responsibility for it. So "N at once" means N messages queued
within milliseconds, as the spamc load's stdin barrier does for spamc.

smtplib's ``SMTP.data()`` would send DATA and the message in one call, leaving no place
for the barrier; so DATA goes by ``docmd`` and the message by ``send``, framed here as
``data()`` frames it (CRLF line ends, leading dots doubled, ``CRLF.CRLF``).

Every connection needs an smtpd process of its own while it waits: keep a burst within
the instance's process limit (``postfix.Settings.process_limit``).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from spamdrill.corpus import Message
from spamdrill.fates import Injected
from spamdrill.lab.postfix import SENDER
from spamdrill.proto.mailfile import message_id

_QUEUED = re.compile(r"queued as (?P<qid>[0-9A-Za-z]+)")
_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Job:
    message: Message
    recipient: str
    sender: str = SENDER
    # as if sent from this address (Postfix's XCLIENT, allowed to the lab's own address
    # only): a milter sees it as the client's, where the lab's loopback is a local one
    client_addr: str = ""


def frame(data: bytes) -> bytes:
    """The DATA section on the wire: CRLF line ends, dot-stuffed, ending ``CRLF.CRLF``."""
    text = _EOL.sub(b"\r\n", data)
    text = re.sub(rb"(?m)^\.", b"..", text)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text + b".\r\n"


def queue_id(reply: str) -> str | None:
    """The queue id in Postfix's reply to the final dot."""
    m = _QUEUED.search(reply)
    return m["qid"] if m else None


class _Flight:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.smtp: smtplib.SMTP | None = None
        self.reply = ""
        self.start_ns = 0
        self.end_ns = 0

    def prepare(self, host: str, port: int, timeout: float) -> None:
        """Everything up to the 354 that invites the message. A refusal on the way (a
        milter's tempfail at connect, MAIL or RCPT) is the sender's attempt: its times are
        those of the session up to the refusal."""
        begin = time.monotonic_ns()
        try:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
            self.smtp = smtp
            code, msg = smtp.ehlo("inject.lab.test")
            if code != 250:  # a 4xx here (a milter's tempfail) is what a sender defers on
                raise smtplib.SMTPHeloError(code, msg)
            if self.job.client_addr:  # Postfix greets again (220): a new session, EHLO
                code, msg = smtp.docmd("XCLIENT", f"ADDR={self.job.client_addr}")
                if code != 220:
                    raise smtplib.SMTPResponseException(code, msg)
                code, msg = smtp.ehlo("inject.lab.test")
                if code != 250:
                    raise smtplib.SMTPHeloError(code, msg)
            code, msg = smtp.mail(self.job.sender)
            if code != 250:  # smtplib's mail() returns a refusal; it does not raise one
                raise smtplib.SMTPSenderRefused(code, msg, self.job.sender)
            code, msg = smtp.rcpt(self.job.recipient)
            if code != 250:
                raise smtplib.SMTPRecipientsRefused({self.job.recipient: (code, msg)})
            code, msg = smtp.docmd("DATA")
            if code != 354:
                raise smtplib.SMTPDataError(code, msg)
        except (OSError, smtplib.SMTPException) as exc:
            self.reply = _describe(exc)
            self.start_ns, self.end_ns = begin, time.monotonic_ns()
            self.close()

    def release(self) -> None:
        if self.smtp is None:
            return
        self.start_ns = time.monotonic_ns()
        try:
            self.smtp.send(frame(self.job.message.data))
            code, msg = self.smtp.getreply()
            self.end_ns = time.monotonic_ns()
            self.reply = f"{code} {msg.decode(errors='replace')}"
            self.smtp.quit()
        except (OSError, smtplib.SMTPException) as exc:
            self.reply = self.reply or _describe(exc)
        finally:
            self.close()

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.close()
            finally:
                self.smtp = None

    def result(self) -> Injected:
        accepted = self.reply.startswith("250")
        data = self.job.message.data
        return Injected(
            id=self.job.message.id, message_id=message_id(data),
            recipient=self.job.recipient, data=data,
            queue_id=queue_id(self.reply) if accepted else None, reply=self.reply,
            start_ns=self.start_ns, end_ns=self.end_ns)


def _text(msg: bytes | str) -> str:
    return msg.decode(errors="replace") if isinstance(msg, bytes) else msg


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        (code, msg), = exc.recipients.values()
        return f"{code} {_text(msg)}"
    return f"{type(exc).__name__}: {exc}"


def inject(host: str, port: int, jobs: list[Job], *, timeout: float = 60.0,
           started: Callable[[float], None] = lambda t0: None,
           ) -> tuple[list[Injected], int]:
    """Send every job on its own connection, all released together; returns each
    message's result (in job order) and the release time (``time.monotonic_ns``).
    ``started`` hears the release's monotonic time, before any connection goes on (a
    nemesis runs its schedule on that clock).

    A connection that fails before the barrier does not hold the others back: its result
    keeps the error, and it has no queue id."""
    flights = [_Flight(j) for j in jobs]
    barrier = threading.Barrier(len(flights) + 1, action=lambda: started(time.monotonic()))

    def fly(f: _Flight) -> None:
        f.prepare(host, port, timeout)
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            f.reply = f.reply or "not released: the barrier broke (another connection hung)"
            f.close()
            return
        f.release()

    threads = [threading.Thread(target=fly, args=(f,), name=f"smtp-{i}", daemon=True)
               for i, f in enumerate(flights)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # each flight records why
        barrier.wait(timeout + 5)
    released = time.monotonic_ns()
    for t in threads:
        t.join(timeout + 5)
    for f in flights:
        f.close()
    return [f.result() for f in flights], released


def inject_waves(host: str, port: int, waves: list[tuple[float, list[Job]]], *,
                 timeout: float = 60.0, started: Callable[[float], None] = lambda t0: None,
                 ) -> list[Injected]:
    """Each wave released at its offset (seconds) from the first wave's release, whatever
    the earlier waves are still waiting for: an open-loop schedule. Behind a milter the
    server answers a message only after its scan, so waiting for one wave before sending
    the next would slow the load to the server's pace (coordinated omission) and a "rate"
    would not be one. ``started`` hears the first wave's release (the nemesis' clock), or,
    if that wave never got released (its barrier broke), the moment it gave up. Results in
    wave order, each wave's in job order."""
    order = sorted(waves, key=lambda w: w[0])
    results: list[list[Injected]] = [[] for _ in order]
    failed: list[BaseException] = []  # raised in a wave's thread: raised here after all
    t0: list[float] = []
    clock = threading.Event()

    def first(t: float) -> None:
        t0.append(t)
        started(t)
        clock.set()

    def send(i: int) -> None:
        try:
            results[i], _ = inject(host, port, order[i][1], timeout=timeout,
                                   started=first if i == 0 else lambda t: None)
        except BaseException as exc:  # handed to the caller's thread, raised there
            failed.append(exc)
        finally:
            if i == 0 and not clock.is_set():
                first(time.monotonic())

    threads = [threading.Thread(target=send, args=(0,), name="wave-0", daemon=True)]
    threads[0].start()
    clock.wait()
    for i in range(1, len(order)):
        time.sleep(max(0.0, t0[0] + order[i][0] - order[0][0] - time.monotonic()))
        threads.append(threading.Thread(target=send, args=(i,), name=f"wave-{i}",
                                        daemon=True))
        threads[-1].start()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    return [s for wave in results for s in wave]
