"""The SPAMC/SPAMD wire protocol, sans-IO.

Follows SpamAssassin's ``spamd/PROTOCOL`` and ``spamc/libspamc.c`` (``_message_filter``,
``_handle_spamd_header``): a request is ``VERB SPAMC/1.5`` plus headers, a blank line and an
optional body; a reply starts ``SPAMD/1.x <code> <message>``, then headers, a blank line and a
body. Codes are sysexits values (0 = EX_OK). Only parsing and building live here; the
probes and loads do the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROTOCOL_VERSION = "1.5"


def build_request(verb: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """Encode one request; ``Content-length`` is added when there is a body."""
    lines = [f"{verb} SPAMC/{PROTOCOL_VERSION}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def ping_request() -> bytes:
    """``PING`` needs no body; spamd answers ``SPAMD/1.5 0 PONG`` without touching SQL."""
    return build_request("PING")


def request_complete(data: bytes, *, body: bool = True) -> bool:
    """Whether ``data`` holds a whole request: its header block, and with ``body`` the
    ``Content-length`` bytes after it (spamc writes all of it before it reads a byte)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    if not body:
        return True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(rest) >= int(value)
    return True


def build_reply(code: int, message: str, headers: dict[str, str] | None = None,
                body: bytes = b"", version: str = "1.1") -> bytes:
    """Encode one reply as spamd writes it: a status line, ``Content-length`` (always,
    also for an empty body), the other headers, a blank line, the body."""
    lines = [f"SPAMD/{version} {code} {message}", f"Content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class ProtocolError(ValueError):
    """The peer sent something that is not a SPAMD reply."""


@dataclass(frozen=True)
class Reply:
    version: str
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == 0


def parse_reply(data: bytes) -> Reply | None:
    """Parse a reply; ``None`` while the header block is incomplete.

    Raises ProtocolError when the status line is not ``SPAMD/x.y code message``.
    """
    # PING's reply has only a status line; other replies end their header block with a
    # blank line. Both are complete once the status line is.
    first_end = data.find(b"\r\n")
    if first_end < 0:
        if len(data) > 512:
            raise ProtocolError("no status line in the first 512 bytes")
        return None
    status = data[:first_end].decode("latin-1")
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("SPAMD/") or not parts[1].isdigit():
        raise ProtocolError(f"not a SPAMD status line: {status[:80]!r}")
    version = parts[0].split("/", 1)[1]
    code = int(parts[1])
    message = parts[2] if len(parts) > 2 else ""
    rest = data[first_end + 2 :]
    headers: dict[str, str] = {}
    body = b""
    head_end = rest.find(b"\r\n\r\n")
    if rest.startswith(b"\r\n"):
        body = rest[2:]
    elif head_end >= 0:
        for line in rest[:head_end].decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rest[head_end + 4 :]
    return Reply(version=version, code=code, message=message, headers=headers, body=body)
