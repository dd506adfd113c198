#!/usr/bin/env bash
# Creates .venv (once) with the CPU build of PyTorch pinned first, so pip never pulls CUDA wheels on a
# CPU machine, then installs crisscross in editable mode with its test and optional extras.
# Usage: bash scripts/setup.sh            (idempotent; re-run after pulling)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  # On a CUDA machine set CRISSCROSS_TORCH to the build you want (e.g. 'torch==2.13.0' from the CUDA index).
  "$VPY" -m pip install -q "${CRISSCROSS_TORCH:-torch==2.13.0}"
fi
"$VPY" -m pip install -q -e ".[dev]"
# ONNX export and its parity tests; optional: where onnxruntime has no wheel, those tests skip.
"$VPY" -m pip install -q -e ".[deploy]" || echo "setup: the deploy extra (onnx, onnxruntime) did not install; ONNX tests will skip"
