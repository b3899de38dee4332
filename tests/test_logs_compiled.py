"""The compiled reader loop (``spamdrill/logs/_fastloop.pyx``) against its reference, the
pure-Python ``reader.Feed.fast``: the same calls to the programs' readers, line for line,
and the same document, byte for byte, on every fixture and on generated logs (hostile
fields, odd whitespace between the envelope's fields, lines cut short, bad bytes, NUL
bytes, shuffled, CRLF ends, gzipped). Skipped where the extension is not built (no C
compiler): then only the pure path runs, and every other test covers it."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hostile import FIELDS, LINES, field_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_logs_reading import EveryLine

from spamdrill.logs import postfix, reader, spamd
from spamdrill.logs.formats import Entry, zone
from spamdrill.logs.join import Joiner, Scan
from spamdrill.logs.reader import Filters, Reader
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Analysis, Options

DATA = Path(__file__).parent / "data" / "logs"
UTC = zone("UTC")
FIXTURES = [*sorted(p for p in DATA.rglob("*.log")), DATA / "mail.journal.json"]

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(importlib.util.find_spec("spamdrill.logs._fastloop") is None,
                                 reason="the compiled reader loop is not built")]


@contextmanager
def _pure(on: bool) -> Iterator[None]:
    old = os.environ.get(reader.PURE_ENV)
    os.environ[reader.PURE_ENV] = "1" if on else ""
    try:
        yield
    finally:
        if old is None:
            del os.environ[reader.PURE_ENV]
        else:
            os.environ[reader.PURE_ENV] = old


class Calls:
    """Every call the loop makes: to a program's reader, and each careful envelope."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def feed(self, entry: Entry, src: int, no: int, text: str) -> None:
        self.seen.append(("feed", no, entry, text))

    def handler(self, prog: str) -> Any:
        if prog.startswith("x"):
            return None  # a program nothing reads

        def handle(*args: Any) -> None:
            self.seen.append((prog, *args))

        return handle


def _scan(scan: Scan) -> tuple[Any, ...]:
    return (scan.host, scan.pid, scan.start, scan.last, scan.end, scan.mid, scan.user,
            scan.seconds, scan.size, scan.spam, scan.tests, scan.time_limit, scan.finished,
            scan.errors, [tuple(ln) for ln in scan.lines])


def _state(path: Path) -> tuple[Any, ...]:
    """What the join holds after reading ``path``, beyond what the document shows: every
    scan as it was filed, the lines kept for joining, the messages, the spamd hosts (the
    twins of the compiled loop write these)."""
    analysis = Analysis(Options(tz=UTC))
    join = analysis.joiner
    filed: list[tuple[Any, ...]] = []
    keep = join.on_scan

    def record(scan: Scan) -> None:
        filed.append(_scan(scan))
        if keep is not None:
            keep(scan)

    join.on_scan = record
    Reader([str(path)], Filters(year=2026, tz=UTC)).run(analysis)
    messages = [(m.key, m.last, m.client, m.mid, m.sender, m.size, m.removed)
                for m in join.messages.values()]
    kept = (join.maildrop.ts, join.maildrop.items, join.spamd.states.ts,
            join.spamd.states.items, join.spamd.max_children.items,
            # what the windows still hold after their last trim (the compiled clock trims)
            [len(index) for index in (join.by_start, join.maildrop, join.spamc,
                                      join.timed_wrappers, join.spamd.max_children,
                                      join.spamd.states, *join.spamd.gaps.values())],
            len(join.kept), sorted((k, len(v)) for k, v in join.by_mid.items()),
            sorted((k, len(v)) for k, v in join.by_user.items()),
            {qid: [(w.host, w.ts, tuple(w.line), w.qid, w.to, w.mda, w.outcome, w.dsn, w.rule)
                   for w in ws] for qid, ws in join.wrappers.items()},
            list(join.wrapper_order),
            len(join.pending), join.now, join.next_trim)
    hosts = (join.spamd.first, join.spamd.last,
             {h: g.items for h, g in join.spamd.gaps.items()}, join.hosts_seen(),
             join.evicted, [_scan(s) for s in join.children.values()],
             {mid: _scan(s) for mid, s in join.open_mids.items()})
    analysis.document()
    return filed, messages, kept, hosts


def _both(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(document, calls and the join's state) by the compiled loop, then by the pure one."""
    docs, calls = [], []
    for pure in (False, True):
        with _pure(pure):
            assert (reader.compiled() is None) == pure
            doc = analyze([str(path)], Filters(year=2026, tz=UTC), Options(tz=UTC))
            docs.append(json.dumps(doc, sort_keys=True, default=str))
            rec = Calls()
            read = Reader([str(path)], Filters(year=2026, tz=UTC))
            read.run(rec)
            calls.append((rec.seen, [i.public() for i in read.inputs], read.examples,
                          _state(path)))
    return docs, calls


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(DATA)))
def test_the_compiled_loop_reads_every_fixture_as_the_pure_one(path: Path) -> None:
    docs, calls = _both(path)
    assert docs[0] == docs[1]
    assert calls[0] == calls[1]


