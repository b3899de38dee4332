"""rspamd's budget against the lab with its nameserver dead: the time rspamd answers a ham,
predicted (``budget.rspamd``: min(task_timeout, 3 x dns.timeout x dns.retransmits): the
ASN prefilter, the RBL module's allowlists, then its blocklists, each lookup giving up
after timeout x retransmits) and measured (the ``rspamd-dns-dead`` drill, rspamc -t 30,
at production timings), at settings where task_timeout ends the scan and where the
lookups do.

Measured on a 2-core machine (2026-12-07), task_timeout / dns.timeout x retransmits:
8 s / 1 s x 5 (Debian's) -> predicted 8.00 s, measured 8.01-8.12 s (task_timeout ends
it); 8 s / 1 s x 2 -> 6.00 s, 6.04-6.25 s; 20 s / 1 s x 5 -> 15.00 s, 15.07-15.14 s (the
lookups end it). A first model with two rounds (allowlists, blocklists) predicted 4 and
10 s there: the ASN prefilter is a third round.

    PYTHONPATH=src python3 benchmarks/rspamd_dns_dead.py   (about 20 s each)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec

from spamdrill.budget.rspamd import RspamdSetup
from spamdrill.drills import runner
from spamdrill.drills.scenario import load_all
from spamdrill.lab.config import LabConfig, RspamdSettings

# task_timeout, dns.timeout, dns.retransmits
SETTINGS = ((8.0, 1.0, 5), (8.0, 1.0, 2), (20.0, 1.0, 5))


def main() -> None:
    drill = load_all()["rspamd-dns-dead"]
    # a -t longer than any answer here, so rspamd's time is what is measured
    drill = msgspec.structs.replace(drill, load=msgspec.structs.replace(
        drill.load, spamc_args=("-t", "30")))
    for task, timeout, retransmits in SETTINGS:
        s = RspamdSetup(task_timeout=task, dns_timeout=timeout, dns_retransmits=retransmits)
        base = LabConfig(rspamd=RspamdSettings(enabled=True, task_timeout=task,
                                               dns_timeout=timeout,
                                               dns_retransmits=retransmits))
        with tempfile.TemporaryDirectory() as tmp:
            [r] = runner.run_scenario(drill, scale=1.0, base=base, workdir=Path(tmp))
        times = sorted(m.seconds for m in r.history.messages if m.seconds is not None)
        if not times:
            print(f"task_timeout {task:g} s, dns {timeout:g} s x {retransmits}: no "
                  f"measurement ({r.verdict}: {r.error})")
            continue
        print(f"task_timeout {task:g} s, dns {timeout:g} s x {retransmits}: predicted "
              f"{s.dns_dead_s:.2f} s ({'task_timeout' if s.dns_dead_timed_out else 'lookups'}"
              f" end it), measured {times[0]:.2f}-{times[-1]:.2f} s "
              f"({', '.join(sorted({m.outcome for m in r.history.messages}))})")


if __name__ == "__main__":
    main()
