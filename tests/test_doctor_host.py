"""spamdrill doctor on a host: no network, and nothing written but its outputs. Run
under a user and network namespace with no interface up (unshare -rn), traced for every
socket(2) of an Internet family and every file created (strace -f)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "examples/field-report"


@pytest.mark.lab
@pytest.mark.skipif(shutil.which("strace") is None or shutil.which("unshare") is None,
                    reason="needs strace and unshare")
def test_doctor_without_verify_opens_no_socket_and_writes_only_its_outputs(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    trace = tmp_path / "trace"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HOME": str(work)}
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
    assert sorted(p.name for p in work.iterdir()) == ["out.html", "out.json"]
    lines = trace.read_text().splitlines()
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
               if not p.startswith(("/tmp/spamdrill-doctor-", "/tmp/.spamdrill-sandbox",
                                    "/dev/"))
               and p not in ("out.json", "out.html")
               and not p.startswith(str(work))}
    assert outside == set(), outside
    left = [p for p in Path("/tmp").glob("spamdrill-doctor-*")]
    assert all(not str(p).startswith(str(tmp_path)) for p in left)