# what may stand between the envelope's fields: str.split's whitespace, and what is not
SEPARATORS = [" ", "  ", "\t", "\xa0", "\x1c", "\x1f", "\u2003", "\u3000", "\x85", "_", ""]
BAD = [b"\xff", b"\x00", b"\xe2\x82", b"\xc3", b"\r", b"\xed\xa0\x80"]


# lines the compiled loop reads itself (twins of their Python steps), with hostile fields
_READ_HERE = [
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: checking message <{mid}> for {user}:104",
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: clean message (2.1/5.0) for {user}:104 in "
    "6.2 seconds, 1058 bytes.",
    "Nov 29 16:10:29 spamd1 spamd[18810]: spamd: identified spam (999.0/5.0) for {user}:104 "
    "in 0.2 seconds, 994 bytes.",
    "Nov 29 16:10:30 spamd1 spamd[18810]: spamd: result: Y 999 - GTUBE,{text} scantime=0.2,"
    "size=994,user={user},uid=104,required_score=5.0,rhost=localhost,raddr=127.0.0.1,"
    "rport=1,mid=<{mid}>,autolearn=no",
    "Nov 29 16:10:30 spamd1 spamd[18786]: prefork: child states: {text}",
    "Nov 29 16:10:30 spamd1 spamd[18786]: prefork: child states: BI \t",
    "Nov 29 16:10:30 spamd1 spamd[18786]: prefork: server reached --max-children setting, "
    "consider raising it",
    "Nov 29 16:10:31 mx1 maildrop[19327]: File: /srv/mail/{user}/Maildir ({orig})",
    "Nov 29 16:10:31 mx1 maildrop[19327]: !Err: /srv/mail/{user}/Maildir (12)",
    "Nov 29 16:10:31 mx1 maildrop[19327]: Delivering: {sender} {user} /srv/mail/{user}/",
    "Nov 29 16:10:31 mx1 postfix/smtpd[19322]: disconnect from {host}[{ip}] ehlo=1 mail=1",
    "Nov 29 16:10:31 mx1 postfix/pipe[19323]: warning: {text}",
    "Nov 29 16:10:31 mx1 postfix/pipe[19323]: {qid}: {text}",
    "Nov 29 16:10:31 mx1 postfix/qmgr[19320]: {qid}: from=<{sender}>, size={text}, nrcpt=1 "
    "(queue active)",
    "Nov 29 16:10:31 mx1 postfix/qmgr[19320]: {qid}: from=<{sender}>, size=12, nrcpt={text}",
    *[f"Nov 29 16:10:31 mx1 postfix/qmgr[19320]: {{qid}}: from=<a>, size={size}, "
      f"nrcpt={n} (queue active)"
      for size, n in (("1" * 15, "1"), ("1" * 16, "1"), ("\u0661\u0662", "\uff15"), ("", "1"),
                      ("12", ""), ("\xb2", "1"), ("3", "2 "))],
    "Nov 29 16:10:31 mx1 postfix/qmgr[19320]: {qid}: from=<{sender}, size=1, nrcpt=1",
    "Nov 29 16:10:31 mx1 postfix/qmgr[19320]: {qid}: from=<>, size=1, nrcpt=1, status=expired",
]


@st.composite
def _logs(draw: st.DrawFn) -> bytes:
    fields = {name: draw(field_text) for name in FIELDS}
    fields["qid"] = draw(st.sampled_from(["0A1B2C3D4E", "NOQUEUE", "ab", fields["qid"]]))
    lines = [ln.format(**fields) for ln in (*LINES, *_READ_HERE)]
    lines += draw(st.lists(st.sampled_from(_FIXTURE_LINES), max_size=12))
    lines = draw(st.permutations(lines))
    out = []
    for line in lines:
        how = draw(st.integers(0, 9))
        if how == 1:  # another separator between two of the envelope's fields
            at = draw(st.sampled_from([15, *[i for i, c in enumerate(line[:60]) if c == " "]]))
            line = line[:at] + draw(st.sampled_from(SEPARATORS)) + line[at + 1:]
        elif how == 2:  # cut short
            line = line[:draw(st.integers(0, len(line)))]
        elif how == 3:  # another pid, tag or program
            line = line.replace("[", draw(st.sampled_from(["[", "", "[[", "]["])), 1)
        elif how == 4:
            line = line.replace("mx1 ", draw(st.sampled_from(["x-unread[1]: ", "mx1  "])), 1)
        data = line.encode("utf-8", "surrogatepass")
        if how == 5:  # bad bytes
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from(BAD)) + data[at:]
        out.append(data)
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    return end.join(out) + draw(st.sampled_from([end, b""]))


