"""Make a version-2 run document with every field, from the code at the commit it is run on
(cc83d52, the last to write version 2). Importing it only builds the drills' results
(``RESULTS``), which tests/test_rundoc.py records with today's code to compare."""
import shutil
import sys
from pathlib import Path

from spamdrill import app
from spamdrill.checks import result as check_result
from spamdrill.drills.findings import FindingRow
from spamdrill.drills.runner import ScenarioResult
from spamdrill.drills.scenario import load_all
from spamdrill.evidence import Calibration, FaultReport
from spamdrill.history import FaultWindow, History, MessageRecord
from spamdrill.logexcerpt import Excerpt
from spamdrill.vocab import Fate, Finding, Layer, Mode

known = load_all()
e2e = next(s for n, s in known.items() if n.startswith("e2e"))
flood = known["spamd-overload"] if "spamd-overload" in known else next(iter(known.values()))
T = 1_700_000_000_000_000_000
msgs = [
    MessageRecord("ham-0", "ham", 1200, T, T + 1_234_000_000, "ham", 0, "", ["-t", "3"], -1.5,
                  "spamc -t 3", "spamd", worker="w1", message_id="<ham-0@lab>"),
    MessageRecord("spam-1", "spam", 1400, T + 10_000_000, T + 2_500_000_000, "spam", 0, "",
                  ["-t", "3"], 999.0, "spamc -t 3", "spamd", worker="w2",
                  message_id="<spam-1@lab>"),
    MessageRecord("ham-2", "ham", 1200, T + 20_000_000, T + 3_100_000_000, "unscanned", 0,
                  "connect-timeout", ["-t", "3"], None, "spamc -t 3", "spamd"),
    MessageRecord("ham-3", "ham", 1200, T + 30_000_000, None, "lost", None,
                  "no answer within the load's bound", ["-t", "3"], None, "spamc -t 3"),
    MessageRecord("spam-4", "spam", 1400, T + 40_000_000, T + 500_000_000, "error", 74,
                  "protocol", ["-t", "3", "-x"], None, "spamc -x", "drip"),
]
e2e_msgs = [
    MessageRecord("ham-10", "ham", 900, T, T + 4_000_000_000, "ham", None, "in the inbox",
                  [], None, "spamdrill-deliver", "postfix", fate="delivered", dsn="2.0.0",
                  deferrals=1, intact=True, queue_id="4Qx1", delays="0.1/0/0.2/3.7",
                  spamd="clean message (-1.0/5.0)", message_id="<ham-10@lab>"),
    MessageRecord("ham-11", "ham", 900, T + 5_000_000, T + 9_000_000_000, "unscanned", None,
                  "Timeout quota exceeded.", [], None, "field-wrapper", "postfix",
                  fate="bounced", dsn="5.3.0", queue_id="4Qx2", delays="0.1/0/0.2/9",
                  message_id="<ham-11@lab>"),
    MessageRecord("ham-12", "ham", 900, T + 6_000_000, T + 9_500_000_000, "unscanned", None,
                  "accepted, then found nowhere", [], None, "field-wrapper", "postfix",
                  fate="lost", dsn="2.0.0", queue_id="4Qx3", intact=None,
                  message_id="<ham-12@lab>"),
]
res1 = ScenarioResult(
    flood.name, flood, 33.3333, 9.0, History(msgs, [FaultWindow("pause", T + 5_000_000,
                                                                T + 2_000_000_000, "SIGSTOP"),
                                                    FaultWindow("nft", T + 6_000_000, None, "")]),
    [check_result("nothing lost", "fail", "1 lost", ["ham-3"]),
     check_result("budget model agrees", "pass", "predicts 3.0 s for spamc -t 3"),
     check_result("the queue filled", "error", "the condition did not occur: no queue", [])],
    [FindingRow("spamc -t 3", Mode.SPAMD_OVERLOADED, Finding.LOSES_MAIL, Fate.LOST, Layer.SPAMC,
                None, 4, 2, 1, 1, "spamc never returned"),
     FindingRow("spamc -x", Mode.SPAMD_SLOW_DRIP, Finding.DEFERS, Fate.DEFERRED, Layer.MAILDROP,
                0.49, 1, 0, 0, 0, "maildrop's timer fired (exit 75): Postfix defers")],
    ["spamd logged 3x: Too many connections"], (FaultReport("pause", True, "state T"),),
    Calibration(0.41234, (0.4001, 0.41234, 0.5), 1.5), "",
    [Excerpt(name="spamd", path="/r/logs/spamd.log", total_lines=120,
             lines=["child timeout <b>"], counts=[3], last=["bye"])],
    {"spamd": ["/usr/sbin/spamd", "--max-children", "5"]})
res2 = ScenarioResult(
    e2e.name, e2e, 1.0, 300.0, History(e2e_msgs, []),
    [check_result("every fate read back", "pass", "3 of 3")],
    [FindingRow("field-wrapper", Mode.MAILDROP_TIMEOUT, Finding.LOSES_MAIL, Fate.LOST, None,
                9.5, 2, 0, 2, 0, "accepted, then found nowhere"),
     FindingRow("spamdrill-deliver", None, Finding.DEFERS, Fate.DEFERRED, None, 4.0, 1, 1, 0,
                0, "Postfix deferred it (and retried once the fault healed)")],
    [], (), None, "lab failed: postfix did not greet", [], {})
RESULTS = [res1, res2]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    results = out / "results"
    shutil.rmtree(results, ignore_errors=True)
    (results / "20261207-025500-abcdef").mkdir(parents=True)
    doc, model = app.record(results, "20261207-025500-abcdef", 1796612100.5, RESULTS, "run",
                            {"scale": 33.3333, "count": None, "lab_config": None,
                             "scenario_dirs": [], "argv": ["spamdrill", "run"]})
    print(doc["exit_status"], app.exit_status(model))
