"""Test messages, deterministic from a seed and unique per message (Message-ID and body
tokens), so Bayes sees each as new and never short-cuts on its "seen" table.

Kinds: ``ham``, ``spam`` (GTUBE), ``multipart`` (text + HTML alternative + a base64
attachment), ``encoded`` (quoted-printable ISO-8859-1 body, RFC 2047 subject),
``large:N`` (a ham padded to N bytes: around the maildroprc size limit and spamc's ``-s``).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

_SENTENCES = (
    "The meeting moved to Thursday at ten.",
    "Could you bring the draft of the budget?",
    "I left the keys with the neighbour downstairs.",
    "The train was late again this morning.",
    "We need two more chairs for the committee room.",
    "Thanks for the photos from the weekend.",
    "The library closes early on Friday.",
    "Let me know if the new schedule works for you.",
    "My bike is at the shop until Monday.",
    "The garden looks much better after the rain.",
)

KINDS = ("ham", "spam", "multipart", "encoded")


@dataclass(frozen=True)
class Message:
    id: str
    kind: str
    data: bytes

    @property
    def message_id(self) -> str:
        """Its Message-ID header, ``<...>``: how spamd's and Postfix's logs name it."""
        head = self.data.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                return line[11:].strip().decode(errors="replace")
        return ""


def _headers(msg_id: str, subject: str, sender: str, to: str,
             content_type: str = "text/plain; charset=us-ascii") -> str:
    date = format_datetime(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    return (
        # an address only ever looked up in the lab DNS's DNSBL zones, never contacted
        "Received: from mail.example.org (mail.example.org [93.184.216.34])\r\n"
        "\tby mx.lab.test with ESMTP id 4Labq; " + date + "\r\n"
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: <{msg_id}@spamdrill.lab.test>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n"
    )


def _token(seed: int, prefix: str) -> str:
    return f"{prefix}{seed:08d}x{random.Random(seed).getrandbits(32):08x}"


def _prose(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(_SENTENCES) for _ in range(n))


def ham(seed: int, to: str = "alice@lab.test") -> bytes:
    rng = random.Random(seed)
    token = _token(seed, "tok")
    body = (f"Hi,\r\n\r\nnotes from today, ref {token}. {_prose(rng)}\r\n\r\n"
            "See you on Thursday,\r\nBob\r\n")
    return (_headers(f"ham-{seed}-{token}", f"notes {token}", "bob@example.org", to)
            + "\r\n" + body).encode()


def gtube(seed: int, to: str = "alice@lab.test") -> bytes:
    token = _token(seed, "spam")
    body = f"This is the GTUBE, {token}:\r\n\r\n{GTUBE}\r\n"
    return (_headers(f"gtube-{seed}-{token}", f"GTUBE {token}", "spammer@example.net", to)
            + "\r\n" + body).encode()


def multipart(seed: int, to: str = "alice@lab.test") -> bytes:
    rng = random.Random(seed)
    token = _token(seed, "mp")
    boundary = f"=_b{token}"
    text = _prose(rng, 5)
    attachment = base64.encodebytes(rng.randbytes(600)).decode().replace("\n", "\r\n")
    body = (
        f"--{boundary}\r\nContent-Type: multipart/alternative; boundary=\"{boundary}a\"\r\n\r\n"
        f"--{boundary}a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text} {token}\r\n"
        f"--{boundary}a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body><p>{text}</p><p>{token}</p></body></html>\r\n--{boundary}a--\r\n"
        f"--{boundary}\r\nContent-Type: application/octet-stream; name=\"{token}.bin\"\r\n"
        f"Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment; filename=\"{token}.bin\"\r\n\r\n{attachment}"
        f"--{boundary}--\r\n"
    )
    ctype = f"multipart/mixed; boundary=\"{boundary}\""
    return (_headers(f"mp-{seed}-{token}", f"agenda {token}", "carol@example.org", to, ctype)
            + "\r\n" + body).encode()


def encoded(seed: int, to: str = "alice@lab.test") -> bytes:
    rng = random.Random(seed)
    token = _token(seed, "enc")
    text = f"Grüße aus Köln, réf {token}. " + _prose(rng, 4)
    qp = "".join(c if c.isascii() and c not in "=" else
                 "".join(f"={b:02X}" for b in c.encode("latin-1")) for c in text)
    subject = "=?ISO-8859-1?Q?Gr=FC=DFe_" + token + "?="
    head = _headers(f"enc-{seed}-{token}", subject, "dora@example.de", to,
                    "text/plain; charset=iso-8859-1")
    return (head + "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp + "\r\n").encode()


def large(seed: int, size: int, to: str = "alice@lab.test") -> bytes:
    """A ham padded with prose to exactly ``size`` bytes (when size allows)."""
    base = ham(seed, to)
    pad_line = (_prose(random.Random(seed), 2) + "\r\n").encode()
    need = max(0, size - len(base))
    padding = (pad_line * (need // len(pad_line) + 1))[:need]
    return base + padding


def slow(seed: int, seconds: float, to: str = "alice@lab.test") -> bytes:
    """A ham whose scan takes ``seconds``: the lab's SpamdrillSleep rule sleeps on it."""
    return ham(seed, to).replace(b"Subject: notes ", f"Subject: SPAMDRILL-SLEEP-{seconds:g} "
                                 "notes ".encode(), 1)


def check_kind(kind: str) -> None:
    """ValueError unless ``kind`` names a message this corpus can make."""
    name, _, arg = kind.partition(":")
    if name in KINDS and not arg:
        return
    if name in ("large", "slow") and arg:
        try:
            value = float(arg) if name == "slow" else int(arg)
        except ValueError:
            value = -1
        if value >= 0:
            return
    raise ValueError(f"unknown message kind {kind!r} "
                     f"(known: {', '.join(KINDS)}, large:BYTES, slow:SECONDS)")


def make(kind: str, seed: int, to: str = "alice@lab.test") -> Message:
    """One message of ``kind`` (one of KINDS, ``large:N`` bytes, or ``slow:S`` seconds)."""
    makers = {"ham": ham, "spam": gtube, "multipart": multipart, "encoded": encoded}
    if kind.startswith("large:"):
        data = large(seed, int(kind.split(":", 1)[1]), to)
    elif kind.startswith("slow:"):
        data = slow(seed, float(kind.split(":", 1)[1]), to)
    elif kind in makers:
        data = makers[kind](seed, to)
    else:
        raise ValueError(f"unknown message kind {kind!r} "
                         f"(known: {', '.join(KINDS)}, large:BYTES, slow:SECONDS)")
    return Message(id=f"{kind.split(':')[0]}-{seed}", kind=kind, data=data)


def mix(kinds: list[str], count: int, seed: int = 0) -> list[Message]:
    """``count`` messages cycling through ``kinds``; the same seed gives the same corpus."""
    return [make(kinds[i % len(kinds)], seed * 1_000_000 + i) for i in range(count)]
