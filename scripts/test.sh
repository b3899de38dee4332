#!/usr/bin/env bash
# The project's checks: lint, types, then the tests (which start real spamd, MariaDB, the
# lab DNS and maildrop themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check src tests benchmarks
mypy
python3 -m pytest "$@"
