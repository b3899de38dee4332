"""Test messages: unique per call (Message-ID and body tokens), so Bayes sees each as new."""

from __future__ import annotations

import random
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


def _headers(msg_id: str, subject: str, sender: str, to: str) -> str:
    date = format_datetime(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    return (
        # an address only ever looked up in the lab DNS's DNSBL zones, never contacted
        "Received: from mail.example.org (mail.example.org [93.184.216.34])\r\n"
        "\tby mx.lab.test with ESMTP id 4Labq; " + date + "\r\n"
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: <{msg_id}@spamdrill.lab.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
    )


def ham(seed: int, to: str = "alice@lab.test") -> bytes:
    rng = random.Random(seed)
    text = " ".join(rng.choice(_SENTENCES) for _ in range(8))
    token = f"tok{seed:08d}x{rng.getrandbits(32):08x}"
    body = (f"Hi,\r\n\r\nnotes from today, ref {token}. {text}\r\n\r\n"
            "See you on Thursday,\r\nBob\r\n")
    return (_headers(f"ham-{seed}-{token}", f"notes {token}", "bob@example.org", to)
            + "\r\n" + body).encode()


def gtube(seed: int, to: str = "alice@lab.test") -> bytes:
    token = f"spam{seed:08d}x{random.Random(seed).getrandbits(32):08x}"
    body = f"This is the GTUBE, {token}:\r\n\r\n{GTUBE}\r\n"
    return (_headers(f"gtube-{seed}-{token}", f"GTUBE {token}", "spammer@example.net", to)
            + "\r\n" + body).encode()
