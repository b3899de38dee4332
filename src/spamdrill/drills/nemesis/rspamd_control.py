"""The seam rspamd's faults act through: ``RspamdControl``, a narrow interface of its own
beside ``LabControl``, so rspamd's verbs live with rspamd's faults and the drills' control
does not grow with them. ``rspamd_control`` finds it on a running lab (``RealRspamd``), or
the unit tier's stand-in (``RecordingRspamd``). Every verb that changes the lab is journaled
before it takes effect (``lab.faults``), so a ``lab down`` after a SIGKILLed drill starts
rspamd or Redis again, or wakes a frozen Redis.

``LogWindow`` is rspamd's log between an injection and its lift: what rspamd said while a
fault held is the evidence that a scan met it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Protocol

from spamdrill.drills.control import Undo
from spamdrill.drills.recording import RecordedUndo, RecordingLab
from spamdrill.errors import SpamdrillError
from spamdrill.lab.proxy import Counters
from spamdrill.lab.state import Endpoint, LabState
from spamdrill.lab.toxics import Shape

Name = Literal["rspamd", "redis"]
# rspamd's task timeout firing (src/libserver/task.c, rspamd_task_timeout)
TASK_TIMEOUT = re.compile(r"rspamd_task_timeout: processing of task time out[^\n]*")


class RspamdControl(Protocol):
    """Every verb an rspamd fault may use."""

    def rspamd_endpoint(self) -> Endpoint: ...
    def redis_endpoint(self) -> Endpoint: ...
    def stop(self, name: Name) -> Undo: ...  # journaled; SIGTERM, as an init script does
    def start(self, name: Name) -> None: ...  # not awaited
    def pause_redis(self) -> Undo: ...  # journaled SIGSTOP
    def redis_state(self) -> str: ...  # the kernel's state letter; "" when gone
    def rspamd_log(self) -> str: ...
    def accepts(self, ep: Endpoint) -> bool: ...
    def shape_redis_link(self, shape: Shape) -> Undo: ...  # journaled; the lab's proxy
    def redis_link_counters(self) -> Counters | None: ...  # None: none to read


class RealRspamd:
    """``RspamdControl`` on a running lab with rspamd."""

    def __init__(self, state: LabState) -> None:
        if state.rspamd is None:
            raise SpamdrillError("this fault needs the lab's rspamd",
                                 "set [lab.rspamd] enabled = true in the scenario")
        self.state = state
        self.ref = state.rspamd

    def rspamd_endpoint(self) -> Endpoint:
        return self.ref.normal

    def redis_endpoint(self) -> Endpoint:
        return self.ref.redis

    def stop(self, name: Name) -> Undo:
        from spamdrill.lab import faults as lab_faults
        from spamdrill.lab import lab as lab_ops

        undo = lab_faults.stopped(self.state.journal, name)
        lab_ops.stop_named(self.state, name)
        return undo

    def start(self, name: Name) -> None:
        from spamdrill.lab import lab as lab_ops

        lab_ops.start_named(self.state, name, wait=False)

    def pause_redis(self) -> Undo:
        from spamdrill.lab import faults as lab_faults

        ref = self.state.pids["redis"]
        return lab_faults.pause(self.state.journal, ref.pid, ref.ticks)

    def redis_state(self) -> str:
        from spamdrill.lab.procs import proc_state

        ref = self.state.pids.get("redis")
        return proc_state(ref.pid, ref.ticks) if ref is not None else ""

    def rspamd_log(self) -> str:
        from spamdrill.lab.rspamd import Paths

        try:
            return Paths(Path(self.state.run_dir)).log.read_text(errors="replace")
        except OSError:
            return ""

    def accepts(self, ep: Endpoint) -> bool:
        from spamdrill.lab.net import tcp_open

        return tcp_open(ep.host, ep.port)

    def shape_redis_link(self, shape: Shape) -> Undo:
        from spamdrill.lab import faults as lab_faults

        if self.ref.redis_proxy is None:
            raise SpamdrillError("this fault needs the proxy between rspamd and Redis",
                                 "set [lab.rspamd] redis_proxy = true in the scenario")
        return lab_faults.proxy_shape(self.state.journal, shape, "rspamd-redis")

    def redis_link_counters(self) -> Counters | None:
        from spamdrill.lab.proxy import read_counters
        from spamdrill.lab.rspamd import Paths

        if self.ref.redis_proxy is None:
            return None
        return read_counters(Paths(Path(self.state.run_dir)).redis_proxy_shape)


class RecordingRspamd:
    """``RspamdControl`` for the unit tier, sharing a ``RecordingLab``'s calls and
    answers (``accepts``, ``redis_state``, ``redis_link_counters``; ``rspamd_log``: what
    rspamd's log gains once rspamd or Redis is stopped, Redis frozen, its link shaped,
    or the lab DNS switched)."""

    def __init__(self, lab: RecordingLab) -> None:
        self.calls, self.answers = lab.calls, lab.answers

    def _undo(self, what: str) -> Undo:
        self.calls.append(what)
        return RecordedUndo(self.calls, what)

    def rspamd_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 11333)

    def redis_endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", 6379)

    def stop(self, name: Name) -> Undo:
        return self._undo(f"stop {name}")

    def start(self, name: Name) -> None:
        self.calls.append(f"start {name}")

    def pause_redis(self) -> Undo:
        return self._undo("pause redis")

    def redis_state(self) -> str:
        state = self.answers.redis_state
        return "T" if state is None else state

    def rspamd_log(self) -> str:
        met = any(c in ("stop redis", "pause redis", "stop rspamd")
                  or c.startswith(("shape redis link", "dns ")) for c in self.calls)
        return self.answers.rspamd_log if met else ""

    def accepts(self, ep: Endpoint) -> bool:
        accepts = self.answers.accepts
        return False if accepts is None else accepts

    def shape_redis_link(self, shape: Shape) -> Undo:
        return self._undo(f"shape redis link {shape.describe()}")

    def redis_link_counters(self) -> Counters | None:
        """Zero until the link is shaped, then the answer (the proxy counts from its
        start: a fault judges what it added)."""
        shaped = any(c.startswith("shape redis link") for c in self.calls)
        return self.answers.redis_link_counters if shaped else Counters()


def rspamd_control(ctl: object) -> RspamdControl:
    """The rspamd verbs for ``ctl``: the running lab's (``RealLab.state``), or the
    recording stand-in's of the unit tier."""
    if isinstance(ctl, RecordingLab):
        return RecordingRspamd(ctl)
    state = getattr(ctl, "state", None)
    if isinstance(state, LabState):
        return RealRspamd(state)
    raise SpamdrillError("this fault needs the lab's rspamd")


class LogWindow:
    """rspamd's log between an injection and its lift (offsets into the file)."""

    def __init__(self) -> None:
        self.start: int | None = None
        self.end: int | None = None

    def open(self, rc: RspamdControl) -> None:
        self.start, self.end = len(rc.rspamd_log()), None

    def close(self, rc: RspamdControl) -> None:
        if self.start is not None and self.end is None:
            self.end = len(rc.rspamd_log())

    def text(self, rc: RspamdControl) -> str:
        return self.of(rc.rspamd_log())

    def of(self, log: str) -> str:
        """The window's part of ``log`` (rspamd's whole log, read once by the caller)."""
        if self.start is None:
            return ""
        return log[self.start:self.end if self.end is not None else len(log)]
