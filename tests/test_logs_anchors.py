"""The anchors benchmark (benchmarks/logs_anchors.py) reads each tool's count of delivered
messages from its output, to show the three tools read the same deliveries: its readers,
on excerpts of the real outputs for tests/data/logs/mail.log (pflogsumm 1.1.5, logwatch
7.7's postfix service) and on a document of ``spamdrill logs``; and the real tools on the
fixture, as the benchmark runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import logs_anchors

DATA = Path(__file__).parent / "data" / "logs"

PFLOGSUMM = """\
Grand Totals
------------
messages

     24   received
     22   delivered
      0   forwarded
      4   deferred  (6  deferrals)
    600k  bounced
      0   rejected (0%)

  35689   bytes received
  33185   bytes delivered

Per-Day Traffic Summary
    date          received  delivered   deferred    bounced     rejected
    --------------------------------------------------------------------
    Nov 29 2026        24         22          6          4          0
"""

LOGWATCH = """\
****** Summary *************************************************************************************

  34.853K  Bytes accepted                              35,689
  32.407K  Bytes delivered                             33,185
========   ==================================================

      24   Accepted                                   100.00%
      26   Removed from queue                              26
    1.2K   Delivered                                    1,234
       4   Deferred                                         4
       6   Deferrals                                        6
       4   Bounced (remote)                                 4

****** Detail (10) *********************************************************************************

      22   Delivered -------------------------------------------------------------------------------
      14      lab.test
"""


@pytest.mark.unit
def test_pflogsumm_grand_totals() -> None:
    """The Grand Totals' counts, not the per-day table's; pflogsumm's ``k`` is 1024."""
    assert logs_anchors.parse_pflogsumm(PFLOGSUMM) == {
        "received": 24, "delivered": 22, "deferred": 4, "bounced": 600 * 1024}


@pytest.mark.unit
def test_logwatch_summary_right_hand_column() -> None:
    """The summary's exact column (commas taken out), not the detail's headings."""
    assert logs_anchors.parse_logwatch(LOGWATCH) == {
        "delivered": 1234, "deferred": 4, "deferrals": 6, "bounced (remote)": 4}


@pytest.mark.unit
def test_spamdrill_delivered_counts_scanned_and_unscanned() -> None:
    doc = {"totals": {"fates": {"delivered": 20, "delivered unscanned": 2, "deferred": 4,
                                "bounced": 4}}}
    assert logs_anchors.parse_spamdrill(json.dumps(doc)) == {
        "delivered": 22, "deferred": 4, "bounced": 4}


@pytest.mark.lab
def test_the_three_tools_read_the_fixtures_deliveries() -> None:
    """The benchmark's own commands on the fixture: each reader finds its tool's count,
    and the three agree (22 deliveries: 8 scanned, 14 unscanned)."""
    counts = {}
    for name, (argv, _) in logs_anchors.commands(DATA / "mail.log").items():
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
        counts[name] = logs_anchors.PARSERS[name](out.stdout)["delivered"]
    assert counts == dict.fromkeys(logs_anchors.PARSERS, 22)
