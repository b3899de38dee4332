"""Control of the lab DNS server: its zone, its per-name failure rules, and a real probe."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dnslib import DNSRecord

from spamdrill.errors import SpamdrillError
from spamdrill.lab import safefs
from spamdrill.lab.layout import Layout
from spamdrill.proto.dns_policy import MODES, parse_rules

DB_NAME = "db.lab.test"
SPAMD_NAME = "spamd.lab.test"


def write_zone(layout: Layout, hosts: dict[str, str], dnsbl_zones: tuple[str, ...]) -> None:
    _write_atomic(layout, layout.dns_zone,
                  json.dumps({"hosts": hosts, "dnsbl_zones": list(dnsbl_zones)}))


def _write_atomic(layout: Layout, path: Path, text: str) -> None:
    """A fresh temporary file (never one planted there) renamed over ``path``: the server
    never reads half a file, and no symlink in ``dns/`` is followed."""
    safefs.write_atomic(layout.root, path, text.encode(), mode=0o644)


def read_rules(layout: Layout) -> dict[str, dict[str, object]]:
    try:
        raw = json.loads(safefs.read_bytes(layout.root, layout.dns_rules))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise SpamdrillError(f"{layout.dns_rules} is not the lab's rules file",
                             "take the lab down and up again") from None
    return raw if isinstance(raw, dict) else {}


def set_rule(layout: Layout, name: str, mode: str, delay: float = 0.0) -> None:
    """Switch ``name`` (a host, a zone, or ``*``) to ``mode``; ``answer`` clears the rule."""
    if mode not in MODES:
        raise SpamdrillError(f"unknown DNS mode {mode!r}", "choose one of " + ", ".join(MODES))
    if mode == "delay" and delay <= 0:
        raise SpamdrillError("mode delay needs --delay SECONDS > 0")
    rules = read_rules(layout)
    key = name.rstrip(".").lower() if name != "*" else "*"
    if mode == "answer":
        rules.pop(key, None)
    else:
        rules[key] = {"mode": mode, "delay": delay}
    parse_rules(rules)  # validate before the server sees it
    _write_atomic(layout, layout.dns_rules, json.dumps(rules, indent=1))


def clear_rules(layout: Layout) -> None:
    _write_atomic(layout, layout.dns_rules, "{}")


def server_argv(layout: Layout, host: str, port: int, secondary: bool = False) -> list[str]:
    """The primary takes the rules drills set (``rules.json``); a secondary has its own,
    never touched, so "primary dead, secondary working" is one rule on the primary."""
    rules = layout.dns_rules.with_name("rules-secondary.json") if secondary \
        else layout.dns_rules
    log = layout.dns_log.with_name("queries-secondary.jsonl") if secondary \
        else layout.dns_log
    if secondary:
        _write_atomic(layout, rules, "{}")
    return [
        sys.executable, "-m", "spamdrill.lab.dns_server",
        "--host", host, "--port", str(port),
        "--zone", str(layout.dns_zone), "--rules", str(rules), "--log", str(log),
    ]


def query(host: str, port: int, name: str, qtype: str = "A", tcp: bool = False,
          timeout: float = 1.0) -> DNSRecord:
    """Ask the lab server one question; raises OSError/TimeoutError when it does not answer."""
    raw = DNSRecord.question(name, qtype).send(host, port, tcp=tcp, timeout=timeout)
    return DNSRecord.parse(raw)


def probe(host: str, port: int) -> bool:
    try:
        reply = query(host, port, DB_NAME, timeout=0.3)
    except OSError:
        return False
    return bool(reply.rr)


def write_resolv_conf(path: Path, servers: list[str]) -> None:
    """A host's resolv.conf naming only lab servers (libc needs port 53 on each).
    ``timeout:1 attempts:1`` keeps a dead server's cost per lookup small and known."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"nameserver {s}\n" for s in servers)
                    + "options timeout:1 attempts:1\n")
