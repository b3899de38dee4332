"""Wrappers measured, not parsed: each wrapper runs (under the interpreter its #! names on
this host) in the sandbox, with maildrop replaced by a stand-in; the table is what pipe(8)
would do. Lab tier: these start real interpreters in namespaces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import spamdrill

from spamdrill.budget import sandbox
from spamdrill.budget import wrappertable as wt

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
FIELD = ROOT / "src/spamdrill/drills/wrappers"
EXAMPLES = ROOT / "examples"
ARGV = ["/usr/local/bin/maildrop_wrapper", "-d", "${recipient}"]


def fates(table: wt.Table) -> dict[tuple[int, str, bool], str]:
    assert table.measured, table.how
    return {(r.case.status, r.case.stderr, r.case.reads): r.fate for r in table.rows}


def by_status(table: wt.Table, status: int) -> set[str]:
    return {f for (s, _, _), f in fates(table).items() if s == status}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_field_report_wrapper_under_dash_loses_every_failure() -> None:
    t = sandbox.measure(FIELD / "maildrop_wrapper.sh", ARGV)
    assert "/usr/bin/dash" in t.how or "dash" in Path("/bin/sh").resolve().name
    assert by_status(t, 0) == {"delivered"}
    for status in (64, 65, 67, 69, 75, 77, 100, wt.KILLED):
        assert by_status(t, status) == {"lost"}, status
    assert t.fate("timeout") == "lost"
    assert any("exit 75" in p and "LOST" in p for p in t.problems())


def test_same_wrapper_under_bash_bounces_75_and_77_and_loses_the_rest() -> None:
    t = sandbox.measure(FIELD / "maildrop_wrapper.bash", ARGV)
    assert by_status(t, 75) == by_status(t, 77) == {"bounced"}
    assert by_status(t, 69) == by_status(t, 100) == {"lost"}
    assert t.exit_of("timeout") == "exit 100"


def test_case_wrapper_bounces_75_where_a_parser_read_a_deferral(tmp_path: Path) -> None:
    path = write(tmp_path, "case.sh", '#!/bin/sh\n/usr/bin/maildrop "$@"\nrc=$?\n'
                 "case $rc in 75|77) exit 100;; *) exit $rc;; esac\n")
    t = sandbox.measure(path, ARGV)
    assert by_status(t, 75) == {"bounced"} and t.fate("timeout") == "bounced"
    assert by_status(t, 69) == {"bounced"} and by_status(t, 0) == {"delivered"}


def test_perl_wrappers_of_the_field_report() -> None:
    final = sandbox.measure(FIELD / "maildrop_wrapper_final.pl", ARGV)
    f = fates(final)
    assert f[(75, wt.TIMEOUT_TEXT, True)] == "deferred"  # 2>&1: it sees "timeout"
    assert f[(75, wt.UNABLE_TEXT, True)] == "bounced"
    assert f[(75, "", True)] == "bounced"
    assert by_status(final, wt.KILLED) == {"lost"}  # $? >> 8 of a signal is 0
    pietro = sandbox.measure(FIELD / "maildrop_wrapper_pietro_75.pl", ARGV)
    assert by_status(pietro, 75) == {"lost"}  # stdout only, unshifted $?
    ipc = sandbox.measure(FIELD / "maildrop_wrapper_ipc.pl", ARGV)
    assert by_status(ipc, 75) == {"deferred"} and by_status(ipc, 77) == {"bounced"}


def test_python_wrapper_passes_the_status_on(tmp_path: Path) -> None:
    path = write(tmp_path, "wrap.py", "#!/usr/bin/python3\nimport subprocess, sys\n"
                 "sys.exit(subprocess.run(['/usr/bin/maildrop', *sys.argv[1:]])"
                 ".returncode)\n")
    t = sandbox.measure(path, ARGV)
    assert "python3" in t.how
    assert by_status(t, 75) == {"deferred"} and by_status(t, 67) == {"bounced"}
    assert by_status(t, 0) == {"delivered"}


def test_exec_maildrop_by_name_is_maildrops_own_status(tmp_path: Path) -> None:
    t = sandbox.measure(write(tmp_path, "exec.sh", '#!/bin/sh\nexec maildrop "$@"\n'),
                        ARGV)
    direct = sandbox.direct("/usr/bin/maildrop")
    assert fates(t) == fates(direct)
    assert by_status(t, wt.KILLED) == {"deferred"}  # pipe(8): a signal defers


def test_a_wrapper_that_drops_its_input_loses_what_it_delivers(tmp_path: Path) -> None:
    path = write(tmp_path, "drop.sh", '#!/bin/sh\n/usr/bin/maildrop "$@" < /dev/null\n'
                 "exit $?\n")
    t = sandbox.measure(path, ARGV)
    assert by_status(t, 0) == {"lost"} and t.fate("delivered") == "lost"
    assert by_status(t, 75) == {"deferred"}


def test_a_wrapper_that_cannot_run_is_taken_at_its_worst(tmp_path: Path) -> None:
    gone = write(tmp_path, "gone.sh", "#!/bin/sh\nexec /opt/courier/bin/maildrop \"$@\"\n")
    t = sandbox.measure(gone, ARGV)
    assert not t.measured and "never ran maildrop" in t.how and "not found" in t.how
    assert t.fate("timeout") == "lost" and t.problems()
    missing = sandbox.measure(tmp_path / "absent", ARGV)
    assert not missing.measured and "cannot read" in missing.how
    odd = write(tmp_path, "odd", "#!/opt/nothing/here\n")
    assert "interpreter /opt/nothing/here is not on this host" in sandbox.measure(odd,
                                                                                  ARGV).how


def test_the_sandbox_keeps_the_host_read_only_and_offline(tmp_path: Path) -> None:
    """A wrapper that tries to write the host's files and reach the network: the stand-in
    still runs, the write and the connection fail, nothing appears outside."""
    import tempfile

    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))  # not under the sandbox's own /tmp
    target = outside / "written-by-wrapper"
    try:
        path = write(tmp_path, "nosy.sh",
                     f"#!/bin/bash\n(echo x > {target}) 2>/dev/null && exit 1\n"
                     "(exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && exit 2\n"
                     '/usr/bin/maildrop "$@"\nexit $?\n')
        t = sandbox.measure(path, ARGV)
        assert t.measured and by_status(t, 0) == {"delivered"}, t.how
        assert by_status(t, 75) == {"deferred"}
        assert not target.exists()
    finally:
        shutil.rmtree(outside)


def test_budget_etc_field_report_says_measured_and_lost() -> None:
    done = spamdrill("budget", "--etc", str(EXAMPLES / "field-report"), "--json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["wrapper"]["measured"] and "measured" in doc["wrapper"]["how"]
    modes = {m["mode"]: m for m in doc["modes"]}
    assert modes["spamd-accept-queue-full"]["outcome"] == "lost"
    assert any("exit 0 (measured)" in v["outer"]
               for v in modes["spamd-accept-queue-full"]["violations"])
    text = spamdrill("budget", "--etc", str(EXAMPLES / "field-report")).stdout
    assert "measured" in text and "LOST" in text


def test_budget_etc_with_the_bash_wrapper_bounces(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "field-report", root)
    shutil.copy(FIELD / "maildrop_wrapper.bash", root / "usr/local/bin/maildrop_wrapper")
    doc = json.loads(spamdrill("budget", "--etc", str(root), "--json").stdout)
    modes = {m["mode"]: m for m in doc["modes"]}
    assert modes["spamd-accept-queue-full"]["outcome"] == "bounced"


def test_a_wrapper_that_hangs_is_stopped_and_not_measured(tmp_path: Path) -> None:
    path = write(tmp_path, "hang.sh", '#!/bin/sh\n/usr/bin/maildrop "$@"\nexec sleep 600\n')
    t = sandbox.measure(path, ARGV, timeout_s=1)
    assert not t.measured and "hung in 3 runs in a row" in t.how
    assert t.fate("timeout") == "lost"


def test_spamdrill_deliver_is_measured_under_the_systems_own_policy(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "fixed", root)
    doc = json.loads(spamdrill("budget", "--etc", str(root), "--json").stdout)
    table = doc["wrapper"]
    assert table["measured"] and "spamdrill-deliver" in table["how"]
    rows = {(r["mda_status"], r["mda_stderr"], r["mda_read_stdin"]): r for r in table["rows"]}
    over = rows[(77, wt.TEXTS[77], True)]
    assert (over["fate"], over["dsn"]) == ("bounced", "5.2.2")  # over_quota = "bounce"
    assert rows[(75, wt.TIMEOUT_TEXT, True)]["dsn"] == "4.4.7"
    assert {r["fate"] for r in table["rows"]} <= {"delivered", "deferred", "bounced"}
    (root / "etc/spamdrill/deliver.toml").write_text("deadline = 600\n")
    doc = json.loads(spamdrill("budget", "--etc", str(root), "--json").stdout)
    rows = {(r["mda_status"], r["mda_stderr"], r["mda_read_stdin"]): r
            for r in doc["wrapper"]["rows"]}
    assert rows[(77, wt.TEXTS[77], True)]["fate"] == "deferred"  # the default: defer


@pytest.mark.parametrize("name,timeout,over_quota,other,killed", [
    ("maildrop_wrapper.sh", "lost", "lost", "lost", "lost"),  # dash: [[ not found
    ("maildrop_wrapper.bash", "bounced", "bounced", "lost", "lost"),
    ("maildrop_wrapper_final.pl", "deferred", "bounced", "bounced", "lost"),
    ("maildrop_wrapper_final_stderr.pl", "deferred", "bounced", "bounced", "lost"),
    ("maildrop_wrapper_ipc.pl", "deferred", "bounced", "bounced", "lost"),
    ("maildrop_wrapper_pietro.pl", "lost", "lost", "lost", "lost"),
    ("maildrop_wrapper_pietro_75.pl", "lost", "lost", "lost", "lost"),
    ("maildrop_wrapper_shellquote.pl", "lost", "lost", "lost", "lost"),
])
def test_every_field_report_wrapper(name: str, timeout: str, over_quota: str, other: str,
                                    killed: str) -> None:
    f = fates(sandbox.measure(FIELD / name, ARGV))
    assert f[(75, wt.TIMEOUT_TEXT, True)] == timeout
    assert f[(77, wt.TEXTS[77], True)] == over_quota
    assert f[(69, "", True)] == other
    assert f[(wt.KILLED, "", True)] == killed
    assert f[(0, "", True)] == "delivered"


def test_run_etc_judges_the_drills_by_the_measured_wrapper() -> None:
    """``spamdrill run --etc``: the drills' findings come from what the system's wrapper
    did in the sandbox, not from reading its text (the field report's #!/bin/sh wrapper
    was read as "bounces on 75"; under dash it loses the mail)."""
    from spamdrill.drills.findings import Budgets, judge
    from spamdrill.shaped.lab_of import lab_of
    from spamdrill.vocab import Fate

    shaped = lab_of(EXAMPLES / "field-report")
    d = shaped.config.delivery
    assert d.wrapper == "measured", d
    assert dict(d.wrapper_fates) == {"timeout": "lost", "filter-failed": "lost"}
    fate, _, why = judge(301.0, True, False, Budgets(300, 1000, d.wrapper, 600,
                                                       d.wrapper_fates))
    assert fate == Fate.LOST and "measured" in why
