"""Worker process for one run: ``python -m harness.worker JOB.json`` (started by ``harness.compare``).

Writes the run's record atomically to ``record_path``; exits 0 even when the run failed (the
failure is in the record), 130 on Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def _stop(signum, frame):
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies (even by kill -9), so no orphan keeps training."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(job_path: str) -> int:
    signal.signal(signal.SIGTERM, _stop)
    _die_with_parent()
    from harness.runner import RunContext, limit_examples, run_variant
    from harness.runstore import atomic_write_json
    from harness.strategies import STRATEGIES
    from harness.task import load_examples, load_task

    job = json.loads(Path(job_path).read_text())
    task = load_task(job["task_path"])
    data = load_examples(task)
    strategy = STRATEGIES[job["strategy"]]
    variant = next(v for v in strategy.variants(task.strategy_configs[job["strategy"]]) if v.name == job["variant"])
    train, test = limit_examples(data, job["limit"], job["seed"])
    ctx = RunContext(task=task, data=data, train=train, test=test, device=job["device"], seed=job["seed"],
                     progress=job.get("progress", True))
    try:
        record = run_variant(ctx, variant, job["run_info"])
    except KeyboardInterrupt:
        return 130
    atomic_write_json(Path(job["record_path"]), record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