_FIXTURE_LINES = (DATA / "mail.log").read_text().splitlines()[::7]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_logs(), packed=st.booleans())
def test_the_compiled_loop_reads_generated_logs_as_the_pure_one(data: bytes,
                                                                 packed: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mail.log"
        path.write_bytes(gzip.compress(data) if packed else data)
        docs, calls = _both(path)
    assert calls[0] == calls[1]
    assert docs[0] == docs[1]


# spamd's scan lines, read by index in the compiled loop (_spamdlines.pxi) where spamd.py
# uses expressions: valid lines, then edited with what could mislead a reader by index
# (digits that are decimal or only look it, every kind of space, the separators)
_SCAN_LINES = {
    "processing": ["spamd: processing message <m1@x.test> for alice:104",
                   "spamd: checking message <m1@x.test> aka <r@x> for bob@x.test:0",
                   "spamd: processing message (unknown) for a:b: c:5"],
    "verdict": ["spamd: clean message (0.0/5.0) for alice:104 in 0.2 seconds, 795 bytes.",
                "spamd: identified spam (-1.5/8.0) for a:b:104 in 12.25 seconds, 5 bytes."],
    "result": ["spamd: result: .  0 -  scantime=0.2,size=795,user=alice,uid=104,"
               "required_score=5.0,rhost=localhost,mid=<m1@x.test>,autolearn=no",
               "spamd: result: Y 1000 - GTUBE,TIME_LIMIT_EXCEEDED scantime=3,size=1,user=,"
               "mid=<m>"],
}
_TRICKY = [" ", "  ", "\t", "\xa0", "\u2003", "\x1c", "\x85", ":", ",", ".", "-", "/", "(",
           ")", "0", "9", "\u0661", "\uff15", "\xb2", "\u2460", "1" * 16, "a", "<", ">",
           " aka ", " for ", " in ", " seconds, ", " bytes.", ",mid=", ",size=", ",user=",
           "scantime=", "0.", ".5", "", "\U0001d7ce", "\U0001f600", "\u3000"]


def _by_expressions(kind: str, msg: str) -> tuple[str, ...] | None:
    """What spamd.py's expressions find in ``msg``: the reference."""
    if kind == "processing":
        m = spamd._PROCESSING.match(msg, 7)
        return None if m is None else (m.group(1), m.group(2))
    if kind == "verdict":
        m = spamd._VERDICT.match(msg, 7)
        return None if m is None else (m.group(3), m.group(4), m.group(5))
    m = spamd._RESULT.match(msg, 7)
    if m is None:
        return None
    flag, tests, extra = m.groups()
    x = spamd._EXTRA.match(extra)
    at = extra.find(",mid=")
    if x is None or at < 0:
        return None
    end = extra.find(",", at + 5)
    return (flag, tests, *x.groups(), extra[at + 5: end if end > 0 else None])


@st.composite
def _scan_msgs(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(sorted(_SCAN_LINES)))
    msg = draw(st.sampled_from(_SCAN_LINES[kind]))
    head = msg.index(" ", msg.index(" ", 7) + 1) + 1  # the words that chose the step
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(head, len(msg)))
        cut = draw(st.integers(0, 3))
        msg = msg[:at] + draw(st.sampled_from(_TRICKY)) + msg[at + cut:]
    return kind, msg


@settings(max_examples=200, deadline=None)
@given(case=_scan_msgs())
def test_the_compiled_loop_reads_spamd_scan_lines_as_the_expressions(
        case: tuple[str, str]) -> None:
    from spamdrill.logs._fastloop import scan_fields

    kind, msg = case
    assert scan_fields(kind, msg) == _by_expressions(kind, msg)


def test_the_scan_line_readers_refuse_what_the_expressions_refuse() -> None:
    """Shapes where a reader by index could go wrong: a 16-digit number, a digit that is
    not decimal, a tab where a space must be, a fraction without digits."""
    from spamdrill.logs._fastloop import scan_fields

    for kind, msg in (
            ("verdict", "spamd: clean message (0/5) for a:1 in 1234567890123456 seconds, "
                        "1 bytes."),
            ("verdict", "spamd: clean message (0/5) for a:\xb2 in 1 seconds, 1 bytes."),
            ("verdict", "spamd: clean message (0/5) for a:1 in 1. seconds, 1 bytes."),
            ("processing", "spamd: processing message <m> aka  for a:1"),
            ("processing", "spamd: processing message <m> for a:1\u0661"),
            ("result", "spamd: result: . 0 - T\tscantime=1,size=1,user=u,mid=<m>"),
            ("result", "spamd: result: . 0 - T scantime=1,size=1,user=u,mid=<m>")):
        assert scan_fields(kind, msg) == _by_expressions(kind, msg), msg


