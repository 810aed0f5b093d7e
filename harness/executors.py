"""Where a compare's runs go: one small ``Executor`` protocol, and the executors that need nothing beyond the
harness - a fresh worker process per run on this machine (``local``, the default), or this process itself (tests).
The Ray executor (``harness.ray_executor``) places each run as a Ray task on a cluster.

An executor answers for the machine the runs will see (which device ``auto`` means, what hardware it is, how
many processes a run may have) and runs one job to its record. ``concurrent_runs`` says whether the compare may
hand it several runs at once (from several threads): the local executor runs one at a time, so that each run's
peak memory and speed are its own; Ray queues what it cannot place yet.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from harness import checkpoints, distributed
from harness.compare_options import CompareOptions
from harness.errors import UserError
from harness.job import Job
from harness.meters import hardware
from harness.record import Hardware, RunRecord
from harness.workers import run_in_worker


class Executor(Protocol):
    name: str  # "local" or "ray": each record's meta_info.executor
    concurrent_runs: bool  # may the compare hand it several runs at once?
    remote_storage: bool  # may a run keep files (a trial's checkpoint) where this process cannot see them?

    def device(self, asked: str) -> str:
        """``--device`` resolved where the runs will run (auto: cuda when there is a GPU)."""
        ...

    def hardware(self, device: str) -> Hardware:
        """The machine a run on ``device`` gets (the memory preflight and the report use it)."""
        ...

    def check_processes(self, processes: int, device: str, sharding: str) -> None:
        """A one-line error, before anything runs, when runs of ``processes`` processes cannot be placed."""
        ...

    def run(self, job: Job, processes: int, accelerate_config: Path | None, near: str | None = None) -> RunRecord:
        """Run ``job`` (``processes`` processes) to its record, written at ``job.record_path``. ``near``: the node
        that holds what the run loads (its trial's checkpoint), to place it there when it can."""
        ...

    def discard(self, folder: Path, node: str | None) -> None:
        """Remove a run's checkpoint folder, on ``node`` when it lives there."""
        ...

    def stop(self) -> None:
        """Ctrl-C: stop every run in flight (each stops its worker processes)."""
        ...

    def close(self) -> None: ...


def resolve_device(device: str) -> str:
    """``--device`` on this machine."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            "--device cuda: no CUDA device is available here (torch reports none); use --device cpu or auto"
        )
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UserError(f"--device {device}: unknown device; use auto, cpu or cuda")
    return device


class LocalExecutor:
    """Each run in a fresh worker process on this machine (``python -m harness.worker``, or several under
    ``accelerate launch``), one run at a time. ``in_process``: in this process instead (tests; one process)."""

    name = "local"
    concurrent_runs = False
    remote_storage = False

    def __init__(self, *, in_process: bool = False):
        self.in_process = in_process

    def device(self, asked: str) -> str:
        return resolve_device(asked)

    def hardware(self, device: str) -> Hardware:
        return hardware(device)

    def check_processes(self, processes: int, device: str, sharding: str) -> None:
        distributed.check_processes(processes, device, sharding)
        if processes > 1 and self.in_process:
            raise UserError("--num-processes: several processes need worker processes (isolate=True)")

    def run(self, job: Job, processes: int, accelerate_config: Path | None, near: str | None = None) -> RunRecord:
        job = replace(job, executor=self.name, node=socket.gethostname())
        if not self.in_process:
            return run_in_worker(job, processes, accelerate_config)
        from harness.runner import execute  # torch: only when a run happens in this process

        record = execute(job)
        assert record is not None  # one process: the main one
        return record

    def discard(self, folder: Path, node: str | None) -> None:
        checkpoints.remove(folder)

    def stop(self) -> None:
        """Nothing to do: Ctrl-C reaches the one worker process (``run_in_worker`` stops it)."""

    def close(self) -> None:
        """Nothing was started."""


def make_executor(options: CompareOptions, out_dir: Path, *, isolate: bool = True) -> Executor:
    """The executor ``options`` ask for (``isolate=False``: the local one, running in this process, for tests)."""
    if options.executor == "ray":
        if not isolate:
            raise UserError("--executor ray: runs go to Ray tasks, not this process (isolate=True)")
        from harness.ray_executor import RayExecutor  # Ray: an optional extra, imported only when asked for

        return RayExecutor(out_dir, options.ray_address, options.cpus_per_run)
    if options.executor != "local":
        raise UserError(f"--executor {options.executor}: unknown; use local or ray")
    if options.ray_address:
        raise UserError("--ray-address: only with --executor ray")
    return LocalExecutor(in_process=not isolate)
