"""How Postfix's pipe(8) judges a finished command, sans-IO.

A transcription of ``pipe_command()`` in Postfix ``src/global/pipe_command.c`` and the table
in ``src/global/sys_exits.c`` (both read from the Postfix sources):

- the command's stdout and stderr share one pipe; at most ``VSTREAM_BUFSIZE`` (4096) bytes
  are kept, tabs and newlines become spaces, other unprintables ``_``;
- time limit exceeded -> the process group is SIGKILLed and the mail **bounces** (5.3.0);
- killed by a signal -> defer (4.3.0);
- any other non-zero exit: output that starts with an RFC 3463 code (``dsn_valid``) decides
  the class; else a sysexits code (64-78) decides by its table entry: only EX_TEMPFAIL (75)
  and EX_OSERR (71) are 4.x.x; any other number (1, 100, 255) bounces with 5.3.0;
- exit 0 -> delivered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

OUTPUT_LIMIT = 4096  # VSTREAM_BUFSIZE: pipe_command() reads at most this much output

# sys_exits.c: sys_exits_table[]
SYSEXITS: dict[int, tuple[str, str]] = {
    64: ("5.3.0", "command line usage error"),
    65: ("5.6.0", "data format error"),
    66: ("5.3.0", "cannot open input"),
    67: ("5.1.1", "user unknown"),
    68: ("5.1.2", "host name unknown"),
    69: ("5.3.0", "service unavailable"),
    70: ("5.3.0", "internal software error"),
    71: ("4.3.0", "system resource problem"),
    72: ("5.3.0", "critical OS file missing"),
    73: ("5.2.0", "can't create user output file"),
    74: ("5.3.0", "input/output error"),
    75: ("4.3.0", "temporary failure"),
    76: ("5.5.0", "remote error in protocol"),
    77: ("5.7.0", "permission denied"),
    78: ("5.3.5", "local configuration error"),
}

Action = Literal["delivered", "deferred", "bounced"]

_DSN = re.compile(rb"^[245]\.\d{1,3}\.\d{1,3}(?=\s|$)")


@dataclass(frozen=True)
class Verdict:
    action: Action
    dsn: str
    text: str


def dsn_valid(output: bytes) -> str | None:
    """The leading RFC 3463 code, as ``dsn_valid()`` accepts it, or None."""
    m = _DSN.match(output)
    return m.group(0).decode() if m else None


def printable(output: bytes) -> str:
    """What Postfix keeps of the output: 4096 bytes, ``translit`` and ``printable``."""
    kept = output[:OUTPUT_LIMIT].replace(b"\t", b" ").replace(b"\n", b" ")
    return "".join(chr(b) if 32 <= b < 127 else "_" for b in kept)


def judge(*, exit_status: int | None, signal: int | None, output: bytes,
          timed_out: bool = False) -> Verdict:
    """Postfix's verdict on one finished command."""
    text = printable(output)
    if timed_out:
        return Verdict("bounced", "5.3.0", "Command time limit exceeded. " + text)
    if signal is not None:
        return Verdict("deferred", "4.3.0", f"Command died with signal {signal}. " + text)
    assert exit_status is not None
    if exit_status == 0:
        return Verdict("delivered", "2.0.0", text)
    dsn = dsn_valid(output[:OUTPUT_LIMIT])
    if dsn is not None:
        return Verdict("deferred" if dsn[0] == "4" else "bounced", dsn, text)
    code, meaning = SYSEXITS.get(exit_status, ("5.3.0", f"unknown mail system error "
                                                        f"{exit_status}"))
    return Verdict("deferred" if code[0] == "4" else "bounced", code, f"{meaning}. {text}")
