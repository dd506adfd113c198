#!/usr/bin/env bash
# Creates .venv (once) and installs crisscross in editable mode with its test and optional extras.
#
# PyTorch is installed first, by one rule:
#   - CRISSCROSS_TORCH set: exactly that requirement (e.g. 'torch==2.13.0'), from the index pip is configured with;
#   - else, on a machine with an NVIDIA driver (nvidia-smi answers): torch==2.13.0 from the package index, the build
#     with CUDA (about 5 GB with its nvidia-* packages);
#   - else: torch==2.13.0 from PyTorch's CPU index (https://download.pytorch.org/whl/cpu, about 200 MB); where that
#     index cannot be reached, the package index's build, which also runs on a CPU but brings the CUDA libraries.
# Requires Python 3.11 or newer. Usage: bash scripts/setup.sh   (idempotent; re-run after pulling)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: crisscross needs Python 3.11 or newer; $("$PY" --version 2>&1) found (set PYTHON=python3.11)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
TORCH_PIN="torch==2.13.0"
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${CRISSCROSS_TORCH:-}" ]; then
    echo "setup: installing ${CRISSCROSS_TORCH} (CRISSCROSS_TORCH)"
    "$VPY" -m pip install --progress-bar on "${CRISSCROSS_TORCH}"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "setup: NVIDIA driver found: installing ${TORCH_PIN} with CUDA (about 5 GB, several minutes)"
    "$VPY" -m pip install --progress-bar on "${TORCH_PIN}"
  else
    CPU_INDEX=https://download.pytorch.org/whl/cpu
    echo "setup: no NVIDIA driver: installing the CPU build of ${TORCH_PIN} (about 200 MB)"
    if ! "$VPY" -c "import urllib.request; urllib.request.urlopen('${CPU_INDEX}/torch/', timeout=5)" \
         >/dev/null 2>&1 || ! "$VPY" -m pip install --progress-bar on --timeout 20 --retries 1 \
         --index-url "${CPU_INDEX}" --extra-index-url "${PIP_INDEX_URL:-https://pypi.org/simple}" "${TORCH_PIN}"; then
      echo "setup: PyTorch's CPU index is unreachable: installing ${TORCH_PIN} from the package index instead" \
           "(it runs on a CPU but brings the CUDA libraries, about 5 GB; several minutes)"
      "$VPY" -m pip install --progress-bar on "${TORCH_PIN}"
    fi
  fi
fi
echo "setup: installing crisscross and its test tools"
"$VPY" -m pip install -q -e ".[dev]"
# ONNX export and its parity tests; optional: where onnxruntime has no wheel, those tests skip.
"$VPY" -m pip install -q -e ".[deploy]" || echo "setup: the deploy extra (onnx, onnxruntime) did not install; ONNX tests will skip"
