"""Benchmark: what a dead or SERVFAILing resolver for the database's name costs spamd per
message, measured on the real chain and set against the budget model.

As root (spamd's private resolv.conf names the lab DNS and the DSN names db.lab.test), one
scan with ``spamc -t 600`` (so spamc never cuts it) while the lab DNS drops, or answers
SERVFAIL for, the database's name; then SERVFAIL again with ``mysql_connect_timeout=5`` in
spamd's DSNs (the fix); and the model's prediction for each with the lab's resolv.conf
(``spamdrill.budget.model.connector_dns_wait_s``).

    python benchmarks/dns_db_wait.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from spamdrill import corpus
from spamdrill.budget import model
from spamdrill.lab import dns
from spamdrill.lab import lab as lab_ops
from spamdrill.lab.config import LabConfig
from spamdrill.system import net


def scan_s(state: lab_ops.LabState) -> tuple[float, bool]:
    msg = corpus.make("ham", int.from_bytes(os.urandom(3), "big"))
    argv = ["spamc", "-d", state.spamd.host, "-p", str(state.spamd.port), "-t", "600",
            "-u", "alice"]
    t0 = time.monotonic()
    done = subprocess.run(argv, input=msg.data, capture_output=True, timeout=900)
    return time.monotonic() - t0, b"X-Spam-Status" in done.stdout


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("needs root: only then does spamd resolve the database by name")
    base = Path(tempfile.mkdtemp(prefix="spamdrill-bench-", dir="/tmp"))
    base.chmod(0o755)
    rows = []
    try:
        state = lab_ops.up(base / "lab", LabConfig())
        path = state.layout.resolv_conf
        resolv = net.resolv_conf(path.read_text(), str(path))
        lookup = model.libc_dead_lookup_s(resolv["resolv_timeout"].value,
                                          int(resolv["resolv_attempts"].value),
                                          int(resolv["resolv_servers"].value))
        for mode, each in (("drop", lookup), ("servfail", 0.0)):
            dns.set_rule(state.layout, dns.DB_NAME, mode)
            took, scanned = scan_s(state)
            dns.clear_rules(state.layout)
            rows.append({"resolver": mode, "dsn_connect_timeout": None,
                         "measured_s": round(took, 2),
                         "predicted_s": round(model.connector_dns_wait_s(each), 2),
                         "scanned": scanned})
        # the fix: a connect timeout in the DSN bounds Connector/C's loop
        cf = state.layout.spamd_site / "local.cf"
        cf.write_text(re.sub(r"(DBI:mysql:\S*)", r"\1;mysql_connect_timeout=5", cf.read_text()))
        lab_ops.stop_spamd(state)
        lab_ops.start_spamd(state, LabConfig())
        dns.set_rule(state.layout, dns.DB_NAME, "servfail")
        took, scanned = scan_s(state)
        rows.append({"resolver": "servfail", "dsn_connect_timeout": 5,
                     "measured_s": round(took, 2),
                     "predicted_s": round(model.connector_dns_wait_s(0.0, 5), 2),
                     "scanned": scanned})
    finally:
        lab_ops.down(base / "lab")
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
