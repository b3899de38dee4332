"""spamdrill doctor end to end, its wrapper measured in the budget's sandbox (lab tier:
seconds each): no network and nothing written but its outputs (under unshare -rn, traced
with strace -f), its exit status, outside text shown as text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"
INCIDENT = FIELD / "incident/mail.log"
FIXTURE = ROOT / "tests/data/logs/mail.log"


def _cli(*args: str, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    return subprocess.run([sys.executable, "-m", "spamdrill", "doctor", *args],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)


def _joined(lines: list[str]) -> list[str]:
    """strace -f splits a call another process interrupted into ``... <unfinished ...>``
    and ``<... openat resumed> ... = -1 EROFS``: join them, or a refused write reads as
    one that was made."""
    pending: dict[str, str] = {}
    out = []
    for ln in lines:
        pid, _, rest = ln.partition(" ")
        if rest.endswith("<unfinished ...>"):
            pending[pid] = ln[: -len("<unfinished ...>")]
        elif "resumed>" in rest and pid in pending:
            out.append(pending.pop(pid) + rest.split("resumed>", 1)[1])
        else:
            out.append(ln)
    return out + list(pending.values())


@pytest.mark.lab
def test_doctor_without_verify_opens_no_socket_and_writes_only_its_outputs(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    tmp = tempfile.gettempdir()  # where doctor's own temporary copies go (TMPDIR)
    before = set(Path(tmp).glob("spamdrill-doctor-*"))
    trace = tmp_path / "trace"
    # no bytecode cache: on a fresh checkout the interpreter would write .pyc files
    # beside the package (its own doing, not doctor's), as temporary names it renames
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HOME": str(work),
           "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run(
        ["unshare", "-rn", "strace", "-f", "-qq", "-o", str(trace),
         "-e", "trace=socket,connect,open,openat,creat,unlink,unlinkat",
         sys.executable, "-m", "spamdrill", "doctor", "--etc", str(FIELD),
         str(FIELD / "incident/mail.log"), "--tz", "UTC", "--year", "2026",
         "--json", "out.json", "--html", "out.html"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    doc = json.loads((work / "out.json").read_text())
    assert doc["sure"]["within_budget_after"] is True
    # the chain, and the dash wrapper's loss as measured in the sandbox
    worst = doc["why"][0]
    assert worst["chain"] == ["wrapper-bounced-transient", "maildrop-timeout",
                              "spamd-silent"]
    assert worst["budget_mode"] == "spamd-accept-queue-full" and worst["agree"] is True
    assert "status 100" in worst["wrapper"] and "dash" in worst["wrapper"]
    assert worst["predicted"]["outcome"] == "lost"
    assert doc["wrapper"]["problems"][0].startswith("maildrop exit 75")
    assert doc["wrapper"]["problems"][0].endswith("LOST")
    after = {a["mode"]: a for a in doc["after"]}
    assert after["spamd-accept-queue-full"]["margin_s"] == 31
    assert doc["worse_after"] == []
    assert sorted(p.name for p in work.iterdir()) == ["out.html", "out.json"]
    lines = _joined(trace.read_text().splitlines())
    inet = [ln for ln in lines if re.search(r"socket\(AF_INET6?,", ln)]
    assert inet == []
    # files created for writing and left: the outputs only (the temporary copies the
    # budget reads after, and Python's probe of the temporary directory, are removed;
    # the wrapper's sandbox writes inside its own private tmpfs /tmp)
    written = {m.group(1) for ln in lines
               if (m := re.search(r'open(?:at)?\([^"]*"([^"]+)", [^)]*O_CREAT', ln))
               and "= -1" not in ln}
    removed = {m.group(1) for ln in lines
               if (m := re.search(r'unlink(?:at)?\([^"]*"([^"]+)"', ln)) and "= 0" in ln}
    outside = {p for p in written - removed
               if not p.startswith((f"{tmp}/spamdrill-doctor-", "/tmp/.spamdrill-sandbox",
                                    "/dev/"))
               and p not in ("out.json", "out.html")
               and not p.startswith(str(work))}
    assert outside == set(), outside
    assert set(Path(tmp).glob("spamdrill-doctor-*")) <= before  # its copies are gone


@pytest.mark.lab
def test_exit_0_on_a_quiet_log_and_3_on_an_empty_one(tmp_path: Path) -> None:
    """Quiet: the fixed example's configs (spamdrill-deliver, -n 30) and mail that was
    delivered. The field report's configs with the same log still exit 1: its wrapper,
    measured, loses mail whatever the log says."""
    lines = FIXTURE.read_text().splitlines()
    normal = [ln for ln in lines if any(q in ln for q in
                                        ("63E3B20C9D6", "6577220C524"))]
    quiet = tmp_path / "quiet.log"
    quiet.write_text("\n".join(normal) + "\n")
    r = _cli("--etc", str(ROOT / "examples/fixed"), "--tz", "UTC", "--year", "2026",
             str(quiet))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 delivered" in r.stdout
    r = _cli("--etc", str(FIELD), "--tz", "UTC", "--year", "2026", str(quiet))
    assert r.returncode == 1
    assert "LOST" in r.stdout and "spamdrill-deliver" in r.stdout
    empty = tmp_path / "empty.log"
    empty.write_text("")
    r = _cli("--etc", str(FIELD), str(empty))
    assert r.returncode == 3
    assert "nothing to diagnose" in r.stderr


@pytest.mark.lab
def test_outside_text_is_text_in_terminal_html_and_diff(tmp_path: Path) -> None:
    """A bounce text carrying rich markup and HTML reaches the screen and the page as
    text."""
    text = INCIDENT.read_text().replace(
        "/usr/local/bin/maildrop_wrapper",
        "[link=https://evil.example/]<script>alert(1)</script>[/link]")
    log = tmp_path / "mail.log"
    log.write_text(text)
    page = tmp_path / "out.html"
    r = _cli("--etc", str(FIELD), "--tz", "UTC", "--year", "2026", "--html", str(page),
             str(log), env={"COLUMNS": "400"})
    assert r.returncode == 1, r.stderr
    assert "[link=https://evil.example/]<script>" in r.stdout
    html = page.read_text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html
