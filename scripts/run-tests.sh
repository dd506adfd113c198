#!/usr/bin/env bash
# The test suite on a fresh clone: set up .venv, then run pytest (real-data tests run when ../shared/datasets
# or $CRISSCROSS_DATA is present and skip cleanly otherwise). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
