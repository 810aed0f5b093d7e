#!/usr/bin/env bash
# Creates .venv and installs advisor with everything the default task needs (CPU build of torch).
# On a GPU machine set TORCH_SPEC to keep/install a CUDA build instead: TORCH_SPEC=torch keeps an installed one,
# TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" installs one (pip arguments, split on spaces).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
.venv/bin/python -m pip install -q ${TORCH_SPEC:-torch==2.13.0}
.venv/bin/python -m pip install -q -e ".[test]"
echo "advisor installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
