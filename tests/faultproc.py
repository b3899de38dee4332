"""A fault injected by a process of its own that is then SIGKILLed: what every conformance
test checks the lab's journal heals, whichever fault kind it is."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spamdrill.lab import lab as lab_ops

INJECT = """
import json, sys, time
from pathlib import Path
import msgspec
from spamdrill.drills.control import RealLab
from spamdrill.drills.nemesis import AnyFaultSpec
from spamdrill.drills.timing import Scale
from spamdrill.lab.layout import Layout
from spamdrill.lab.state import LabState
state = LabState.load(Layout(Path(sys.argv[1])))
ctl = RealLab(state)
spec = msgspec.convert({"kind": sys.argv[2], **json.loads(sys.argv[3])}, AnyFaultSpec)
fault = spec.build(Scale(1.0))
fault.setup(ctl)
fault.inject(ctl)
print("injected", flush=True)
time.sleep(600)
"""


def injected_then_killed(run_dir: Path | str, kind: str, params: dict[str, Any],
                         holds: Callable[[], bool] | None = None) -> None:
    """Inject ``kind`` from a new process, check it ``holds`` with that process gone
    (when given), SIGKILL it, and heal the lab from its journal."""
    proc = subprocess.Popen([sys.executable, "-c", INJECT, str(run_dir), kind,
                             json.dumps(params)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "injected", proc.stderr and proc.stderr.read()
    if holds is not None:
        assert holds(), f"{kind} did not hold with its injector gone"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lab_ops.heal(Path(run_dir))
