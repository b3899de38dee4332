"""The system reader against the real programs: Postfix's postconf on the same files,
spamc 4.0.1 and maildrop on loopback listeners (a port that refuses, one that accepts
and never answers), and the command line on the example systems."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import spamdrill

from spamdrill.budget import model
from spamdrill.errors import SpamdrillError
from spamdrill.system import postfix, reader
from spamdrill.system import spamc as sc

pytestmark = pytest.mark.lab
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MESSAGE = b"Subject: budget\n\nhello\n"


def postconf(*args: str) -> str:
    if shutil.which("postconf") is None:
        pytest.fail("postconf not found: run scripts/setup.sh (Debian package postfix)")
    done = subprocess.run(["postconf", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


FRAGMENT = """\
command_time_limit = 20m
maildrop_time_limit = $command_time_limit
mydomain = example.org
myorigin = ${mydomain?$mydomain}
# a comment
myhostname = mail.$mydomain
   # an indented comment
smtpd_banner = $myhostname ESMTP ${mail_name:Postfix}
  continued $$ here
default_process_limit = 50
relayhost = ${nosuch_parameter:[smarthost]}
mailbox_size_limit = 0
mailbox_size_limit = 10
"""


def postfix_dirs(tmp_path: Path) -> Iterator[Path]:
    frag = tmp_path / "fragment"
    frag.mkdir()
    (frag / "main.cf").write_text(FRAGMENT)
    shutil.copy(EXAMPLES / "debian-stock/etc/postfix/master.cf", frag / "master.cf")
    yield frag
    for name in ("field-report", "debian-stock", "fixed"):
        yield EXAMPLES / name / "etc/postfix"


def fold(text: str) -> str:
    return " ".join(text.split())


NAMES = ("command_time_limit", "maildrop_time_limit", "default_process_limit",
         "maildrop_destination_recipient_limit", "virtual_transport", "mailbox_transport")


def test_main_cf_reader_agrees_with_postconf(tmp_path: Path) -> None:
    for d in postfix_dirs(tmp_path):
        entries = postfix.parse_master_cf((d / "master.cf").read_text(), "m")
        cf = postfix.parse_main_cf((d / "main.cf").read_text(), "c",
                                   tuple(e.service for e in entries))
        explicit = [line.split("=", 1)[0].strip() for line in
                    postconf("-c", str(d), "-n").splitlines()]
        names = sorted({*explicit, *NAMES} - {"config_directory"})
        raw = postconf("-c", str(d), "-h", *names).splitlines()
        expanded = postconf("-c", str(d), "-hx", *names).splitlines()
        for name, want_raw, want in zip(names, raw, expanded, strict=True):
            got_raw, got = cf.raw(name), cf.expanded(name)
            assert got_raw is not None and got is not None, (d, name)
            # postconf prints a value with its runs of whitespace folded to one space
            assert (fold(got_raw.value), fold(got.value)) == (want_raw, want), (d, name)


def test_master_cf_reader_agrees_with_postconf_m(tmp_path: Path) -> None:
    for d in postfix_dirs(tmp_path):
        ours = [e.normalised() for e in
                postfix.parse_master_cf((d / "master.cf").read_text(), "m")]
        theirs = [" ".join(line.split()) for line in
                  postconf("-c", str(d), "-M").splitlines()]
        assert ours == theirs, d


# ---- spamc 4.0.1 on loopback ---------------------------------------------------------

@pytest.fixture
def listeners() -> Iterator[dict[str, int]]:
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(silent.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield {"refuse": refusing.getsockname()[1], "silent": silent.getsockname()[1]}
    for s in [refusing, silent, *held]:
        s.close()


def run_spamc(args: list[str]) -> tuple[int, bytes, float]:
    t0 = time.monotonic()
    done = subprocess.run(["spamc", *args], input=MESSAGE, capture_output=True, timeout=60)
    return done.returncode, done.stdout, time.monotonic() - t0


@pytest.mark.parametrize("listener,args", [
    ("refuse", "-t 1"), ("refuse", "-t 1 -x"), ("refuse", "-t 1 -x -X"),
    ("refuse", "-t 1 -X -x"), ("silent", "-t 1"), ("silent", "-t 1 -x"),
    ("silent", "-t 1 -x -X"),
])
def test_spamc_outcome_follows_x_as_the_model_says(listeners: dict[str, int],
                                                   listener: str, args: str) -> None:
    argv = ["-d", "127.0.0.1", "-p", str(listeners[listener]), *args.split()]
    flags = sc.parse([(w, "test") for w in argv]).flags
    status, out, seconds = run_spamc(argv)
    if flags.safe_fallback:
        assert status == 0 and out == MESSAGE  # fails open: the message, unscanned
    else:
        assert status != 0 and out == b""  # -x: nothing, and a failure
        assert (status == 75) == (flags.unavail_tempfail and listener == "refuse")
    predicted = (model.spamc_model.refused(flags) if listener == "refuse"
                 else model.spamc_model.silent(flags))
    assert predicted is not None and abs(seconds - predicted) < 0.5


def test_spamc_host_list_skips_the_sleep_after_a_refusal(listeners: dict[str, int]) -> None:
    port = str(listeners["refuse"])
    for hosts, extra in (("127.0.0.1,127.0.0.2", []), ("127.0.0.1,127.0.0.2", ["-x"]),
                         ("127.0.0.1", [])):
        argv = ["-d", hosts, "-p", port, "-t", "1", *extra]
        predicted = model.spamc_model.refused(sc.parse([(w, "t") for w in argv]).flags)
        seconds = run_spamc(argv)[2]
        assert abs(seconds - predicted) < 0.5, (argv, seconds, predicted)
    assert predicted == 2  # one host: two sleeps; two hosts: one (see above)


@pytest.mark.parametrize("args", ["--connect-retry 1", "-q", "-t", "-t5", "-t -5",
                                  "--timeout", "-L maybe", "-s 300000000"])
def test_flags_we_reject_are_rejected_by_spamc(args: str) -> None:
    with pytest.raises(SpamdrillError):
        sc.parse([(w, "t") for w in args.split()])
    assert run_spamc(["-d", "127.0.0.1", "-p", "1", *args.split()])[0] == 64


def test_maildrop_xfilter_failure_in_and_outside_exception(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    subprocess.run(["maildirmake", str(maildir)], check=True)
    for inside, status in ((False, 75), (True, 0)):
        body = 'xfilter "cat >/dev/null; exit 69"'
        if inside:
            body = "exception {\n  " + body + "\n}"
        rc = tmp_path / f"rc{int(inside)}"
        rc.write_text(f'SHELL="/bin/sh"\n{body}\nto "{maildir}/"\n')
        rc.chmod(0o600)
        done = subprocess.run(["maildrop", str(rc), "nobody"], input=MESSAGE,
                              capture_output=True, timeout=30)
        assert done.returncode == status, done.stderr
        if not inside:
            assert b"Unable to filter message." in done.stderr


# ---- the command line on the example systems ------------------------------------------

@pytest.mark.parametrize("name,code", [("field-report", 1), ("debian-stock", 1),
                                       ("fixed", 0)])
def test_cli_budget_etc_on_each_example(name: str, code: int) -> None:
    done = spamdrill("budget", "--etc", str(EXAMPLES / name), "--json")
    assert done.returncode == code, done.stderr
    doc = json.loads(done.stdout)
    assert {"limits", "modes", "xfilters", "notes"} <= set(doc)
    for row in doc["limits"]:
        assert row["source"] and ("default of" in row["source"] or ":" in row["source"]
                                  or "kernel" in row["source"]
                                  or "deliver.toml (deadline)" in row["source"]), row


def test_unmeasurable_wrapper_assumption_is_in_every_row_it_decides(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "field-report", root)
    (root / "usr/local/bin/maildrop_wrapper").write_text("#!/usr/bin/env python3\n")
    doc = json.loads(spamdrill("budget", "--etc", str(root), "--json").stdout)
    decided = [m for m in doc["modes"] if m["outcome"] == "lost"]  # maildrop's 75
    assert decided and all(any("never ran maildrop" in a and "worst assumed" in a
                               for a in m["assumptions"]) for m in decided)
    assert doc["wrapper"]["measured"] is False


@pytest.mark.parametrize("setup,message", [
    ({"usr/local/bin/x": None, "etc/spamdrill/deliver.toml": 'deadline = "ten"\n'},
     "deadline must be seconds above 0"),
    ({"etc/spamdrill/deliver.toml": "deadline = -5\n"},
     "deadline must be seconds above 0"),
    ({"etc/spamdrill/deliver.toml": "deadline = \n"}, "is not valid TOML"),
    ({"etc/maildroprc": 'xfilter "/usr/bin/spamc -t 100 --connect-retry 1"\n'},
     "etc/maildroprc:1: spamc flag --connect-retry: option not found"),
    ({"etc/postfix/main.cf": "maildrop_time_limit = ten\n"},
     "main.cf:1: maildrop_time_limit = 'ten' is not a Postfix time value"),
    ({"etc/default/spamd": 'OPTIONS="--max-children=lots"\n'},
     "etc/default/spamd:1: spamd: Value 'lots' invalid for option max-children"),
    ({"etc/spamassassin/local.cf": "user_scores_dsn mysql:sa\n"},
     "local.cf:1: 'mysql:sa' is not a DBI DSN"),
])
def test_cli_budget_bad_system_files(tmp_path: Path, setup: dict[str, str | None],
                                     message: str) -> None:
    import shutil

    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "fixed", root)
    for rel, text in setup.items():
        if text is not None:
            (root / rel).write_text(text)
    done = spamdrill("budget", "--etc", str(root))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_deliver_config_flag_goes_through_the_wrappers_own_loader(tmp_path: Path) -> None:
    bad = tmp_path / "deliver.toml"
    bad.write_text('deadline = "ten"\n')
    done = spamdrill("budget", "--etc", str(EXAMPLES / "fixed"), "--deliver-config", str(bad))
    assert done.returncode == 2 and "deadline must be seconds above 0" in done.stderr
    good = tmp_path / "good.toml"
    good.write_text("deadline = 250\n")
    system = reader.read(EXAMPLES / "field-report", reader.Overrides(deliver_config=good))
    assert system.deliver_deadline is not None and system.deliver_deadline.value == 250
    assert system.wrapper.kind == "spamdrill-deliver"


