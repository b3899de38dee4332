"""``spamdrill logs --anonymize`` leaves nothing behind: generated addresses (quoted local
parts, apostrophes, one-label domains such as localhost, address literals) and IPs (IPv4,
IPv6 in every spelling) in every field of every kind of line, in each log format; no
original token survives in the JSON or in the terminal summary."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hostile import FORMATS, LINES, log_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill.logs.anonymize import Anonymizer
from spamdrill.logs.diagnose import Thresholds
from spamdrill.logs.formats import zone
from spamdrill.logs.join import Settings
from spamdrill.logs.reader import Filters
from spamdrill.logs.render import render
from spamdrill.logs.run import analyze
from spamdrill.logs.summary import Options
from spamdrill.render import term

pytestmark = pytest.mark.unit

UTC = zone("UTC")

# every token carries a distinctive tail, so finding it in the output is never chance
tails = st.integers(100, 999).map(lambda n: f"q{n}z")
locals_ = st.tuples(st.sampled_from(["john.doe", "o'brien", "x+tag", "a_b", "j=k", "first"]),
                    tails).map("".join)
quoted = st.tuples(st.sampled_from(["john doe", "a@b", "x,y", "o'n (c)"]),
                   tails).map(lambda t: f'"{t[0]}{t[1]}"')
domains = st.one_of(st.tuples(st.sampled_from(["mx", "mail.corp", "example"]), tails,
                              st.sampled_from([".example.net", ".de", ""])).map("".join),
                    st.just("localhost"))
ipv4 = st.tuples(*[st.integers(1, 254)] * 4).filter(lambda t: t[0] != 127).map(
    lambda t: ".".join(map(str, t)))
ipv6 = st.one_of(
    st.lists(st.integers(1, 0xFFFF), min_size=8, max_size=8).map(
        lambda g: ":".join(f"{x:x}" for x in g)),
    st.tuples(st.integers(1, 0xFFFF), st.integers(1, 0xFFFF)).map(
        lambda t: f"2001:db8::{t[0]:x}:{t[1]:x}"),
    ipv4.map(lambda v4: f"::ffff:{v4}"),
    st.integers(1, 0xFFFF).map(lambda n: f"fe80::{n:X}"))
ips = st.one_of(ipv4, ipv6)


@st.composite
def people(draw: st.DrawFn) -> tuple[dict[str, str], list[str]]:
    """Fields for ``hostile.LINES`` and the tokens that must not survive."""
    secrets: list[str] = []

    def address() -> str:
        local = draw(st.one_of(locals_, quoted))
        domain = draw(domains)
        if draw(st.booleans()) and domain != "localhost":
            domain = f"[{draw(ipv4)}]"
        secrets.append(local.strip('"'))
        if domain != "localhost":
            secrets.append(domain.strip("[]"))
        return f"{local}@{domain}"

    def ip() -> str:
        value = draw(ips)
        secrets.append(value)
        return value

    user = draw(locals_)
    secrets.append(user)
    fields = {"qid": "4B64A20CC72", "host": draw(st.sampled_from(["unknown", "localhost"])),
              "ip": ip(), "mid": address(), "sender": address(), "user": user,
              "to": address(), "orig": address()}
    fields["text"] = (f"{address()} said it from {ip()}: host mail.example.com[{ip()}] "
                      f"and {ip()}.")
    return fields, secrets


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=people(), fmt=st.sampled_from(FORMATS))
def test_no_original_token_survives(case: tuple[dict[str, str], list[str]], fmt: str) -> None:
    fields, secrets = case
    with tempfile.TemporaryDirectory(prefix="spamdrill-anon-") as tmp:
        path = Path(tmp) / "mail.log"
        path.write_text(log_text(fields, fmt))
        doc = analyze([str(path)], Filters(year=2026, tz=UTC),
                      Options(Thresholds(slow=5, slow_scan=4),
                              Settings(late_window=60, horizon=600), episode_gap=4,
                              bucket=60, tz=UTC), anonymized=True)
    buf = io.StringIO()
    render(term.console(file=buf, width=3000, color_system=None), doc)
    for shown in (json.dumps(doc, ensure_ascii=False), buf.getvalue()):
        for secret in secrets:
            assert secret.lower() not in shown.lower(), (secret, fields)
    assert doc["anonymized"] is True
    assert doc["totals"]["deliveries"] >= 1  # the lines were read, not skipped


def test_each_line_kind_is_exercised() -> None:
    assert {"{to}", "{orig}", "{sender}", "{mid}", "{ip}", "{user}", "{text}"} <= {
        f"{{{f}}}" for line in LINES for f in ("to", "orig", "sender", "mid", "ip", "user",
                                               "text") if f"{{{f}}}" in line}


@pytest.mark.parametrize("text,secret", [
    ('to=<"john doe"@example.com>', "john doe"),
    ("client=unknown[2001:db8::1a2b]", "2001:db8::1a2b"),
    ("from 2001:db8::5. Then", "2001:db8::5"),
    ("mail for user@localhost failed", "user@"),
    ("mail for o'brien@example.org failed", "o'"),  # 'brien' alone was hashed
    ("spamd: connection from h [fe80::1]:56956", "fe80::1"),
])
def test_the_reported_leaks(text: str, secret: str) -> None:
    """Each of these stayed in clear."""
    assert secret not in Anonymizer(b"k" * 16).text(text)


def test_times_and_loopback_stay() -> None:
    a = Anonymizer(b"k" * 16)
    text = "16:10:31 2026-11-29T16:10:31+00:00 [::1]:25 127.0.0.1 4B64A20CC72: dsn=4.3.0"
    assert a.text(text) == text


def test_terminal_and_json_of_a_real_log_hold_no_address() -> None:
    data = Path(__file__).parent / "data" / "logs" / "mail.log"
    doc = analyze([str(data)], Filters(year=2026, tz=UTC),
                  Options(Thresholds(slow=5, slow_scan=4), Settings(late_window=60,
                                                                     horizon=600),
                          episode_gap=4, bucket=60, tz=UTC), anonymized=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        render(term.console(width=3000, color_system=None), doc)
    for text in (json.dumps(doc), buf.getvalue()):
        # host names (db.lab.test) are the postmaster's and stay; people do not
        assert not re.search(r"@[\w.-]*lab\.test", text) and "alice" not in text
