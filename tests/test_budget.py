"""The budget model (from libspamc.c, globaltimer.C, pipe_command.c), its config readers on
real-shaped files, and the command line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import spamdrill
from hypothesis import given, settings
from hypothesis import strategies as st

from spamdrill import fixes
from spamdrill.budget import icmp, inputs, model
from spamdrill.budget import spamc as sm
from spamdrill.system import maildroprc
from spamdrill.system import spamc as spamc_reader

FIELD_REPORT_MAILDROPRC = """\
exception {
  if ( $SIZE < 250000 )
  {
    `logger -t maildrop -pmail.info "Checking for spam: $FR $TO"`
    xfilter "/usr/bin/spamc -d spamd2-pn -t 100 -u $LOGNAME"
  }
  if (/^X-Spam-Flag: YES/)
  {
    exception {
      `logger -t maildrop -pmail.info "Found spam: $FR $TO ($SUB)"`
       to "$DEFAULT/.Spam/"
    }
  }
}
"""


def modes(setup: model.Setup) -> dict[str, model.ModeResult]:
    return {r.mode: r for r in model.evaluate(setup)}


@pytest.mark.unit
def test_spamc_arithmetic_from_libspamc() -> None:
    f = sm.parse_args("-d spamd2-pn -t 100 -u someone")
    assert sm.refused(f) == 2  # 3 tries, 1 s between
    assert sm.accept_queue_full(f) == 302  # the field report's "3x longer"
    assert sm.silent(f) == 100
    assert sm.slow_drip(f) is None
    f2 = sm.parse_args(["-d", "127.0.0.1", "-t", "5", "-n", "2", "--connect-retries=4",
                        "--retry-sleep", "3",
                        "--filter-retries", "2", "--filter-retry-sleep", "4"])
    assert sm.accept_queue_full(f2) == 4 * 2 + 3 * 3
    assert sm.silent(f2) == 2 * 5 + 4
    assert sm.silent(sm.parse_args("-t 0")) is None  # 0 disables the timeout
    assert sm.parse_args("--filter-retries 0").filter_retries == 1  # 0 means once
    assert sm.parse_args("").timeout == 600  # spamc's default


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["-t", "-t soon", "--connect-retries=-2"])
def test_spamc_bad_flags(bad: str) -> None:
    with pytest.raises(Exception, match="spamc flag"):
        sm.parse_args(bad)


def field_report_spamc() -> sm.SpamcFlags:
    rc = maildroprc.parse(FIELD_REPORT_MAILDROPRC, "/etc/maildroprc")
    return spamc_reader.parse(rc.spamc_filters[0].spamc or []).flags


@pytest.mark.unit
def test_field_report_setup_bounces_on_a_full_accept_queue() -> None:
    setup = model.Setup(spamc=field_report_spamc(), wrapper="bounce-on-75")
    r = modes(setup)
    q = r["spamd-accept-queue-full"]
    assert (q.worst_s, q.outcome, q.fires_first) == (302, "bounced",
                                                     "maildrop global timeout")
    assert "-n 89" in q.violations[0].fix  # 30 s below maildrop's 300 s
    assert r["spamd-refused"].outcome == "delivered unscanned"
    drip = r["spamd-slow-drip"]
    assert drip.spamc_s is None and drip.outcome == "bounced" and drip.worst_s == 1000
    assert drip.public()["worst_s"] == 1000 and drip.public()["spamc_s"] is None


@pytest.mark.unit
def test_spamdrill_deliver_turns_every_overrun_into_a_deferral() -> None:
    setup = model.Setup(spamc=sm.parse_args("-t 100"), wrapper="spamdrill-deliver")
    for r in model.evaluate(setup):
        assert r.outcome != "bounced", r
    assert modes(setup)["spamd-slow-drip"].outcome == "deferred"


@pytest.mark.unit
def test_plain_maildrop_defers_but_postfix_limit_bounces_a_hung_spamc() -> None:
    r = modes(model.Setup(spamc=sm.parse_args("-d 10.0.0.1 -t 100"), wrapper="none"))
    assert r["spamd-accept-queue-full"].outcome == "deferred"
    assert r["spamd-slow-drip"].outcome == "bounced"  # pipe held open until 1000 s


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(t=st.integers(1, 400), retries=st.integers(1, 5), sleep=st.integers(0, 5),
       fretries=st.integers(1, 3), maildrop=st.integers(60, 600))
def test_every_suggested_spamc_fix_removes_its_violation(t: int, retries: int, sleep: int,
                                                         fretries: int, maildrop: int) -> None:
    base = model.Setup(spamc=sm.parse_args(
        f"-d 10.0.0.1 -t {t} --connect-retries {retries} --retry-sleep {sleep} "
        "--filter-retries "
        f"{fretries}"), maildrop_timeout=maildrop, wrapper="spamdrill-deliver",
        wrapper_deadline=maildrop + 100)
    for r in model.evaluate(base):
        for v in r.violations:
            fix = v.fix.split(" (")[0].split(", or")[0]
            if not fix.startswith("spamc "):
                continue
            # the fix's flags, given after the current ones, win (as on spamc's command line)
            fixed = replace(base, spamc=sm.parse_args([*base_args(base), *fix.split()[1:]]))
            after = modes(fixed)[r.mode]
            assert not after.violations, (r.mode, v.fix, after)


def base_args(setup: model.Setup) -> list[str]:
    f = setup.spamc
    return ["-d", "10.0.0.1", "-t", str(int(f.timeout)), "--connect-retries",
            str(f.connect_retries),
            "--retry-sleep", str(int(f.retry_sleep)), "--filter-retries",
            str(f.filter_retries)]


@pytest.mark.unit
def test_budget_flags_replace_single_files(tmp_path: Path) -> None:
    pf = tmp_path / "postfix"
    pf.mkdir()
    (pf / "main.cf").write_text("command_time_limit = 20m\nmaildrop_time_limit = 900s\n"
                                "maildrop_destination_recipient_limit = 1\n")
    (pf / "master.cf").write_text(
        "smtp inet n - y - - smtpd\n"
        "maildrop  unix  -       n       n       -       -       pipe\n"
        "  flags=DRhu user=vmail argv=/usr/local/bin/maildrop_wrapper\n"
        "  -d ${recipient}\n")
    rc = tmp_path / "maildroprc"
    rc.write_text(FIELD_REPORT_MAILDROPRC)
    empty = tmp_path / "root"
    empty.mkdir()
    setup = inputs.gather(etc=empty, maildroprc=rc, postfix_dir=pf)
    assert setup.postfix_time_limit == 900 and setup.wrapper == "unmeasured"
    assert setup.wrapper_assumption and setup.fate("timeout") == "lost"
    assert setup.spamc.timeout == 100 and "maildroprc" in setup.spamc.source
    assert setup.xfilter_in_exception


@pytest.mark.unit
def test_debian_default_spamd_file(tmp_path: Path) -> None:
    # the file Debian's spamd package installs, read as it is
    setup = inputs.gather(etc=tmp_path, spamd_default=Path("/etc/default/spamd"))
    assert setup.spamd_max_children == 5 and setup.spamd_timeout_child == 300
    assert setup.sources["spamd"] == "default of spamd 4.0.1"


@pytest.mark.lab
def test_cli_budget_json_contract(tmp_path: Path) -> None:
    rc = tmp_path / "maildroprc"
    rc.write_text(FIELD_REPORT_MAILDROPRC)
    done = spamdrill("budget", "--etc", str(tmp_path), "--maildroprc", str(rc),
                     "--link-rate", "4000", "--json")
    assert done.returncode == 1, done.stderr  # the field report's setup has violations
    doc = json.loads(done.stdout)
    assert {"layer", "seconds", "source"} <= set(doc["limits"][0])
    names = {m["mode"] for m in doc["modes"]}
    assert set(model.MODES) <= names
    for m in doc["modes"]:
        assert {"mode", "worst_s", "fires_first", "outcome", "violations"} <= set(m)
        assert m["worst_s"] is None or isinstance(m["worst_s"], int | float)
        for v in m["violations"]:
            assert set(v) == {"inner", "outer", "fix"}
    fixed = spamdrill("budget", "--etc", str(tmp_path), "--maildroprc", str(rc),
                      "--spamc-args", "-n 30",
                      "--wrapper", "spamdrill-deliver", "--link-rate", "4000", "--json")
    assert fixed.returncode == 0, fixed.stdout
    assert all(not m["violations"] for m in json.loads(fixed.stdout)["modes"])


@pytest.mark.parametrize("args,expected", [
    (["--maildroprc", "/nonexistent"], "/nonexistent not found"),
    (["--spamc-args", "-t soon"], "is not a whole number"),
    (["--spamc-args", "-t 100 --connect-retry 1"], "--connect-retry: option not found"),
    (["--spamd-args", "--timeout-child"], "requires an argument"),
    (["--etc", "/nonexistent"], "--etc /nonexistent: no such directory"),
])
@pytest.mark.lab
def test_cli_budget_bad_input(args: list[str], expected: str, tmp_path: Path) -> None:
    done = spamdrill("budget", "--etc", str(tmp_path), *args)
    assert done.returncode == 2 and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.unit
def test_resolver_cost_follows_glibc_and_mariadb_connector() -> None:
    # glibc res_send.c: attempts x every server; server i waits (timeout << i) / servers
    assert model.libc_dead_lookup_s(5, 2, 1) == 10
    assert model.libc_dead_lookup_s(5, 2, 2) == 2 * (5 + 5)
    assert model.libc_dead_lookup_s(5, 2, 3) == 2 * (5 + 10 // 3 + 20 // 3)
    # Connector/C pvio_socket.c: sleeps of 1 us doubling until more than 30 whole seconds;
    # with lookups that fail at once only the sleeps count: 2^25 us
    assert model.connector_dns_wait_s(0.0) == pytest.approx(2**25 * 1e-6)
    assert model.connector_dns_wait_s(0.0, 5) == pytest.approx(2**23 * 1e-6)
    assert 40 <= model.connector_dns_wait_s(10.0) < 40.01  # lookups at 0, 10, 20, 30 s
    assert 31 <= model.connector_dns_wait_s(1.0) <= 34  # 1 s lookups: the lab's resolver


@pytest.mark.unit
def test_dns_modes_depend_on_how_the_dsn_names_the_database() -> None:
    by_name = {r.mode: r for r in model.evaluate(model.Setup(db_host_is_name=True))}
    by_ip = {r.mode: r for r in model.evaluate(model.Setup())}
    # by name: spamd fails the message after Connector/C's loop (unscanned, never a scan)
    assert by_name["dns-dead"].spamd_s == pytest.approx(model.connector_dns_wait_s(10.0))
    assert by_name["dns-dead"].outcome == "delivered unscanned"
    assert by_name["dns-db-servfail"].outcome == "delivered unscanned"
    # by address: only the DNSBL lookups wait, until rbl_timeout, and the scan completes
    assert by_ip["dns-dead"].spamd_s == 15 and by_ip["dns-dead"].outcome == "delivered"


@pytest.mark.unit
def test_slow_link_upload_counts_against_t() -> None:
    t100 = sm.parse_args("-t 100")
    # 1,200 B/s: up to 120 kB go up within -t and are scanned, taking 2 x -t at worst
    link = sm.slow_link(t100, 1200)
    assert link.largest_scanned == 120_000 and link.worst_scanned and link.worst_s == 200
    # a fast link: every size up to -s (500 KB) is scanned, up and back
    fast = sm.slow_link(t100, 100_000)
    assert fast.largest_scanned is None and fast.worst_s == pytest.approx(2 * 512_000 / 1e5)
    # filter retries re-send the message: failing open can outlast the largest scan
    retry = sm.slow_link(sm.parse_args("-t 100 --filter-retries 3"), 1200)
    assert not retry.worst_scanned and retry.worst_s == 3 * 100 + 2 * 1
    # no -t: nothing gives up, every message is scanned however long it takes
    assert sm.slow_link(sm.parse_args("-t 0"), 1200).worst_s == pytest.approx(
        2 * 512_000 / 1200)


@pytest.mark.unit
def test_net_slow_mode_only_with_a_link_rate_and_its_fix_works() -> None:
    assert "net-slow" not in modes(model.Setup())
    slow = model.Setup(spamc=sm.parse_args("-t 200"), link_rate=1200)
    bad = modes(slow)["net-slow"]
    assert bad.worst_s == 400 and bad.violations and bad.outcome == "deferred"
    t_fix = int(bad.violations[0].fix.split()[2])
    good = modes(replace(slow, spamc=sm.parse_args(f"-t {t_fix}")))["net-slow"]
    assert not good.violations and good.outcome == "delivered"


@pytest.mark.unit
def test_icmp_reject_simulation_follows_the_kernels_rate_limit() -> None:
    t3 = sm.parse_args("-d 127.0.0.1 -t 3")
    # one spamc: every connect refused at once, as 'refused' (two 1 s sleeps) ...
    assert icmp.simulate(1, t3).worst_s == sm.refused(t3) == 2
    # ... unless the first ICMP comes back inside connect() (no delay between the hosts):
    # each try then fails at the SYN sent again after 1 s
    assert icmp.simulate(1, t3, soft_first=True).worst_s == 3 * 1 + 2
    # the burst of 6 serves six at once; beyond it, SYNs go unanswered
    six = icmp.simulate(6, t3)
    assert six.sent >= 6 and six.limited > 0 and six.worst_s > sm.refused(t3)
    # many at once: nearly everyone waits out every connect timeout, as if dropped
    many = icmp.simulate(100, t3)
    assert many.worst_s == sm.accept_queue_full(t3)
    worst = [icmp.simulate(n, t3).worst_s for n in (1, 2, 4, 8, 16, 32)]
    assert worst == sorted(worst)  # never better with more at once
    # the kernel sends no more than its bucket allows: 6 at once, then one a second
    assert many.sent <= 6 + many.worst_s
    # SYN resends: doubling, or 5 at 1 s first (tcp_syn_linear_timeouts 4, as counted here)
    assert icmp.syn_offsets(200) == [0, 1, 3, 7, 15, 31, 63]
    assert icmp.syn_offsets(12, linear=4) == [0, 1, 2, 3, 4, 5, 7, 11]
    # the lab's spamd-unreachable drill (8 at once, -t 3, veth): its kernel counted 16 ICMPs
    # sent and 51 held back; the last four spamc gave up at 11 s
    lab = icmp.simulate(8, t3, soft_first=True, syn_linear=4)
    assert lab.sent == 16 and abs(lab.limited - 51) <= 3 and lab.ends[-3:] == [11, 11, 11]


@pytest.mark.unit
def test_kernel_syn_linear_timeouts_reader(tmp_path: Path) -> None:
    f = tmp_path / "tcp_syn_linear_timeouts"
    f.write_text("4\n")
    assert inputs.kernel_syn_linear_timeouts(f) == 4
    assert inputs.kernel_syn_linear_timeouts(tmp_path / "absent") == 0  # older kernels


@pytest.mark.unit
def test_spamd_rejected_mode_uses_the_maildrop_services_concurrency(tmp_path: Path) -> None:
    t100 = sm.parse_args("-d 10.0.0.1 -t 100")
    burst = modes(model.Setup(spamc=t100))["spamd-rejected"]  # 100 at once: Postfix's default
    assert burst.worst_s == 302 and burst.violations
    assert "TCP reset" in burst.violations[0].fix
    few = modes(model.Setup(spamc=t100, concurrency=1))["spamd-rejected"]
    assert few.worst_s == 2 and not few.violations
    pf = tmp_path / "pf"
    pf.mkdir()
    (pf / "main.cf").write_text("default_process_limit = 7\n")
    (pf / "master.cf").write_text("maildrop unix - n n - - pipe\n"
                                  "  flags=DRhu user=vmail argv=/usr/bin/maildrop -d x\n")
    assert inputs.gather(etc=tmp_path, postfix_dir=pf).concurrency == 7
    (pf / "master.cf").write_text("maildrop unix - n n - 3 pipe\n"
                                  "  flags=DRhu user=vmail argv=/usr/bin/maildrop -d x\n")
    assert inputs.gather(etc=tmp_path, postfix_dir=pf).concurrency == 3
    assert inputs.gather(etc=tmp_path, postfix_dir=pf, concurrency=9).concurrency == 9


# ---- only what is there ----------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def system_modes(root: Path) -> dict[str, model.ModeResult]:
    from spamdrill.system import reader

    system = reader.read(root)
    setups = inputs.setups(system)
    return modes(setups[inputs.limiting(setups)])


def example_copy(tmp_path: Path, name: str) -> Path:
    import shutil

    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root)
    return root


@pytest.mark.unit
def test_no_sql_means_no_database_rows() -> None:
    r = system_modes(EXAMPLES / "debian-stock")
    for mode in ("db-unreachable", "db-locked", "dns-db-servfail"):
        assert r[mode].outcome == "n/a" and "no SQL" in r[mode].why
        assert r[mode].worst_s is None and not r[mode].violations
    assert r["spamd-silent"].outcome != "n/a"


@pytest.mark.unit
def test_database_name_in_hosts_counts_only_when_nsswitch_asks_files_first(
        tmp_path: Path) -> None:
    root = example_copy(tmp_path, "fixed")
    r = system_modes(root)
    assert r["dns-db-servfail"].outcome == "n/a" and "etc/hosts" in r["dns-db-servfail"].why
    (root / "etc/nsswitch.conf").write_text("hosts: dns [!UNAVAIL=return] files\n")
    assert system_modes(root)["dns-db-servfail"].outcome != "n/a"
    (root / "etc/nsswitch.conf").unlink()  # glibc without the file asks DNS first; the
    assert system_modes(root)["dns-db-servfail"].outcome == "n/a"  # Debian default assumed


@pytest.mark.unit
def test_no_spamc_in_any_xfilter_and_mail_to_lmtp_leave_nothing_to_budget(
        tmp_path: Path) -> None:
    root = example_copy(tmp_path, "debian-stock")
    (root / "etc/maildroprc").write_text('xfilter "/usr/bin/reformail -A X-Seen:1"\n')
    r = system_modes(root)
    assert {m.outcome for m in r.values()} == {"n/a"}
    assert "no xfilter" in r["spamd-silent"].why and "runs spamc" in r["spamd-silent"].why
    root = example_copy(tmp_path, "fixed")
    main = root / "etc/postfix/main.cf"
    main.write_text(main.read_text().replace("virtual_transport = maildrop",
                                             "virtual_transport = lmtp:unix:private/lmtp"))
    r = system_modes(root)
    assert {m.outcome for m in r.values()} == {"n/a"}
    assert "virtual_transport = lmtp:unix:private/lmtp" in r["db-locked"].why


@pytest.mark.unit
def test_resolver_search_ndots_rotate() -> None:
    from spamdrill.system import net

    r = net.resolv_conf("search a.example b.example\nnameserver 10.0.0.1\n"
                        "options ndots:3 rotate timeout:1 attempts:1\n", "/r")
    assert (r["resolv_search"].value, r["resolv_ndots"].value) == (2, 3)
    assert "resolv_rotate" in r and r["resolv_search"].source == "/r:1"
    # as is, then the first search domain: one dead lookup more, however long the list
    assert model.dead_name_lookup_s(1, 1, 1, 2) == 2 * model.libc_dead_lookup_s(1, 1, 1)
    assert model.dead_name_lookup_s(5, 2, 1, 0) == 10
    base = model.Setup(spamc=sm.parse_args("-d spamd.example -t 100"),
                       spamd_names_by_dns=1, resolv_timeout=5, resolv_attempts=2)
    assert modes(base)["dns-dead"].spamc_s == 10
    assert modes(replace(base, resolv_search=1))["dns-dead"].spamc_s == 20
    assert not net.hosts_files_first("hosts: dns files\n")
    assert net.hosts_files_first("hosts: files mdns4_minimal [NOTFOUND=return] dns\n")
    assert not net.hosts_files_first(None)


@pytest.mark.unit
@given(t=st.integers(101, 900), maildrop=st.integers(30, 900))
def test_suggested_fixes_keep_a_margin_below_the_limit(t: int, maildrop: int) -> None:
    setup = model.Setup(spamc=sm.parse_args(f"-d 10.0.0.1 -t {t}"),
                        maildrop_timeout=maildrop, wrapper="spamdrill-deliver",
                        wrapper_deadline=maildrop + 100)
    margin = fixes.fix_margin_s(maildrop)
    assert margin >= 5 and margin >= maildrop / 10
    for r in model.evaluate(setup):
        for v in r.violations:
            if v.fix.startswith("spamc -t "):
                assert int(v.fix.split()[2]) <= maildrop - margin, v.fix
                assert f"{margin:g} s below" in v.fix


@pytest.mark.lab
@pytest.mark.parametrize("name,absent", [
    ("debian-stock", {"db-unreachable", "db-locked", "dns-db-servfail"}),
    ("field-report", set()),
    ("fixed", {"dns-db-servfail"}),
])
def test_cli_budget_examples_show_no_row_for_an_absent_component(name: str,
                                                                 absent: set[str]) -> None:
    done = spamdrill("budget", "--etc", str(EXAMPLES / name), "--json")
    doc = json.loads(done.stdout)
    assert {m["mode"] for m in doc["modes"] if m["outcome"] == "n/a"} == absent
    for m in doc["modes"]:
        if m["outcome"] == "n/a":
            assert m["why"] and m["worst_s"] is None and not m["violations"]
    text = spamdrill("budget", "--etc", str(EXAMPLES / name)).stdout
    for mode in absent:
        assert any(line.startswith("n/a: ") and mode in line for line in text.splitlines())
        assert not any(line.startswith(f"│ {mode} ") for line in text.splitlines())


@pytest.mark.lab
def test_cli_budget_empty_etc_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = spamdrill("budget", "--etc", str(tmp_path))
    assert done.returncode == 2 and not done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no Postfix" in done.stderr and "maildroprc" in done.stderr
    assert "SpamAssassin" in done.stderr


# ---- shell injection in the maildroprc -------------------------------------------------

@pytest.mark.unit
def test_maildroprc_shell_injection_risks_are_flagged_with_line_and_safe_form() -> None:
    rc = maildroprc.parse(
        'SUBJ=`reformail -x Subject:`\n'
        'RCPT="$1"\n'
        'xfilter "/usr/bin/spamc -u $1"\n'            # 3: pasted by maildrop
        'xfilter "/usr/bin/spamc -u $LOGNAME"\n'      # 4: the account: not free text
        "xfilter '/usr/bin/spamc -u \"$RCPT\"'\n"     # 5: the safe form
        "xfilter '/usr/bin/spamc -u $RCPT'\n"         # 6: split and globbed
        '`logger -t x "$SUBJ"`\n'                     # 7: safe
        '`logger -t x $SUBJ`\n'                       # 8: split and globbed
        'to "| /usr/bin/procmail -a $FROM"\n'         # 9: pasted
        'CLEAN="x"\n'
        'xfilter "spamc -u \\$FROM $CLEAN $SIZE"\n', "/etc/maildroprc")
    lines = sorted(int(r.split(":")[1]) for r in rc.risks)
    assert lines == [3, 6, 8, 9], rc.risks
    three = next(r for r in rc.risks if r.startswith("/etc/maildroprc:3:"))
    assert "ARG1=\"$1\"" in three and "xfilter '... \"$ARG1\" ...'" in three
    assert any("$RCPT" in r and "Safe: \"$RCPT\"" in r for r in rc.risks)


@pytest.mark.lab
def test_real_maildrop_runs_what_a_flagged_line_pastes_and_not_the_safe_form(
        tmp_path: Path) -> None:
    """The rule measured: maildrop 2.9.3 pastes a variable into a double-quoted xfilter
    before the shell parses it; the flagged form runs the sender's command, the safe form
    does not."""
    import subprocess

    pwned = tmp_path / "pwned"
    evil = f'x"; touch {pwned}; "'
    for body, flagged in (('xfilter "cat; echo \\"$SUBJ\\" >/dev/null"\n', True),
                          ("xfilter 'cat; echo \"$SUBJ\" >/dev/null'\n", False)):
        text = f"SUBJ=`printf '%s' '{evil}'`\n{body}"
        rc = tmp_path / "rc"
        rc.write_text(text)
        rc.chmod(0o600)
        subprocess.run(["maildrop", str(rc)], input=b"From: a@b\n\nx\n", timeout=30,
                       capture_output=True, cwd=tmp_path, check=False)
        assert pwned.exists() == flagged, body
        assert bool(maildroprc.parse(text, str(rc)).risks) == flagged
        pwned.unlink(missing_ok=True)


@pytest.mark.lab
def test_cli_budget_shows_the_risk(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "debian-stock", root)
    (root / "etc/maildroprc").write_text('xfilter "/usr/bin/spamc -u $1"\n')
    done = spamdrill("budget", "--etc", str(root))
    assert done.returncode == 1 and "risk:" in done.stdout
    assert "maildroprc:1:" in done.stdout and "xfilter pastes $1" in done.stdout
    doc = json.loads(spamdrill("budget", "--etc", str(root), "--json").stdout)
    assert len(doc["risks"]) == 1 and doc["risks"][0].startswith(str(root))


# ---- the wrapper's table, sans-IO ------------------------------------------------------

@pytest.mark.unit
def test_wrapper_table_judges_lost_and_duplicated_from_what_the_stand_in_saw() -> None:
    from spamdrill.budget import wrappertable as wt

    fail = wt.Case(75, wt.TIMEOUT_TEXT, True)
    ok = wt.Case(0, "", True)
    # exit 0 while maildrop failed: Postfix counts it delivered, the mail is gone
    assert wt.row(wt.Observed(fail, 0, None, False, b"", 1, wt.MESSAGE)).fate == "lost"
    # exit 0, maildrop "delivered" other bytes (the wrapper dropped its input): lost
    assert wt.row(wt.Observed(ok, 0, None, False, b"", 1, b"")).fate == "lost"
    assert wt.row(wt.Observed(ok, 0, None, False, b"", 0, None)).fate == "lost"
    assert wt.row(wt.Observed(ok, 0, None, False, b"", 1, wt.MESSAGE)).fate == "delivered"
    # delivered, then the wrapper defers: Postfix delivers it again
    assert wt.row(wt.Observed(ok, 75, None, False, b"", 1, wt.MESSAGE)).fate == "duplicated"
    assert wt.row(wt.Observed(fail, 100, None, False, b"", 1, wt.MESSAGE)).fate == "bounced"
    hung = wt.row(wt.Observed(fail, None, 9, True, b"", 1, wt.MESSAGE))
    assert hung.fate == "bounced" and hung.wrapper.startswith("hung")
    assert wt.row(wt.Observed(fail, None, 9, False, b"", 1, None)).fate == "deferred"
    table = wt.unmeasured("/w", "why")
    assert table.fate("timeout") == "lost" and table.fate("delivered") == "delivered"
    assert table.problems() and "why" in table.how


@pytest.mark.unit
def test_wrapper_table_inputs() -> None:
    from spamdrill.budget import wrappertable as wt

    assert wt.expand_argv(["/w", "-d", "${recipient}", "$sender", "${user}@${nexthop}",
                           "${extension}"]) == ["/w", "-d", "user@example.org",
                                                "sender@example.net", "user@example.org", ""]
    assert wt.interpreter(b"#!/usr/bin/perl -w\nprint;\n") == ["/usr/bin/perl", "-w"]
    assert wt.interpreter(b"#! /bin/sh\n") == ["/bin/sh"]
    assert wt.interpreter(b"echo hi\n") is None
    assert wt.mda_paths(["/w", "/opt/x/maildrop"], b"exec /usr/local/bin/maildrop -d") == \
        ["/opt/x/maildrop", "/usr/local/bin/maildrop"]
    statuses = {c.status for c in wt.CASES}
    assert statuses == {0, 64, 65, 67, 69, 75, 77, 100, wt.KILLED}
    assert {c.reads for c in wt.CASES if c.status == 75} == {True, False}
    assert set(wt.EVENTS.values()) <= set(wt.CASES)
