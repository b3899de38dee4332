#!/usr/bin/env bash
# The project's checks: lint, types, then the tests (which start real spamd, MariaDB, the
# lab DNS and maildrop themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check src tests benchmarks
mypy
# --durations: what the suite's time goes to, printed at its end (docs/ARCHITECTURE.md
# says what each tier costs). Most lab tests wait on timers (spamc's -t, maildrop's
# timeout, a fault held), so two processes share the cores (pytest-xdist; each test picks
# its own ports and directories, as two spamdrills side by side do); more than four would
# start that many labs at once for little gain.
workers=$(nproc)
[ "$workers" -gt 4 ] && workers=4
[ "$workers" -lt 2 ] && workers=2
python3 -m pytest -n "$workers" --dist worksteal -p no:benchmark --durations=25 "$@"
# where a C compiler is, the install built spamdrill logs' compiled reader loop (setup.py
# falls back to pure Python quietly): say so if it did not. Its differential test
# (tests/test_logs_compiled.py) compares it with the pure loop; with no arguments, the
# logs' reading tests run once more on the pure loop alone.
if command -v cc >/dev/null; then
  python3 -c 'from spamdrill.logs.reader import compiled
assert compiled() is not None, "the compiled reader loop was not built (pip install -e .)"'
fi
if [ "$#" -eq 0 ]; then
  SPAMDRILL_PURE=1 python3 -m pytest -n 0 -p no:benchmark -q -m unit tests/test_logs_reading.py tests/test_logs.py
fi
