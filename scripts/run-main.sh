#!/usr/bin/env bash
# The main job on a fresh clone: set up .venv, then train the default forecaster on the embedded data
# and print MPJPE per horizon next to zero-velocity. Extra arguments go to `crisscross train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/crisscross train "$@"