# Postfix's delivery lines, read by index in the compiled loop (_postfixlines.pxi) where
# postfix.py uses _DELIVERY: valid lines with every optional field, then edited
_DELIVERIES = [
    "to=<alice@lab.test>, relay=maildrop, delay=0.26, delays=0.02/0.01/0/0.23, dsn=2.0.0, "
    "status=sent (delivered via maildrop service)",
    "to=<a@x>, orig_to=<b@x>, relay=mx[1.2.3.4]:25, conn_use=2, delay=301, "
    "delays=0.1/0/0.5/300, tls=TLSv1.3,x, dsn=4.3.0, status=deferred (Command died (75))",
    "to=<>, relay=none, delay=1, delays=1/2/3/4, dsn=5.1.1, status=bounced ()",
]
_DELIVERY_TRICKY = [*_TRICKY, ", ", "_", "\u00e9", "status=", "dsn=", "tls=", "orig_to=<",
                    "conn_use=", "relay=", "delays=", " ("]


@st.composite
def _delivery_bodies(draw: st.DrawFn) -> str:
    body = draw(st.sampled_from(_DELIVERIES))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(body)))
        cut = draw(st.integers(0, 3))
        body = body[:at] + draw(st.sampled_from(_DELIVERY_TRICKY)) + body[at + cut:]
    return body


@settings(max_examples=200, deadline=None)
@given(body=_delivery_bodies())
def test_the_compiled_loop_reads_delivery_lines_as_the_expression(body: str) -> None:
    from spamdrill.logs._fastloop import delivery_fields

    m = postfix._DELIVERY.match(body)
    assert delivery_fields(body) == (None if m is None else m.groups())


def test_the_delivery_reader_refuses_what_the_expression_refuses() -> None:
    """Shapes a reader by index could take: an optional field that starts and fails, a
    tab where a space must be, a 16-digit delay, a dsn with a minus, no closing bracket."""
    from spamdrill.logs._fastloop import delivery_fields

    head, tail = "to=<a>, relay=r, delay=1, delays=1/2/3/4, ", "dsn=2.0.0, status=sent (x)"
    for body in (head + "tls=x,\t" + tail, head + "tls=, " + tail, head + "tls=x, " + tail,
                 head + "tls=a,b, " + tail, "to=<a>, orig_to=<b, relay=r" + head[14:] + tail,
                 "to=<a>, relay=r, conn_use=, " + head[17:] + tail,
                 head.replace("delay=1", "delay=1234567890123456") + tail,
                 head.replace("4, ", "4., ") + tail, head + tail.replace("2.0", "2-0"),
                 head + tail[:-1], head + tail.replace("sent", "s\u00e9nt_1"),
                 head + tail.replace("(x)", "()"), head + tail.replace("2.0.0", "\u0662.0")):
        m = postfix._DELIVERY.match(body)
        assert delivery_fields(body) == (None if m is None else m.groups()), body


def _same_in_both(tmp_path: Path, lines: list[str]) -> str:
    """``lines`` as a log through both loops: the same document and calls; the document."""
    path = tmp_path / "mail.log"
    path.write_text("\n".join(lines) + "\n")
    docs, calls = _both(path)
    assert docs[0] == docs[1]
    assert calls[0] == calls[1]
    return docs[0]


