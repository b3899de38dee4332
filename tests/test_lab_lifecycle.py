"""lab up / status / down through the real command line, including crashes and bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import spamdrill

from spamdrill.lab import lab as lab_ops
from spamdrill.lab.journal import Journal
from spamdrill.lab.net import tcp_open
from spamdrill.lab.procs import MARKER, marked_pids, start_ticks

pytestmark = pytest.mark.lab


def lab_pids(run_dir: Path) -> list[int]:
    """Every live process of the lab (spamd's children included)."""
    return sorted(lab_ops.lab_pids(run_dir))


def one_error_line(stderr: str) -> str:
    """The error is one line (progress lines, marked '…', may precede it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("spamdrill: error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], stderr
    assert all(line.startswith("… ") for line in lines[:-1]), stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_up_status_down(run_dir: Path) -> None:
    up = spamdrill("lab", "up", "--run-dir", str(run_dir))
    assert up.returncode == 0, up.stderr
    status = spamdrill("lab", "status", "--json", "--run-dir", str(run_dir))
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["run_dir"] == str(run_dir)
    comps = {c["name"]: c for c in doc["components"]}
    assert {"spamd", "mariadb", "dns"} <= set(comps)
    for name in ("spamd", "mariadb", "dns"):
        c = comps[name]
        assert c["up"] is True and isinstance(c["pid"], int) and c["port"] > 0, c
        assert c["host"].startswith("127.")
    ports = [(comps[n]["host"], comps[n]["port"]) for n in ("spamd", "mariadb", "dns")]
    state = json.loads((run_dir / "lab.json").read_text())
    pids = lab_pids(run_dir)
    assert len(pids) >= 4  # dns, mariadbd, spamd and at least one spamd child

    again = spamdrill("lab", "up", "--run-dir", str(run_dir))
    assert again.returncode != 0
    assert "already running" in one_error_line(again.stderr)

    down = spamdrill("lab", "down", "--run-dir", str(run_dir))
    assert down.returncode == 0, down.stderr
    assert list(marked_pids(state["marker"])) == []
    assert [p for p in pids if start_ticks(p) is not None] == []
    for host, port in ports:
        assert not tcp_open(host, port), (host, port)
    after = spamdrill("lab", "status", "--json", "--run-dir", str(run_dir))
    assert after.returncode == 1
    assert json.loads(after.stdout)["components"] == []


def test_down_cleans_after_sigkill_of_lab_up(run_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "spamdrill", "lab", "up", "--run-dir",
                             str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait until it has started something real (spamd is last), then kill it mid-flight
    deadline = time.monotonic() + 60
    journal = run_dir / "journal.jsonl"
    while time.monotonic() < deadline:
        if any(r.name == "spamd" for r in Journal(journal).starts()):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("lab up never started spamd")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = lab_pids(run_dir)
    assert left, "the killed lab up left nothing to clean"
    down = spamdrill("lab", "down", "--run-dir", str(run_dir))
    assert down.returncode == 0, down.stderr
    assert lab_pids(run_dir) == []


def test_port_in_use_is_one_line_and_leaves_nothing(run_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "lab.toml"
        config.write_text(f"[spamd]\nport = {port}\n")
        up = spamdrill("lab", "up", "--run-dir", str(run_dir), "--config", str(config))
    assert up.returncode == 2
    line = one_error_line(up.stderr)
    assert f"127.0.0.1:{port} is already in use" in line
    assert not (run_dir / "lab.json").exists()


def test_broken_spamd_flag_is_one_line_and_leaves_nothing(run_dir: Path,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    config.write_text('[spamd]\nextra_args = ["--no-such-flag"]\n')
    up = spamdrill("lab", "up", "--run-dir", str(run_dir), "--config", str(config))
    assert up.returncode == 2
    line = one_error_line(up.stderr)
    assert "spamd exited during start-up" in line and "no-such-flag" in line
    # it started MariaDB and the DNS before spamd failed: each was stopped, and the
    # journal went with the clean teardown
    assert (run_dir / "mariadb").is_dir()
    assert not (run_dir / "journal.jsonl").exists()
    assert running_in(run_dir) == []


def running_in(run_dir: Path) -> list[str]:
    """Live processes whose command line names the run directory (every lab process's
    does: its data, config or log path)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(run_dir) in argv and start_ticks(int(proc.name)) is not None:
            found.append(f"{proc.name}: {argv[:120]}")
    return found


def test_bad_config_values_are_one_line(run_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    for text, expected in [
        ("[spamd]\nmax_childs = 3\n", "unknown setting spamd.max_childs"),
        ("[spamd]\nmax_children = 'many'\n", "spamd.max_children: expected int, got str"),
        ("[spamd\n", "not valid TOML"),
        ("[nonsense]\n", "unknown section [nonsense]"),
    ]:
        config.write_text(text)
        up = spamdrill("lab", "up", "--run-dir", str(run_dir), "--config", str(config))
        assert up.returncode == 2
        assert expected in one_error_line(up.stderr)
    missing = spamdrill("lab", "up", "--run-dir", str(run_dir), "--config", "/nonexistent.toml")
    assert "not found" in one_error_line(missing.stderr)


def test_missing_package_names_it_and_what_to_run(run_dir: Path, tmp_path: Path) -> None:
    # a PATH with every required program but maildrop
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for prog in ("spamc", "mariadb-install-db", "maildirmake"):
        real = subprocess.run(["sh", "-c", f"command -v {prog}"], capture_output=True,
                              text=True).stdout.strip()
        (bin_dir / prog).symlink_to(real)
    up = spamdrill("lab", "up", "--run-dir", str(run_dir), env={"PATH": str(bin_dir)})
    assert up.returncode == 2
    line = one_error_line(up.stderr)
    assert "maildrop not found (Debian package maildrop)" in line
    assert "scripts/setup.sh" in line
    assert not (run_dir / "lab.json").exists()


def test_every_lab_process_is_found(run_dir: Path) -> None:
    from spamdrill.lab.config import LabConfig

    state = lab_ops.up(run_dir, LabConfig())
    marked = set(marked_pids(state.marker))
    names = {Path(f"/proc/{p}/comm").read_text().strip() for p in marked}
    assert {"mariadbd", "spamd"} <= {n.split()[0] for n in names}, names
    for name, ref in state.pids.items():
        pid = ref.pid
        assert pid in marked, name
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"{MARKER}={state.marker}".encode() in environ
    # spamd's children are found through spamd's session even though their marker is gone
    assert len(lab_ops.lab_pids(run_dir)) > len(marked)
    assert os.path.exists(state.run_dir)


def test_lab_check_delivers_mail_through_the_chain(run_dir: Path) -> None:
    assert spamdrill("lab", "up", "--run-dir", str(run_dir)).returncode == 0
    done = spamdrill("lab", "check", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spam delivered to alice/.Spam" in done.stdout
    assert "ham delivered to alice/INBOX" in done.stdout
    assert "FAIL" not in done.stdout
    assert spamdrill("lab", "down", "--run-dir", str(run_dir)).returncode == 0
    assert lab_pids(run_dir) == []
    missing = spamdrill("lab", "check", "--run-dir", str(run_dir))
    assert missing.returncode == 2 and "no lab in" in one_error_line(missing.stderr)


def test_lab_dns_command_switches_a_name(run_dir: Path) -> None:
    from spamdrill.lab import dns
    from spamdrill.lab.config import LabConfig

    state = lab_ops.up(run_dir, LabConfig())
    switched = spamdrill("lab", "dns", "--run-dir", str(run_dir), dns.DB_NAME, "nxdomain")
    assert switched.returncode == 0, switched.stderr
    assert dns.query(state.dns.host, state.dns.port, dns.DB_NAME).header.rcode == 3
    status = spamdrill("lab", "status", "--run-dir", str(run_dir), "--json")
    detail = {c["name"]: c["detail"] for c in json.loads(status.stdout)["components"]}
    assert "db.lab.test: nxdomain" in detail["dns"]
    bad = spamdrill("lab", "dns", "--run-dir", str(run_dir), dns.DB_NAME, "delay")
    assert bad.returncode == 2 and "--delay" in one_error_line(bad.stderr)


def test_secondary_dns_is_untouched_by_primary_rules(run_dir: Path) -> None:
    from msgspec.structs import replace

    from spamdrill.lab import dns
    from spamdrill.lab.config import LabConfig

    config = LabConfig()
    state = lab_ops.up(run_dir, replace(config, dns=replace(config.dns, secondary=True)))
    assert state.dns2 is not None
    host2, port2 = state.dns2.host, state.dns2.port
    _, comps = lab_ops.status(run_dir)
    assert {c.name: c.up for c in comps}["dns2"] is True
    dns.set_rule(state.layout, "*", "drop")
    with pytest.raises(OSError):
        dns.query(state.dns.host, state.dns.port, dns.DB_NAME, timeout=0.5)
    assert dns.query(host2, port2, dns.DB_NAME).rr
    site = (state.layout.spamd_site / "local.cf").read_text()
    assert f"dns_server {host2}:{port2}" in site  # spamd knows both, primary first
    assert site.index(f"dns_server {state.dns.host}") < site.index(f"dns_server {host2}")
