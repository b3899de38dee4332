"""A lab built from a system's own configuration (``--etc``): spamd runs with that
system's flags, read back from the running process, and maildrop's xfilter with its
spamc flags; ``run --etc`` puts the budget's prediction beside the measurement."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import spamdrill

from spamdrill.lab import lab as lab_ops
from spamdrill.lab.layout import Layout
from spamdrill.lab.state import LabState

pytestmark = pytest.mark.lab
EXAMPLES = Path(__file__).parent.parent / "examples"


def shaped_system(tmp_path: Path) -> Path:
    """The 'fixed' example with distinctive spamd flags, so they can be told apart from
    the lab's defaults."""
    root = tmp_path / "sys"
    shutil.copytree(EXAMPLES / "fixed", root, symlinks=True)
    default = root / "etc/default/spamd"
    default.write_text(default.read_text().replace(
        "--max-children 5", "--max-children 3 --timeout-child 77 --min-spare 2"))
    return root


def test_lab_up_from_a_system_runs_its_flags(tmp_path: Path, run_dir: Path) -> None:
    etc = shaped_system(tmp_path)
    done = spamdrill("lab", "up", "--run-dir", str(run_dir), "--etc", str(etc))
    assert done.returncode == 0, done.stderr
    assert "not reproduced: other hosts' hardware" in done.stderr  # said, not hidden
    state = LabState.load(Layout(run_dir))
    assert state is not None
    cmdline = Path(f"/proc/{state.pids['spamd'].pid}/cmdline").read_bytes().split(b"\0")
    argv = [a.decode() for a in cmdline]
    assert "--max-children=3" in argv and "--timeout-child=77" in argv, argv
    assert "--min-spare=2" in argv
    rc = state.layout.maildroprc.read_text()
    assert " -t 100 -n 30 -u $LABUSER" in rc  # the system's xfilter flags, -d/-u its own
    lab_ops.down(run_dir)


def test_run_from_a_system_shows_prediction_beside_measurement(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = spamdrill("run", "spamd-down", "--etc", str(EXAMPLES / "fixed"),
                     "--json", str(out), "--results-dir", str(tmp_path / "res"),
                     timeout=300)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "the budget's prediction beside the drills' measurement" in done.stdout
    assert "spamd-refused" in done.stdout
    [sc] = json.loads(out.read_text())["scenarios"]
    assert sc["verdict"] == "confirmed"
    # the system's own spamc flags (-t 100 -n 30, scaled: -t 3 -n 1), not the drill's
    assert sc["messages"][0]["spamc_args"][:4] == ["-t", "3", "-n", "1"]
