"""The lab's real components do what the field report's setup did."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from spamdrill import corpus
from spamdrill.lab import dns, maildrop, mariadb
from spamdrill.lab.lab import LabState
from spamdrill.smoke import smoke_checks

pytestmark = pytest.mark.lab


def spamc(state: LabState, user: str, message: bytes) -> str:
    done = subprocess.run(
        ["spamc", "-d", "127.0.0.1", "-p", str(state.spamd.port), "-u", user, "-t", "60"],
        input=message, capture_output=True, timeout=90, check=True,
    )
    return done.stdout.decode(errors="replace")


def spam_status(scanned: str) -> str:
    lines = scanned.split("\r\n\r\n", 1)[0].replace("\r\n\t", " ").replace("\n\t", " ")
    for line in lines.replace("\r\n", "\n").split("\n"):
        if line.startswith("X-Spam-Status:"):
            return line
    raise AssertionError("no X-Spam-Status header: message came back unscanned")


def test_gtube_is_spam_and_ham_is_ham(lab: LabState) -> None:
    assert spam_status(spamc(lab, "alice", corpus.gtube(11))).startswith("X-Spam-Status: Yes")
    assert spam_status(spamc(lab, "alice", corpus.ham(11))).startswith("X-Spam-Status: No")


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_required_score_comes_from_sql(lab: LabState, user: str) -> None:
    status = spam_status(spamc(lab, user, corpus.ham(20 + len(user))))
    assert f"required={lab.users[user]:.1f}" in status


def test_autolearn_writes_bayes_tokens_to_mariadb(lab: LabState) -> None:
    before = mariadb.bayes_token_count(lab.layout)
    status = spam_status(spamc(lab, "carol", corpus.ham(31)))
    assert "autolearn=ham" in status
    assert mariadb.bayes_token_count(lab.layout) > before


def test_spamd_dns_queries_reach_the_lab_dns(lab: LabState) -> None:
    spamc(lab, "alice", corpus.ham(41))
    queries = [json.loads(line) for line in lab.layout.dns_log.read_text().splitlines()]
    names = {q.get("qname") for q in queries}
    # the Received header's relay, reversed, asked of a DNSBL zone
    assert any(str(n).startswith("34.216.184.93.") for n in names), sorted(map(str, names))


def test_maildrop_files_spam_and_ham(lab: LabState) -> None:
    checks = smoke_checks(lab, seed=51)
    assert [c.ok for c in checks] == [True, True], checks
    assert maildrop.count_messages(lab.layout, "alice", ".Spam") >= 1


def test_maildrop_over_quota_is_exit_75(lab: LabState) -> None:
    # 'bob' gets a tiny quota: the real maildrop must refuse with EX_TEMPFAIL
    maildirsize = lab.layout.maildir("bob") / "maildirsize"
    original = maildirsize.read_text()
    maildirsize.write_text("100S\n")
    try:
        big = corpus.ham(61) + b"x" * 5000 + b"\r\n"
        result = maildrop.deliver(lab.layout, "bob", big, timeout=120)
    finally:
        maildirsize.write_text(original)
    assert result.status == 75
    assert "quota" in result.stderr.lower()


# --- the lab DNS, with real queries over UDP and TCP -------------------------------------

@pytest.fixture
def rules_cleared(lab: LabState):  # type: ignore[no-untyped-def]
    yield
    dns.clear_rules(lab.layout)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dns_answers_lab_names(lab: LabState, tcp: bool) -> None:
    reply = dns.query(lab.dns.host, lab.dns.port, dns.DB_NAME, tcp=tcp)
    assert [str(rr.rdata) for rr in reply.rr] == ["127.0.0.1"]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dns_dnsbl_test_point_is_listed(lab: LabState, tcp: bool) -> None:
    listed = dns.query(lab.dns.host, lab.dns.port, "2.0.0.127.zen.spamhaus.org", tcp=tcp)
    assert [str(rr.rdata) for rr in listed.rr] == ["127.0.0.2"]
    clean = dns.query(lab.dns.host, lab.dns.port, "1.0.0.127.zen.spamhaus.org", tcp=tcp)
    assert clean.header.rcode == 3 and not clean.rr  # NXDOMAIN


@pytest.mark.parametrize("mode,rcode", [("nxdomain", 3), ("servfail", 2)])
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dns_error_modes(lab: LabState, rules_cleared: None, mode: str, rcode: int,
                         tcp: bool) -> None:
    dns.set_rule(lab.layout, dns.DB_NAME, mode)
    reply = dns.query(lab.dns.host, lab.dns.port, dns.DB_NAME, tcp=tcp)
    assert reply.header.rcode == rcode and not reply.rr
    # other names are untouched
    assert dns.query(lab.dns.host, lab.dns.port, dns.SPAMD_NAME, tcp=tcp).rr


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dns_drop_never_answers(lab: LabState, rules_cleared: None, tcp: bool) -> None:
    dns.set_rule(lab.layout, dns.DB_NAME, "drop")
    with pytest.raises(OSError):  # socket.timeout is an OSError
        dns.query(lab.dns.host, lab.dns.port, dns.DB_NAME, tcp=tcp, timeout=0.5)
    dns.set_rule(lab.layout, dns.DB_NAME, "answer")
    assert dns.query(lab.dns.host, lab.dns.port, dns.DB_NAME, tcp=tcp).rr


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dns_delay_answers_late(lab: LabState, rules_cleared: None, tcp: bool) -> None:
    dns.set_rule(lab.layout, "zen.spamhaus.org", "delay", delay=0.6)
    t0 = time.monotonic()
    reply = dns.query(lab.dns.host, lab.dns.port, "2.0.0.127.zen.spamhaus.org", tcp=tcp,
                      timeout=5)
    elapsed = time.monotonic() - t0
    assert reply.rr
    assert elapsed >= 0.6  # never early; how late is a benchmark's business
    # a name outside the zone is not delayed
    t0 = time.monotonic()
    dns.query(lab.dns.host, lab.dns.port, dns.DB_NAME, tcp=tcp, timeout=5)
    assert time.monotonic() - t0 < 0.6


@pytest.mark.parametrize("guard", [False, True])
def test_maildrop_drops_an_empty_filtered_message_unless_the_filter_checks(
        lab: LabState, tmp_path: Path, guard: bool) -> None:
    """maildrop delivers nothing for an empty message and still exits 0 (its
    formatmbox.C: "Empty message, do not deliver."); the lab's empty_guard defers it."""
    from msgspec.structs import replace

    from spamdrill.drills.fakes import Fake
    from spamdrill.lab.config import LabConfig

    config = LabConfig()
    config = replace(config, maildrop=replace(config.maildrop, empty_guard=guard))
    fake = Fake("empty")
    try:
        rc = tmp_path / "maildroprc"
        rc.write_text(maildrop.render_filter(lab.layout, config, maildrop.spamc_command(
            config, "127.0.0.1", fake.port)))
        rc.chmod(0o600)
        before = maildrop.count_messages(lab.layout, "alice")
        done = subprocess.run(["maildrop", str(rc), "alice"], input=corpus.ham(7),
                              capture_output=True, timeout=120)
        assert fake.answered == 1
        assert maildrop.count_messages(lab.layout, "alice") == before  # nothing delivered
        if guard:
            assert done.returncode == 75 and b"empty message" in done.stdout, done
        else:
            assert done.returncode == 0, done  # and yet "delivered"
    finally:
        fake.close()


