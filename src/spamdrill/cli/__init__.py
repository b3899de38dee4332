"""The ``spamdrill`` command line. Thin: each module parses one family of commands' options,
calls the lab, drill, budget or log code (runs through ``spamdrill.app``), and prints.

common.py holds what they share (the group, consoles, ``--json``, errors -> one line,
exit 2); lab.py, run.py (run, flood, list), budget.py, reports.py (report, history,
compare), logs.py (logs, replay) and doctor.py each register their commands on it, when
the group first needs them (``common.MODULE_OF``).
"""

from spamdrill.cli.common import cli, main

__all__ = ["cli", "main"]
