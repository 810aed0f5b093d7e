"""Worker process for one run: ``python -m harness.worker JOB.json`` (started by ``harness.compare``).

Writes the run's record atomically to ``record_path``; exits 0 even when the run failed (the
failure is in the record), 130 on Ctrl-C. Started as one of several processes by ``accelerate
launch`` (``harness.launch``), it trains with the others, and only the main process evaluates and
writes the record. There a failed run exits 1, so that the launcher stops the other processes
instead of leaving them waiting in a collective; a process other than the main one that fails
writes its error beside the record (``error_path``) for the compare to report.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from pathlib import Path


def _stop(signum, frame):
    raise KeyboardInterrupt


def die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies (even by kill -9), so no orphan keeps training."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def error_path(record_path: str | Path, rank: int) -> Path:
    """Where process ``rank`` (not the main one) of a multi-process run leaves its error."""
    record_path = Path(record_path)
    return record_path.with_name(f".{record_path.stem}.rank{rank}.error")


def main(job_path: str) -> int:
    signal.signal(signal.SIGTERM, _stop)
    die_with_parent()
    from harness import distributed
    from harness.runstore import atomic_write_json

    job = json.loads(Path(job_path).read_text())
    try:
        record = _run(job)
    except KeyboardInterrupt:
        return 130
    except BaseException as err:  # only a non-main process gets here (run_variant records failures)
        message = f"process {distributed.rank()} of {distributed.world_size()}: {type(err).__name__}: {err}"
        error_path(job["record_path"], distributed.rank()).write_text(message.splitlines()[0] + "\n")
        traceback.print_exc()
        return 1
    if record is None:  # a non-main process of a multi-process run: it trained; the main process records
        return 0
    atomic_write_json(Path(job["record_path"]), record)
    return 1 if distributed.world_size() > 1 and record.get("status") != "ok" else 0


def _run(job: dict) -> dict | None:
    from harness import distributed
    from harness.runner import RunContext, limit_examples, run_variant
    from harness.strategies import STRATEGIES
    from harness.task import load_examples, load_task

    task = load_task(job["task_path"])
    data = load_examples(task)
    strategy = STRATEGIES[job["strategy"]]
    variant = next(v for v in strategy.variants(task.strategy_configs[job["strategy"]]) if v.name == job["variant"])
    train, test = limit_examples(data, job["limit"], job["seed"])
    device = distributed.process_device(job["device"])
    if device.startswith("cuda:"):
        import torch

        torch.cuda.set_device(device)  # this process's GPU: its memory counters, its NCCL device
    ctx = RunContext(task=task, data=data, train=train, test=test, device=device, seed=job["seed"],
                     progress=job.get("progress", True) and distributed.is_main_process(),
                     sharding=job.get("sharding", "none"))
    return run_variant(ctx, variant, job["run_info"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
