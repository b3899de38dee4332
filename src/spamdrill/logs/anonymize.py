"""``--anonymize``: the report with people and their mail replaced by keyed hashes, sans-IO.

Applied to the finished JSON document (and so to the terminal output made from it), not to
the parsed values, so nothing a field or an evidence line carries can slip past: every
mail address (local part and domain hashed apart, so ``a@x`` and ``b@x`` still share a
domain), every Message-ID, every spamd/maildrop user name the report names, every IP
address but loopback, and client host names in ``name[addr]``. The key is random per run:
the same address reads the same everywhere in one report, and nothing links two reports.
Postfix's and spamd's own words, queue ids, times and the postmaster's own host names
stay, so the report can still be read and matched to the original log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

_ADDRESS = re.compile(r"(?<![\w.+-])([\w.+=-]+)@([\w-]+(?:\.[\w-]+)+)")
_MID = re.compile(r"<[^<>@\s]+@[^<>\s]+>")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
_CLIENT = re.compile(r"([\w.-]+)\[((?:\d{1,3}\.){3}\d{1,3}|[\da-fA-F]*:[\da-fA-F:.]*)\]")
USER_FIELDS = ("to", "from", "orig_to", "recipient", "sender", "spamd_user")


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
        text = _CLIENT.sub(lambda m: f"{self.token(m.group(1), 'h')}[{self._ip(m.group(2))}]"
                           if m.group(1) not in ("unknown", "localhost") else m.group(0), text)
        text = _IPV4.sub(lambda m: self._ip(m.group(1)), text)
        for user in sorted(self.users, key=len, reverse=True):
            text = re.sub(rf"(?<![\w@-]){re.escape(user)}(?![\w@-])",
                          self.token(user, "u"), text)
        return text

    def _ip(self, ip: str) -> str:
        if ip.startswith("127.") or ip in ("::1", "0.0.0.0"):
            return ip
        return self.token(ip, "ip")

    def learn(self, doc: Any) -> None:
        """Collect the user names the report names (local parts, spamd users)."""
        if isinstance(doc, dict):
            for key, value in doc.items():
                if key in USER_FIELDS and isinstance(value, str) and value:
                    local = value.split("@", 1)[0]
                    if len(local) >= 3:
                        self.users.add(local)
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