def _benchmark_log(path: Path, mb: float, incident_every: int) -> None:
    """The logs benchmark's generated log (``benchmarks/logs_throughput.py``): ordinary
    mail -- delivered in time, scanned, no wrapper line: what the compiled join's clock
    (_jointick.pxi) counts and lets go itself -- and the fixture's incidents."""
    spec = importlib.util.spec_from_file_location(
        "logs_throughput", Path(__file__).parents[1] / "benchmarks" / "logs_throughput.py")
    assert spec is not None and spec.loader is not None
    bench = sys.modules.setdefault("logs_throughput", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(bench)  # its dataclass looks itself up in sys.modules
    bench.generate(path, mb / 1000, 0, incident_every)


@pytest.mark.parametrize("incident_every", [0, 5])
def test_the_benchmark_log_reads_the_same_in_both_loops(tmp_path: Path,
                                                         incident_every: int) -> None:
    """Hours of ordinary mail (windows trimmed, attempts released, idle children filed by
    the compiled clock), with or without incidents among it."""
    path = tmp_path / "mail.log"
    _benchmark_log(path, 1.0, incident_every)
    docs, calls = _both(path)
    assert docs[0] == docs[1]
    assert calls[0] == calls[1]
    assert json.loads(docs[0])["totals"]["deliveries"] > 400


def test_queue_lines_read_the_same_in_both_loops(tmp_path: Path) -> None:
    """qmgr's ``from=<...>, size=N, nrcpt=N``, read by index in the compiled loop
    (``_queued``): each shape the expression takes or refuses, one message each."""
    lines = [line.format(qid=f"0A1B2C3D{i:02X}", sender="s@x", text="x")
             for i, line in enumerate(ln for ln in _READ_HERE if "qmgr" in ln)]
    _same_in_both(tmp_path, lines)


def test_a_host_or_tag_like_the_line_befores_reads_the_same_in_both_loops(
        tmp_path: Path) -> None:
    """The compiled loop takes the line before's host and tag again when a line's are the
    same: a host or a tag that only begins like it (or that it begins like) is another."""
    lines = []
    for i, (host, tag) in enumerate([("mx1", "postfix/qmgr[1]"), ("mx", "postfix/qmgr[1]"),
                                     ("mx10", "postfix/qmgr[1]"), ("mx10", "postfix/qmgr[12]"),
                                     ("mx10", "postfix/qmgr[1]"), ("mx1", "postfix/qmgr"),
                                     ("mx1", "postfix/qmgr[1]x"), ("mx1", "postfix/qmg"),
                                     ("mx1", "postfix/qmgr[1]")]):
        lines.append(f"Nov 29 10:00:0{i} {host} {tag}: 0A1B2C3D{i:02X}: from=<s@x>, size=9, "
                     "nrcpt=1 (queue active)")
    doc = json.loads(_same_in_both(tmp_path, lines))
    assert doc["inputs"][0]["entries"] == 9


def test_stamps_read_the_same_in_both_loops(tmp_path: Path) -> None:
    """The compiled loop converts a stamp of whole seconds itself (``_stamp``): across a
    year's end, a step back it must refuse, a 60th second, fractions, a padded day."""
    stamps = ["Dec 31 23:58:59", "Dec 31 23:59:00", "Dec 31 23:59:59", "Dec 31 23:59:60",
              "Dec 31 22:00:00", "Jan  1 00:00:00", "Jan  1 00:00:01", "Dec 31 23:59:59",
              "Jan  1 00:00:01.5", "Jan  1 00:00:02", "Jan 01 00:00:03", "Jan  1 00:01:0\u0661",
              "Jan  1 00:01:01", "Jul  1 00:01:01", "Jan  1 00:01:02", "Feb 30 00:00:00",
              "Jan  1 00:01:03"]
    lines = [f"{stamp} mx1 postfix/qmgr[1]: 0A1B2C3D{i:02X}: from=<s@x>, size=9, nrcpt=1 "
             "(queue active)" for i, stamp in enumerate(stamps)]
    _same_in_both(tmp_path, lines)


def test_a_message_retried_for_days_reads_the_same_in_both_loops(tmp_path: Path) -> None:
    """A delivery's twin keeps a message's recent tries as ``Joiner.delivery`` does (the
    try's number, the oldest let go past 50), and takes the agent's warning with it."""
    lines = ["Nov 29 10:00:00 mx1 postfix/qmgr[1]: 0A1B2C3D4E: from=<s@x>, size=9, nrcpt=2 "
             "(queue active)"]
    for i in range(60):
        stamp = f"Nov 29 {10 + i // 60:02d}:{i % 60:02d}:01"
        lines.append(f"{stamp} mx1 postfix/pipe[{i % 3}]: warning: pipe_command_read: read "
                     "time limit exceeded")
        for to in ("a@x", "b@x"):
            lines.append(f"{stamp} mx1 postfix/pipe[{i % 3}]: 0A1B2C3D4E: to=<{to}>, "
                         f"relay=maildrop, delay={i}.5, delays=0/0/0/{i}.25, dsn=4.3.0, "
                         "status=deferred (temporary failure. Command output: x)")
    [queued] = json.loads(_same_in_both(tmp_path, lines))["still_queued"]
    assert queued["attempts"] == 50


def _quiet_case(i: int, size: int, agent: str, dsn: str, text: str, wrapper: str) -> list[str]:
    """One message scanned in time and delivered (``plain``), with a wrapper's line."""
    qid, mid, t = f"0A1B2C3D{i:02X}", f"m{i}", f"Nov 29 10:00:{i:02d}"
    return [
        f"{t} mx1 postfix/qmgr[1]: {qid}: from=<s@x>, size={size}, nrcpt=1 (queue active)",
        f"{t} mx1 postfix/cleanup[2]: {qid}: message-id=<{mid}@x>",
        f"{t} spamd1 spamd[3{i}]: spamd: connection from localhost [127.0.0.1]:34448 to "
        "port 58987, fd 5",
        f"{t} spamd1 spamd[3{i}]: spamd: processing message <{mid}@x> for alice:104",
        f"{t} spamd1 spamd[3{i}]: spamd: clean message (2.1/5.0) for alice:104 in 0.2 "
        "seconds, 1016 bytes.",
        f"{t} spamd1 spamd[3{i}]: spamd: result: .  2 - X scantime=0.2,size=1016,user=alice,"
        f"uid=104,required_score=5.0,rhost=localhost,raddr=127.0.0.1,rport=34448,"
        f"mid=<{mid}@x>,autolearn=ham autolearn_force=no",
        f"{t} mx1 postfix/{agent}[4]: {qid}: to=<alice@x>, relay=maildrop, delay=0.5, "
        f"delays=0/0/0/0.4, dsn={dsn}, status=sent ({text})",
        f"{t} mx1 spamdrill-deliver[5]: {qid}: to=<alice@x> from=<s@x> mda {wrapper} "
        "dsn=2.0.0 rule=success delay=0.6s"]


def test_plain_deliveries_with_a_wrappers_line_read_the_same_in_both_loops(
        tmp_path: Path) -> None:
    """The compiled clock counts a plain delivery whose wrapper said all was well itself
    (``_quiet``, ``diagnose.quiet``'s twin): too large to scan, scanned, not a filtered
    agent; a wrapper's exit status, a 5.1.1 or a text that names a mode go to Python."""
    ok, sent = "status=0 outcome=deliver", "delivered via maildrop service"
    cases = [(300_000, "pipe", "2.0.0", sent, ok), (900, "pipe", "2.0.0", sent, ok),
             (900, "pipe", "2.0.0", sent, "status=75 outcome=bounce"),
             (900, "pipe", "2.0.0", sent, "status=75 outcome=defer"),
             (900, "local", "2.0.0", "delivered to mailbox", ok),
             (900, "pipe", "5.1.1", sent, ok),
             (900, "pipe", "2.0.0", "maildrop: Timeout quota exceeded.", ok),
             (900, "pipe", "2.0.0", sent, "signal=9 outcome=deliver")]
    lines = [ln for i, case in enumerate(cases) for ln in _quiet_case(i, *case)]
    # ten minutes on: the late window has passed, so the loop's clock takes them all
    lines.append("Nov 29 10:10:00 mx1 postfix/qmgr[1]: 0A1B2C3DFF: removed")
    doc = json.loads(_same_in_both(tmp_path, lines))
    assert doc["totals"]["deliveries"] == len(cases)
    assert doc["totals"]["scanned"]["skipped"] == 1
    assert doc["totals"]["scanned"]["n/a"] == 1


def test_the_loop_makes_its_records_as_their_classes_do() -> None:
    """The compiled loop makes Scan, Attempt, Message and Delivery without their
    ``__init__`` (``_records.pxi``): for each, a record like the class's own, field by
    field, its own lists, tracked by the collector."""
    import dataclasses
    import gc

    from spamdrill.logs._fastloop import make_record, record_makers
    from spamdrill.logs.events import Delivery, Line
    from spamdrill.logs.join import Attempt, Message

    assert all(record_makers().values()), record_makers()
    msg = Message(("mx1", "0A1B2C3D4E"), 5.0)
    ev = Delivery(("mx1", "Q"), 1.0, "pipe", "4", "a@x", "", "maildrop", 0.5,
                  (0.0, 0.0, 0.0, 0.4), "2.0.0", "sent", "x", Line(0, 1, "l"))
    for cls, args in ((Scan, ("mx1", "31", 2.0, [Line(0, 2, "s")], 2.0)),
                      (Attempt, (msg, ev, 0.6, 1.0, 2)),
                      (Message, (("mx1", "Q"), 3.0, "", "", None, None, [])),
                      (Delivery, tuple(getattr(ev, f.name) for f in dataclasses.fields(ev)))):
        made, ref = make_record(cls, args), cls(*args)
        assert type(made) is cls and gc.is_tracked(made)
        for f in dataclasses.fields(cls):
            assert getattr(made, f.name) == getattr(ref, f.name), (cls, f.name)
        for f, value in zip(dataclasses.fields(cls), args, strict=False):
            assert getattr(made, f.name) is value  # the objects given, lists not copied
    a = make_record(Message, (("mx1", "Q"), 3.0, "", "", None, None, []))
    b = make_record(Message, (("mx1", "Q"), 3.0, "", "", None, None, []))
    a.attempts.append(1)
    assert b.attempts == []


def test_wrapper_lines_read_the_same_in_both_loops(tmp_path: Path) -> None:
    """spamdrill-deliver's line, read by index in the compiled loop (``_wrapper``): each
    shape ``_DELIVER`` takes or refuses, and the deliveries they join."""
    good = ("{qid}: to=<a@x> from=<s@x> mda status=0 outcome=deliver dsn=2.0.0 "
            "rule=success delay=0.6s")
    bodies = [good, good.replace("{qid}:", "{qid}::"), good.replace("{qid}:", "{qid}"),
              good.replace(": to=<", ":  to=<"), good.replace("<a@x>", "<a b@x>"),
              good.replace("<a@x>", "<>"), good.replace("<s@x>", "<s x@x>"),
              good.replace("mda status=0", "mda  status=0"), good.replace(" delay=0.6s", ""),
              good.replace("rule=success", "rule="), good.replace("dsn=2.0.0", "dsn="),
              good.replace("outcome=deliver", "outcome=\u00e9t\u00e9"),
              good.replace("status=0", "status=75\u00a0x"), good.replace("a@x>", "a@x"),
              good[:40], good.replace(" from=<s@x>", ""), ": to=<a@x> from=<s@x> mda m "
              "outcome=o dsn=d rule=r", good.replace("{qid}", "\u0661\u0662")]
    lines = []
    for i, body in enumerate(bodies):
        qid, t = f"0A1B2C3D{i:02X}", f"Nov 29 10:00:{i:02d}"
        lines += [f"{t} mx1 postfix/qmgr[1]: {qid}: from=<s@x>, size=9, nrcpt=1 "
                  "(queue active)",
                  f"{t} mx1 postfix/pipe[4]: {qid}: to=<a@x>, relay=maildrop, delay=0.5, "
                  "delays=0/0/0/0.4, dsn=2.0.0, status=sent (delivered via maildrop service)",
                  f"{t} mx1 spamdrill-deliver[5]: " + body.format(qid=qid)]
    lines.append("Nov 29 10:10:00 mx1 postfix/qmgr[1]: 0A1B2C3DFF: removed")
    doc = json.loads(_same_in_both(tmp_path, lines))
    assert doc["totals"]["deliveries"] == len(bodies)


def test_queue_ids_of_every_shape_read_the_same_in_both_loops(tmp_path: Path) -> None:
    """The compiled loop tests a queue id's characters over the line's bytes (a table of
    ``str.isalnum``'s answers) and compares its prefixes in place: letters beyond ASCII,
    punctuation, other digits, the words Postfix logs instead of one, too short."""
    qids = ["0A1B2C3D4E", "0A1B2_C3D4E", "0A1B2C3D4\u00e9", "0A1B2C3D4\u00b7", "0A1B\u00aa",
            "\u0661\u0662\u0663\u0664\u0665", "0A1B", "NOQUEUE", "warning", "Warning",
            "0A1B2C3D4\u00a0", "0A1B2C3D4\u2028E", "0A1B2C3D4\U0001d7d8"]
    lines = [f"Nov 29 10:00:{i:02d} mx1 postfix/qmgr[1]: {qid}: from=<s@x>, size=9, "
             "nrcpt=1 (queue active)" for i, qid in enumerate(qids)]
    lines += [f"Nov 29 10:01:{i:02d} mx1 postfix/pipe[4]: {qid}: to=<a@x>, relay=maildrop, "
              "delay=0.5, delays=0/0/0/0.4, dsn=2.0.0, status=sent (delivered via maildrop "
              "service)" for i, qid in enumerate(qids)]
    doc = json.loads(_same_in_both(tmp_path, lines))
    assert 5 <= doc["totals"]["deliveries"] < len(qids)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(
    ["a", "Z", " ", ":", "\n", "\r", "\x00", "\u00e9", "\u00ff", "\u0100", "\U0001d7d8"]),
    max_size=60) | st.text(max_size=60))