def test_databases_of_labs_side_by_side_install_without_crashing(tmp_path: Path) -> None:
    """Labs started side by side (two runs, a flood's variants) each install MariaDB's
    system tables. Sharing /tmp, concurrent bootstraps crashed (mariadbd signal 11 in
    ha_maria::drop_table: 4 of 14 runs 6 to 8 at once); each now has its own tmpdir."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from conftest import new_run_dir

    from spamdrill.lab.lab import secure_dir
    from spamdrill.lab.layout import Layout

    runs = [new_run_dir() for _ in range(6)]
    try:
        layouts = [Layout(secure_dir(run)) for run in runs]
        with ThreadPoolExecutor(len(layouts)) as pool:
            failed = [str(e) for e in pool.map(_install, layouts) if e is not None]
        assert failed == []
        assert all(any(layout.db_data.iterdir()) for layout in layouts)
    finally:  # six MariaDB data directories: not left in /tmp
        for run in runs:
            shutil.rmtree(run.parent, ignore_errors=True)


def _install(layout: object) -> Exception | None:
    from spamdrill.errors import SpamdrillError
    from spamdrill.lab.layout import Layout

    assert isinstance(layout, Layout)
    try:
        mariadb.install_datadir(layout)
    except SpamdrillError as exc:
        return exc
    return None
