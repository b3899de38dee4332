#!/usr/bin/env python3
"""Derive the other log formats from the real logs in ``raw/`` (``make_fixtures.py``).

The raw logs are what the programs wrote: Postfix's ``maillog_file`` (host ``mx1``),
the lines ``logger`` and spamdrill-deliver sent to the syslog socket (``mx1``), spamd's
``--syslog=FILE`` log, maildrop's logfile. A production mail log has them all in one
file, in the syslog daemon's format, spamd's lines under ``spamd[PID]`` as Sys::Syslog
sends them (the level goes into the priority, not the text) -- here as if spamd ran on a
host of its own, ``spamd1``, as in the field report. This script writes that file and
the same lines in each other format, converting only the envelope (time, host, tag, pid,
priority), never the text:

- ``mail.log``: rsyslog's traditional file format (``%b %e %H:%M:%S host tag[pid]: text``);
- ``mail.rfc5424.log``: RFC 5424 as rsyslog's ``RSYSLOG_SyslogProtocol23Format`` writes it
  (``<PRI>1 TIMESTAMP HOST APP PROCID - - text``, facility mail);
- ``mail.journal.json``: ``journalctl -o json``, one object per line, with journald's field
  names (``__REALTIME_TIMESTAMP`` in microseconds as a string, ``_HOSTNAME``,
  ``SYSLOG_IDENTIFIER``, ``SYSLOG_PID``, ``_PID``, ``PRIORITY``, ``SYSLOG_FACILITY``,
  ``MESSAGE``, a cursor and boot id);
- ``mail.short-iso.log``: ``journalctl -o short-iso`` (``2026-11-29T15:55:35+00:00 host
  tag[pid]: text``);
- ``malformed.log``: the first lines of ``mail.log`` with bad ones put in between: cut
  short, binary, a month that would be a wrong year rollover, an impossible date, a
  Postfix delivery line cut mid-way. Each bad line is listed in ``malformed.expected``
  (line number and the reason ``spamdrill logs`` must give).

The raw logs carry local times of a UTC machine; spamd's carry the year.

    python3 tests/data/logs/convert.py [--dir tests/data/logs]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MAIL = 2  # syslog facility
SEVERITY = {"info": 6, "warn": 4, "error": 3, "dbg": 7}
SPAMD_HOST = "spamd1"
_CLASSIC = re.compile(r"(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
                      r"(?P<tag>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)")
_SPAMD = re.compile(r"(?P<stamp>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) \[(?P<pid>\d+)\] "
                    r"(?P<level>\w+): (?P<msg>.*)")


@dataclass
class Rec:
    ts: datetime
    host: str
    tag: str
    pid: str
    severity: int
    msg: str


def read_classic(path: Path, year: int) -> list[Rec]:
    out = []
    for line in path.read_text().splitlines():
        m = _CLASSIC.match(line)
        if m is None:
            continue
        ts = datetime.strptime(f"{year} {m['stamp']}", "%Y %b %d %H:%M:%S")
        severity = 4 if m["msg"].startswith("warning: ") else 6
        out.append(Rec(ts.replace(tzinfo=UTC), m["host"], m["tag"], m["pid"] or "",
                       severity, m["msg"]))
    return out


def read_spamd(path: Path) -> list[Rec]:
    out = []
    for line in path.read_text().splitlines():
        m = _SPAMD.match(line)
        if m is None:
            continue
        ts = datetime.strptime(" ".join(m["stamp"].split()), "%a %b %d %H:%M:%S %Y")
        out.append(Rec(ts.replace(tzinfo=UTC), SPAMD_HOST, "spamd", m["pid"],
                       SEVERITY.get(m["level"], 6), m["msg"]))
    return out


def classic(r: Rec) -> str:
    pid = f"[{r.pid}]" if r.pid else ""
    return f"{r.ts:%b} {r.ts.day:2d} {r.ts:%H:%M:%S} {r.host} {r.tag}{pid}: {r.msg}"


def rfc5424(r: Rec) -> str:
    return (f"<{MAIL * 8 + r.severity}>1 {r.ts.isoformat()} {r.host} {r.tag} "
            f"{r.pid or '-'} - - {r.msg}")


def short_iso(r: Rec) -> str:
    pid = f"[{r.pid}]" if r.pid else ""
    return f"{r.ts.isoformat()} {r.host} {r.tag}{pid}: {r.msg}"


def journal(r: Rec, seq: int, boot: str) -> str:
    usec = int(r.ts.timestamp() * 1_000_000)  # the source's whole seconds, as converted
    doc = {
        "__CURSOR": f"s=0000;i={seq:x};b={boot};m={usec:x};t={usec:x};x=0",
        "__REALTIME_TIMESTAMP": str(usec),
        "__MONOTONIC_TIMESTAMP": str(usec - 1_700_000_000_000_000),
        "_BOOT_ID": boot,
        "PRIORITY": str(r.severity),
        "SYSLOG_FACILITY": str(MAIL),
        "SYSLOG_IDENTIFIER": r.tag,
        "SYSLOG_TIMESTAMP": f"{r.ts:%b} {r.ts.day:2d} {r.ts:%H:%M:%S} ",
        "MESSAGE": r.msg,
        "_TRANSPORT": "syslog",
        "_HOSTNAME": r.host,
    }
    if r.pid:
        doc["SYSLOG_PID"] = r.pid
        doc["_PID"] = r.pid
    return json.dumps(doc)


def malformed(lines: list[str]) -> tuple[bytes, list[tuple[int, str]]]:
    """The first good lines with bad ones between them; the bad ones' numbers and reasons."""
    good = [ln.encode() for ln in lines[:40]]
    delivery = next(ln for ln in lines if "status=sent" in ln)
    bad = [
        (good[5][:11], "truncated"),  # "Nov 29 15:5": the stamp itself cut short
        (b"\x00\x00\x17\x03\xfe\xff binary \x00 junk \x9c\x80\x81", "garbled"),
        (b"Jun " + good[7][4:], "bad time"),  # months back: a year rollover cannot be right
        (b"Feb 30 " + good[8][7:], "bad time"),  # no such day
        (delivery.encode()[: delivery.index("delays=")], "truncated"),  # a delivery cut
        (b"this line has no syslog envelope at all", "unrecognized"),
    ]
    out, expected = [], []
    for i, line in enumerate(good):
        out.append(line)
        if i % 6 == 3 and bad:
            text, reason = bad.pop(0)
            out.append(text)
            expected.append((len(out), reason))
    return b"\n".join(out) + b"\n", expected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    raw = args.dir / "raw"
    spamd = read_spamd(raw / "spamd.log")
    year = spamd[0].ts.year if spamd else datetime.now().year
    recs = read_classic(raw / "postfix.log", year) + read_classic(raw / "syslog.log", year)
    recs += spamd
    recs.sort(key=lambda r: r.ts)  # stable: each file's own order within a second
    boot = hashlib.md5(b"spamdrill fixture boot").hexdigest()
    outputs = {
        "mail.log": [classic(r) for r in recs],
        "mail.rfc5424.log": [rfc5424(r) for r in recs],
        "mail.short-iso.log": [short_iso(r) for r in recs],
        "mail.journal.json": [journal(r, i, boot) for i, r in enumerate(recs)],
    }
    for name, lines in outputs.items():
        (args.dir / name).write_text("\n".join(lines) + "\n")
        print(f"{name}: {len(lines)} lines")
    data, expected = malformed(outputs["mail.log"])
    (args.dir / "malformed.log").write_bytes(data)
    (args.dir / "malformed.expected").write_text(
        "".join(f"{n} {reason}\n" for n, reason in expected))
    print(f"malformed.log: {len(data.splitlines())} lines, {len(expected)} bad")


if __name__ == "__main__":
    main()