def test_the_compiled_splitter_gives_what_str_split_gives(text: str) -> None:
    """``split_lines`` (memchr over a block of one byte per character) against
    ``str.split("\\n")``: the same strings, each as compact as the method makes it."""
    from spamdrill.logs._fastloop import split_lines

    ours, theirs = split_lines(text), text.split("\n")
    assert ours == theirs
    assert [(type(a), a.isascii()) for a in ours] == [(type(b), b.isascii()) for b in theirs]


def test_a_file_reads_the_same_split_either_way(tmp_path: Path) -> None:
    """The reader's blocks, split by the compiled splitter and by ``str.split``, across
    block boundaries, ``\\r\\n`` ends and letters beyond ASCII."""
    from spamdrill.logs._fastloop import split_lines

    path = tmp_path / "mail.log"
    accents = ["\u00e9", "e", "e", "e", "e", "e", "e"]
    lines = [f"line {i} {accents[i % 7]} " + "x" * (i % 300) for i in range(40_000)]
    path.write_bytes("\r\n".join(lines).encode() + b"\n")
    with open(path, "rb") as fh:
        ours = [line for block, _ in reader.blocks(fh, split_lines) for line in block]
    with open(path, "rb") as fh:
        theirs = [line for block, _ in reader.blocks(fh) for line in block]
    assert ours == theirs == lines


