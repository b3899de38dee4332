"""The ``rspamd`` target: each message through a real ``rspamc --mime`` to the lab's rspamd
normal worker, as maildrop's ``xfilter "rspamc --mime …"`` runs it (``-d`` names the
recipient). The load is spamc's (``load.spamc``: stdin barrier, pidfd reaping); only the
program and the reading of its output differ (``proto.rspamc_result``, chosen by the
peer, ``rspamd``). ``load.spamc_args`` are rspamc's flags here: ``-t {t:10}`` is rspamc's
own default of 10 s.

rspamc 3.4 connects to rspamd as it starts and only then reads its message (measured: a
connection ESTABLISHED while its stdin stays open), unlike spamc, which reads first. The
load spawns every client ahead of its release and releases it by closing its stdin, so a
bare rspamc would hold a connection, accepted by rspamd, from the start of the load: a
message released after a fault (rspamd stopping) would meet it on a connection opened
before. maildrop's xfilter starts rspamc when the message is there, so each rspamc here is
started by a holder (``HOLD``, python -IS: milliseconds) that reads the whole message
first, puts it in a memfd, and only then execs rspamc on it: rspamc connects at the
release, as under maildrop."""

from __future__ import annotations

import sys

import msgspec

from spamdrill import corpus
from spamdrill.drills.control import ClientSide
from spamdrill.drills.targets import LoadPlan, SpamcLoad, new_seed
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.load.spamc import Job

PEER = "rspamd"
# the message read whole, then rspamc exec'd on a memfd holding it (see the docstring)
HOLD = ("import os, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "fd = os.memfd_create('message')\n"
        "view = memoryview(data)\n"
        "while view:\n"
        "    view = view[os.write(fd, view):]\n"
        "os.lseek(fd, 0, os.SEEK_SET)\n"
        "os.dup2(fd, 0)\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n")


class RspamdTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind",
                   tag="rspamd"):
    """The lab's rspamd (``[lab.rspamd] enabled = true``), through rspamc."""

    needs_lab: bool = True

    def prepare(self, plan: LoadPlan, scale: Scale, lab: ClientSide | None) -> SpamcLoad:
        if lab is None or lab.state.rspamd is None:
            raise SpamdrillError("the rspamd target needs the lab's rspamd",
                                 "set [lab.rspamd] enabled = true in the scenario")
        from spamdrill.lab.rspamd import rspamc

        ep, state = lab.state.rspamd.normal, lab.state
        users = list(state.users)
        msgs = corpus.mix(list(plan.kinds), plan.count, seed=new_seed())
        jobs = []
        for i, m in enumerate(msgs):
            flags = [*plan.spamc_args, "-d", users[i % len(users)]]
            argv = state.client_argv([sys.executable, "-I", "-S", "-c", HOLD, rspamc(),
                                      "-h", f"{ep.host}:{ep.port}", "--mime", *flags])
            jobs.append(Job(m, argv, flags, plan.offsets[i], peer=PEER))
        return SpamcLoad(jobs, plan.max_wait)
