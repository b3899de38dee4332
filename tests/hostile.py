"""Hostile text for the output tests: what a stranger can put into a mail log or a run
document (a recipient, a Message-ID, a client name, a DSN's text) to reach a terminal or
a browser as code; and well-formed log lines of every kind ``spamdrill logs`` reads, each
with fields to fill."""

from __future__ import annotations

import json
import re

from hypothesis import strategies as st

# rich markup (an unbalanced close crashed `spamdrill logs`), terminal escapes (colour,
# title, OSC 8 links, CSI in its 8-bit form), line forgers, bidi overrides, emoji codes,
# and HTML that ends an attribute, a tag or a script
PIECES = ["[/x]", "[bold]", "[link=https://evil.example/]", "[/link]", "[/]", "\\",
          "\x1b[31m", "\x1b]0;owned\x07", "\x1b]8;;https://evil.example/\x1b\\", "\x9b2J",
          "\r", "\x00", "\x08", "\u202e", "\u2066", ":smile:", '"', "'", "<", ">", "&",
          "X\"><script>alert(1)</script>", "</script>", "<!--", "<img src=x onerror=1>",
          "javascript:", "{{7*7}}", "{% x %}", "${IFS}", "%s"]

hostile_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)),
                        min_size=1, max_size=5).map("".join)
# one field of a well-formed line: no line break (that would make it two lines)
field_text = hostile_text.map(lambda s: re.sub(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]",
                                               " ", s))

# A delivery's lines in each program's words (from tests/data/logs/mail.log, which the
# real programs wrote), with {fields}: classic syslog, one queue id throughout.
LINES = [
    "Nov 29 16:10:28 mx1 postfix/smtpd[19322]: {qid}: client={host}[{ip}]",
    "Nov 29 16:10:28 mx1 postfix/cleanup[19321]: {qid}: message-id=<{mid}>",
    "Nov 29 16:10:28 mx1 postfix/qmgr[19307]: {qid}: from=<{sender}>, size=972, nrcpt=1 "
    "(queue active)",
    "Nov 29 16:10:28 mx1 maildrop[19327]: Checking for spam: {sender} {user}",
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: connection from {host} [{ip}]:56956 to "
    "port 58987, fd 5",
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: processing message <{mid}> for {user}:104",
    "Nov 29 16:10:30 spamd1 spamd[18810]: config: failed to load user ({user}) scores from "
    "SQL database: config: SQL error: {text}",
    "Nov 29 16:10:30 spamd1 spamd[18810]: spamd: clean message (0.0/5.0) for {user}:104 in "
    "0.2 seconds, 795 bytes.",
    "Nov 29 16:10:30 spamd1 spamd[18810]: spamd: result: .  0 -  scantime=0.2,size=795,"
    "user={user},uid=104,required_score=5.0,rhost={host},raddr={ip},rport=34432,"
    "mid=<{mid}>,autolearn=ham autolearn_force=no",
    "Nov 29 16:10:31 mx1 spamdrill-deliver[19342]: {qid}: to=<{to}> from=<{sender}> mda "
    "status=75 outcome=defer dsn=4.4.7 rule=maildrop-timeout delay=0.198s",
    "Nov 29 16:10:31 mx1 postfix/pipe[19326]: {qid}: to=<{to}>, orig_to=<{orig}>, "
    "relay=maildrop, delay=3.1, delays=0/0/0/3.1, dsn=4.3.0, status=deferred (temporary "
    "failure. Command output: {text} maildrop: Timeout quota exceeded. )",
    "Nov 29 16:12:19 mx1 postfix/qmgr[19307]: {qid}: from=<{sender}>, size=972, nrcpt=1 "
    "(queue active)",
    "Nov 29 16:12:20 mx1 postfix/pipe[19461]: {qid}: to=<{to}>, relay=maildrop, delay=111, "
    "delays=109/0/0/2.1, dsn=5.3.0, status=bounced (Command died with status 100: "
    "\"{text}\". Command output: {text} )",
    "Nov 29 16:12:20 mx1 postfix/bounce[21986]: {qid}: sender non-delivery notification: "
    "5D57D20CD33",
    "Nov 29 16:12:20 mx1 postfix/local[21990]: 5D57D20CD33: to=<{sender}>, relay=local, "
    "delay=0.01, delays=0/0.01/0/0, dsn=2.0.0, status=sent (delivered to maildir)",
    "Nov 29 16:12:21 mx1 postfix/smtpd[19322]: warning: {host}[{ip}]: {text}",
]
FIELDS = ("qid", "host", "ip", "mid", "sender", "user", "to", "orig", "text")


FORMATS = ("classic", "short-iso", "rfc5424", "journal-json")
_CLASSIC = re.compile(r"Nov 29 (?P<time>\d\d:\d\d:\d\d) (?P<host>\S+) (?P<tag>[^\[]+)"
                      r"\[(?P<pid>\d+)\]: (?P<msg>.*)", re.S)


def _as(fmt: str, line: str) -> str:
    """A classic line in another format, the envelope converted, the text as it is (as
    tests/data/logs/convert.py does)."""
    m = _CLASSIC.fullmatch(line)
    assert m is not None, line
    stamp = f"2026-11-29T{m['time']}+00:00"
    if fmt == "short-iso":
        return f"{stamp} {m['host']} {m['tag']}[{m['pid']}]: {m['msg']}"
    if fmt == "rfc5424":
        return f"<22>1 {stamp} {m['host']} {m['tag']} {m['pid']} - - {m['msg']}"
    if fmt == "journal-json":
        h, mi, sec = map(int, m["time"].split(":"))
        us = (1795910400 + h * 3600 + mi * 60 + sec) * 1_000_000
        return json.dumps({"__REALTIME_TIMESTAMP": str(us), "_HOSTNAME": m["host"],
                           "SYSLOG_IDENTIFIER": m["tag"], "SYSLOG_PID": m["pid"],
                           "PRIORITY": "6", "SYSLOG_FACILITY": "2", "MESSAGE": m["msg"]})
    return line


def log_text(fields: dict[str, str], fmt: str = "classic") -> str:
    return "\n".join(_as(fmt, line.format(**fields)) for line in LINES) + "\n"
