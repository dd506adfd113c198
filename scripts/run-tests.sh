#!/usr/bin/env bash
# The test command on a fresh clone: set up .venv, lint (ruff, and import-linter's layer contract), then pytest.
# Plain: the fast tier. --all: every tier (unit, integration, slow, and realdata when the real datasets are found
# through $CRISSCROSS_DATA or a shared/datasets folder beside the repository; skipped cleanly otherwise). This is
# what CI runs. Other arguments go to pytest, e.g. `-m integration` or `-k resume`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check --quiet .
.venv/bin/lint-imports --no-cache >/dev/null || { .venv/bin/lint-imports --no-cache; exit 1; }
if [ "${1:-}" = "--all" ]; then
  shift
  exec .venv/bin/python -m pytest -m "" "$@"
fi
exec .venv/bin/python -m pytest "$@"
