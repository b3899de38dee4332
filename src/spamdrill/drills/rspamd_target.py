"""The ``rspamd`` target: each message through a real ``rspamc --mime`` to the lab's rspamd
normal worker, as maildrop's ``xfilter "rspamc --mime …"`` runs it (``-d`` names the
recipient). The load is spamc's (``load.spamc``: stdin barrier, pidfd reaping); only the
program and the reading of its output differ (``proto.rspamc_result``, chosen by the
peer, ``rspamd``). ``load.spamc_args`` are rspamc's flags here: ``-t {t:10}`` is rspamc's
own default of 10 s."""

from __future__ import annotations

import msgspec

from spamdrill import corpus
from spamdrill.drills.control import ClientSide
from spamdrill.drills.targets import LoadPlan, SpamcLoad, new_seed
from spamdrill.drills.timing import Scale
from spamdrill.errors import SpamdrillError
from spamdrill.load.spamc import Job

PEER = "rspamd"


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
            argv = state.client_argv([rspamc(), "-h", f"{ep.host}:{ep.port}", "--mime",
                                      *flags])
            jobs.append(Job(m, argv, flags, plan.offsets[i], peer=PEER))
        return SpamcLoad(jobs, plan.max_wait)
