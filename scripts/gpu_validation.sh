#!/usr/bin/env bash
# The one command a session with a CUDA GPU runs, from the repository root:
#
#     bash scripts/gpu_validation.sh
#
# 1. nvidia-smi (what the machine is);
# 2. bench/gpu_memory_validation.py with its defaults (Llama 3.2 1B and 3B full and LoRA, Llama 3.1 8B LoRA,
#    random weights from catalog shapes, batch 4 x 512, 8 steps; ~2-4 min on an H100): measured peak memory and
#    step time next to advisor.costs' predictions -> memory_validation.md (+ .json);
# 3. the GPU-marked tests (python -m pytest -q -m gpu) -> pytest_gpu.log.
#
# Everything goes to "$OUT" when it is set (the device tool's output folder), else to reports/gpu/; copy
# memory_validation.md to reports/gpu/ and commit it. Needs python with torch (CUDA), transformers, peft and
# accelerate; no internet, no model download. Wheels of anything else (faiss-cpu, gguf, pytest...) can come in a
# .whl/ folder at the repository root: they are installed into /tmp/site first. Total under 9 minutes.
# Extra arguments go to the bench, e.g. --runs llama-3.2-1b:lora --steps 4.

set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-$(command -v python3 || command -v python)}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

DEST=${OUT:-reports/gpu}
mkdir -p "$DEST"
started=$(date +%s)

echo "== nvidia-smi"
nvidia-smi 2>&1 | tee "$DEST/nvidia-smi.txt"
"$PY" -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'available', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', peft.__version__,
'| accelerate', accelerate.__version__)" 2>&1 | tee -a "$DEST/nvidia-smi.txt"

echo "== bench/gpu_memory_validation.py (each run in its own process; progress on stderr)"
timeout 420 "$PY" bench/gpu_memory_validation.py --out "$DEST/memory_validation.md" \
    --json "$DEST/memory_validation.json" --invoked-by "bash scripts/gpu_validation.sh" "$@" 2>&1 \
    | tee "$DEST/bench.log"
bench_rc=${PIPESTATUS[0]}
echo "== bench exit code $bench_rc after $(( $(date +%s) - started )) s"

echo "== python -m pytest -q -m gpu"
if "$PY" -c "import pytest" 2>/dev/null; then
    timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider 2>&1 | tee "$DEST/pytest_gpu.log"
    test_rc=${PIPESTATUS[0]}
    [ "$test_rc" -eq 5 ] && test_rc=0  # no test selected is not a failure
else
    echo "pytest is not installed here: put its wheel (and pluggy, iniconfig, packaging) in .whl/" \
        | tee "$DEST/pytest_gpu.log"
    test_rc=0
fi
echo "== done in $(( $(date +%s) - started )) s: bench exit code $bench_rc, GPU tests exit code $test_rc"
[ "$bench_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
