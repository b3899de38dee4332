"""``--anonymize``: the report with people and their mail replaced by keyed hashes, sans-IO.

Applied to the finished JSON document (and so to the terminal output made from it), not to
the parsed values, so nothing a field or an evidence line carries can slip past: every
mail address (local part and domain hashed apart, so ``a@x`` and ``b@x`` still share a
domain; quoted local parts, apostrophes, one-label domains such as ``localhost``), every
Message-ID, every spamd/maildrop user name the report names, every IP address but
loopback (IPv4 and IPv6, in ``unknown[...]`` and in free text), and client host names in
``name[addr]``. The key is random per run:
the same address reads the same everywhere in one report, and nothing links two reports.
Postfix's and spamd's own words, queue ids, times and the postmaster's own host names
stay, so the report can still be read and matched to the original log.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from typing import Any

# RFC 5322: a dot-atom local part (apostrophes, plus, slash, ... included) or a quoted one
# ("john doe", also with its quotes escaped, as in a journal line's JSON); a domain of one
# label or more (user@localhost), or an address literal
_ATEXT = r"-\w!#$%&'*+/=?^`{|}~."
_ADDRESS = re.compile(rf"""(?<![{_ATEXT}])(\\?"(?:[^"\\\r\n]|\\.)*?\\?"|[{_ATEXT}]+)"""
                      r"@(\[[^\]\s]+\]|[\w-]+(?:\.[\w-]+)*)")
_MID = re.compile(r"<[^<>@\s]+@[^<>\s]+>")
_IPV4 = re.compile(r"(?<!\d)(?<!\d\.)(\d{1,3}(?:\.\d{1,3}){3})(?!\.?\d)")  # "at 1.2.3.4."
# a run of hex digits, colons and dots with two colons at least; ``_v6`` keeps it if it
# is an IPv6 address (a time such as 16:10:31 is not)
_IPV6 = re.compile(r"(?<![\w:.])([\da-fA-F.]*:[\da-fA-F.]*:[\da-fA-F:.]*)(?![\w:])")
_CLIENT = re.compile(r"([\w.-]+)\[((?:\d{1,3}\.){3}\d{1,3}|[\da-fA-F.]*:[\da-fA-F:.]*)\]")
USER_FIELDS = ("to", "from", "orig_to", "recipient", "sender", "spamd_user")
KEPT_HOSTS = ("unknown", "localhost")  # Postfix's words, not a client's name
LOOPBACK = ("::1", "0.0.0.0", "::")


class Anonymizer:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(16)
        self.users: set[str] = set()

    def token(self, value: str, kind: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{value.lower()}".encode(), hashlib.sha256)
        return f"{kind}-{digest.hexdigest()[:10]}"

    def address(self, m: re.Match[str]) -> str:
        return f"{self.token(m.group(1), 'u')}@{self.token(m.group(2), 'd')}"

    def text(self, text: str) -> str:
        text = _MID.sub(lambda m: f"<{self.token(m.group(0), 'm')}>", text)
        text = _ADDRESS.sub(self.address, text)
        text = _CLIENT.sub(lambda m: (m.group(1) if m.group(1) in KEPT_HOSTS
                                      else self.token(m.group(1), "h"))
                           + f"[{self._ip(m.group(2))}]", text)
        text = _IPV6.sub(self._v6, text)
        text = _IPV4.sub(lambda m: self._ip(m.group(1)), text)
        for user in sorted(self.users, key=len, reverse=True):
            text = re.sub(rf"(?<![\w@-]){re.escape(user)}(?![\w@-])",
                          self.token(user, "u"), text)
        return text

    def _v6(self, m: re.Match[str]) -> str:
        run = m.group(1)
        core = run.rstrip(".:")  # the end of a sentence, or a port's colon
        try:
            ipaddress.IPv6Address(core)
        except ValueError:
            return run
        return self._ip(core) + run[len(core):]

    def _ip(self, ip: str) -> str:
        if ip.startswith("127.") or ip in LOOPBACK:
            return ip
        return self.token(ip, "ip")

    def learn(self, doc: Any) -> None:
        """Collect the user names the report names (local parts, spamd users), quoted
        local parts also without their quotes."""
        if isinstance(doc, dict):
            for key, value in doc.items():
                if key in USER_FIELDS and isinstance(value, str) and value:
                    local = value.rsplit("@", 1)[0]
                    for name in (local, local.strip('"')):
                        if len(name) >= 3:
                            self.users.add(name)
                else:
                    self.learn(value)
        elif isinstance(doc, list):
            for item in doc:
                self.learn(item)

    def apply(self, doc: Any) -> Any:
        if isinstance(doc, dict):
            return {k: self.apply(v) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self.apply(v) for v in doc]
        if isinstance(doc, str):
            return self.text(doc)
        return doc


def anonymize(doc: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    anon = Anonymizer(key)
    anon.learn(doc)
    out: dict[str, Any] = anon.apply(doc)
    out["anonymized"] = True
    return out