def _with_the_loop(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a new interpreter, the compiled loop not turned off."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, check=False, env={**os.environ, reader.PURE_ENV: ""})


def test_a_record_class_of_another_layout_turns_the_compiled_loop_off() -> None:
    """The loop reads the join's objects at their slots' offsets, checked at import: a
    class that gains a slot makes the import fail, and the pure loop reads instead."""
    code = (
        "import dataclasses, sys\n"
        "from spamdrill.logs import join, reader\n"
        "fields = [(f.name, f.type, f) for f in dataclasses.fields(join.Scan)]\n"
        "join.Scan = dataclasses.make_dataclass('Scan', [*[(n, t, f) for n, t, f in fields],"
        " ('extra', int, dataclasses.field(default=0))], slots=True, eq=False)\n"
        "try:\n"
        "    from spamdrill.logs import _fastloop\n"
        "except ImportError as exc:\n"
        "    print('refused:', exc)\n"
        "print('loop:', reader.compiled())\n")
    done = _with_the_loop(code)
    assert done.returncode == 0, done.stderr
    assert "refused: the compiled loop's Scan is not the class's layout" in done.stdout
    assert "loop: None" in done.stdout


def _number(text: str, integer: bool) -> tuple[str, object]:
    try:
        value: object = int(text) if integer else float(text)
    except ValueError as exc:
        return "error", str(exc)
    return type(value).__name__, repr(value)


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("0123456789") * 4 + [
    ".", "-", "+", "e", "_", " ", "\u0661", "\u00e9", "x"]), min_size=1, max_size=24),
    pad=st.integers(0, 3), integer=st.booleans())
def test_the_loop_reads_numbers_as_int_and_float_do(text: str, pad: int,
                                                    integer: bool) -> None:
    """The loop reads a delivery's delays, a scan's seconds and sizes by hand (digits, a
    point, digits: the integer divided by a power of ten, one rounding): the same value
    as ``float``/``int`` on the slice, or the same error."""
    from spamdrill.logs._fastloop import number_at

    line = "x" * pad + text + "y" * pad
    try:
        ours: tuple[str, object] = _number_of(number_at(line, pad, pad + len(text), integer))
    except ValueError as exc:
        ours = "error", str(exc)
    assert ours == _number(text, integer)


def _number_of(value: object) -> tuple[str, object]:
    return type(value).__name__, repr(value)


@pytest.mark.parametrize("text", ["0", "0.0", "0.2", "0.1", "1.5", "123456789012345",
                                  "12345678901234.5", "0.000000000000001", "9007199254740993",
                                  "1234567890123456", "00012.340", "3.14159265358979",
                                  "95142426273599.37"])  # 16 digits: the fast path's
                                  # integer and division would round twice (...99.36)
def test_the_loop_reads_these_numbers_as_float_does(text: str) -> None:
    from spamdrill.logs._fastloop import number_at

    assert repr(number_at(text, 0, len(text), False)) == repr(float(text))


def _ticks(path: Path, pure: bool) -> tuple[int, str]:
    with _pure(pure):
        analysis = Analysis(Options(tz=UTC))
        analysis.joiner.__class__ = EveryLine
        analysis.joiner.fast_tick = None  # every tick through Analysis._tick, counted
        calls: list[float] = []
        tick = analysis._tick

        def counted(ts: float) -> None:
            calls.append(ts)
            tick(ts)

        analysis._tick = counted  # type: ignore[method-assign]
        Reader([str(path)], Filters(year=2026, tz=UTC)).run(analysis)
        return len(calls), json.dumps(analysis.document(), sort_keys=True, default=str)


def test_a_join_that_redefines_a_slot_is_read_by_its_readers() -> None:
    """The loop reads the join at its slots' offsets: a subclass that makes a slot a
    property (``EveryLine``'s ``dirty``) would be read past it (its clock asked less
    often; a join made as that class has the slot unset). Its lines go to the readers'
    Python steps instead."""
    pure, compiled = _ticks(DATA / "mail.log", True), _ticks(DATA / "mail.log", False)
    assert compiled == pure and pure[0] > 300
    code = ("import sys\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from test_logs_compiled import DATA, UTC, EveryLine\n"
            "from spamdrill.logs.reader import Filters, Reader\n"
            "from spamdrill.logs.summary import Analysis, Options\n"
            "analysis = Analysis(Options(tz=UTC))\n"
            "analysis.joiner = EveryLine(analysis.o.settings)\n"
            "Reader([str(DATA / 'mail.log')], Filters(year=2026, tz=UTC)).run(analysis)\n"
            "print('read', analysis.count.attempts)\n")
    done = _with_the_loop(code, str(Path(__file__).parent))
    assert done.returncode == 0, done.stderr[-600:]
    assert done.stdout.startswith("read ")


def test_a_message_that_redefines_a_slot_is_refused_not_misread() -> None:
    """A join's own ``message`` may make another class; one that redefines a slot of
    ``Message`` cannot be read at the slots' offsets: the loop says so, where it would
    otherwise read past the property."""
    from spamdrill.logs.join import Message

    class Sized(Message):
        __slots__ = ()

        @property  # type: ignore[override]
        def size(self) -> int:
            return 1

        @size.setter
        def size(self, value: int | None) -> None:
            pass

    class Own(Joiner):
        __slots__ = ()

        def message(self, key: tuple[str, str], ts: float) -> Message:
            return self.messages.setdefault(key, Sized(key, ts))

    analysis = Analysis(Options(tz=UTC))
    analysis.joiner.__class__ = Own
    with _pure(False), pytest.raises(TypeError, match="Sized redefines a slot of Message"):
        Reader([str(DATA / "mail.log")], Filters(year=2026, tz=UTC)).run(analysis)
