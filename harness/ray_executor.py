"""The Ray executor (``advisor compare --executor ray``): each run is one Ray task that asks for what it needs -
``--cpus-per-run`` CPUs per process, and on GPUs one GPU per process - and Ray places it on any node with room,
so runs proceed in parallel as the cluster allows. Inside the task the run is what the local executor makes: a
fresh worker process (``harness.workers.run_in_worker``), or N processes under ``accelerate launch`` for a
multi-process run, whose resources a placement group keeps on one node (STRICT_PACK).

Storage. **Records are streamed back**: the task returns the run's record and the driver writes it in the output
folder, so records need no shared storage and the driver is the one writer of ``results.json``. What a run leaves
for another run stays on its node: a fine-tuning trial's checkpoint is kept where the trial ran, and the final run
that serves it is placed on that node when it has room (soft node affinity); placed elsewhere, it trains again with
the same seed. A node that sees the output folder (the driver's node, or shared storage mounted at the same path)
uses it as it is; any other writes under a node-local scratch folder (``node_folder``).

Stopping. On Ctrl-C the driver cancels every task: Ray raises KeyboardInterrupt in each running task, which stops
its worker process (SIGINT, then SIGKILL after 15 s); what is still running after a grace period is force-killed,
and a Ray instance this executor started is shut down. Worker processes also die with their parent
(``harness.distributed.die_with_parent``), so none is left behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any, overload

from harness import checkpoints
from harness.errors import UserError
from harness.io import atomic_write_json
from harness.job import Job
from harness.meters import hardware
from harness.record import Hardware, RunRecord
from harness.workers import run_in_worker

try:
    import ray
    from ray.exceptions import RayError, TaskCancelledError
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy
except ImportError as err:  # an optional extra
    raise UserError(
        "--executor ray: Ray is not installed; install it with: pip install -e '.[ray]' (or pip install ray)"
    ) from err

CANCEL_GRACE_SECONDS = 30.0  # a cancelled run's worker gets SIGINT, then SIGKILL after 15 s (run_in_worker)


@overload
def node_folder(path: Path, out_dir: Path) -> Path: ...
@overload
def node_folder(path: None, out_dir: Path) -> None: ...
def node_folder(path: Path | None, out_dir: Path) -> Path | None:
    """Where ``path`` (a file or folder under the driver's output folder ``out_dir``, absolute) lives on this
    node: itself when this node sees the output folder, else the same place under a node-local scratch folder
    named after the output folder (the same for every run of this compare on this node)."""
    if path is None or out_dir.is_dir():
        return path
    digest = hashlib.sha256(str(out_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "advisor-ray" / digest / path.relative_to(out_dir)


def _on_this_node(job: Job, out_dir: Path, node: str) -> Job:
    here = dataclasses.replace(
        job,
        executor="ray",
        node=node,
        record_path=node_folder(job.record_path, out_dir),
        api_cache=node_folder(job.api_cache, out_dir),
        save_checkpoint=node_folder(job.save_checkpoint, out_dir),
        load_checkpoint=node_folder(job.load_checkpoint, out_dir),
    )
    here.record_path.parent.mkdir(parents=True, exist_ok=True)
    return here


@ray.remote(max_retries=0)  # a run that died (out of memory, a lost node) is recorded as failed, not re-run
def _run_task(job: Job, processes: int, accelerate_config: Path | None, out_dir: Path) -> RunRecord:
    node = ray.get_runtime_context().get_node_id()
    return run_in_worker(_on_this_node(job, out_dir, node), processes, accelerate_config)


@ray.remote(num_cpus=0, max_retries=0)
def _probe(device: str) -> Hardware:
    return hardware(device)


@ray.remote(num_cpus=0, max_retries=0)
def _remove(folder: Path, out_dir: Path) -> None:
    here = node_folder(folder, out_dir)
    if here is not None:
        checkpoints.remove(here)


def _absolute(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None


class RayExecutor:
    """Runs on a Ray cluster: joined at ``address`` (``auto``, ``ray://HOST:PORT``), or a local instance started
    here and shut down by ``close`` (or the one this process already started: tests start it with num_cpus=2)."""

    name = "ray"
    concurrent_runs = True
    remote_storage = True

    def __init__(self, out_dir: Path, address: str | None, cpus_per_run: int = 1):
        self.out_dir = out_dir.resolve()
        self.cpus_per_run = cpus_per_run
        self.started = False
        if not ray.is_initialized():
            # ray.init takes over SIGTERM (and may SIGINT): the compare's own handlers stop it, keeping what finished
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                # "local": a new instance of our own, even where `ray start` left one running
                ray.init(address=address or "local", include_dashboard=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"--ray-address {address}" if address else "a local Ray instance"
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise UserError(
                    f"--executor ray: could not start or join {where}: {first}; start a cluster with `ray start "
                    f"--head` and pass --ray-address auto, or leave --ray-address out for a local instance"
                ) from None
            finally:
                if threading.current_thread() is threading.main_thread():
                    for sig, handler in handlers.items():
                        if handler is not None:
                            signal.signal(sig, handler)
            self.started = True
        self._lock = threading.Lock()
        self._in_flight: set[Any] = set()  # ObjectRefs of running tasks

    def device(self, asked: str) -> str:
        gpus = ray.cluster_resources().get("GPU", 0)
        if asked == "auto":
            return "cuda" if gpus else "cpu"
        if asked.startswith("cuda:"):
            raise UserError(f"--device {asked} with --executor ray: Ray assigns each run its GPUs; use --device cuda")
        if asked == "cuda" and not gpus:
            raise UserError("--device cuda: the Ray cluster has no GPU; use --device cpu or auto")
        if asked not in ("cpu", "cuda"):
            raise UserError(f"--device {asked}: unknown device; use auto, cpu or cuda")
        return asked

    def hardware(self, device: str) -> Hardware:
        """A node that runs would get: asked of one with a GPU for cuda (the driver may have none)."""
        probe: Any = _probe.options(num_gpus=1 if device == "cuda" else 0)
        return ray.get(probe.remote(device))

    def check_processes(self, processes: int, device: str, sharding: str) -> None:
        kind = "GPU" if device == "cuda" else "CPU"
        need = processes * (1 if kind == "GPU" else self.cpus_per_run)
        most = max((n.get("Resources", {}).get(kind, 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if processes > 1 and need > most:
            raise UserError(
                f"--num-processes {processes}: a run's processes share one node, and no node of the Ray cluster "
                f"has {need:g} {kind}s (the most: {most:g}); use --num-processes {int(most // (need / processes))} "
                f"or fewer, or --accelerate-config for a multi-node launch"
            )
        if sharding == "fsdp" and device != "cuda":
            raise UserError("--sharding fsdp: Accelerate runs FSDP on GPUs only; on CPU use --sharding ddp (or auto)")

    def run(self, job: Job, processes: int, accelerate_config: Path | None, near: str | None = None) -> RunRecord:
        local_record = job.record_path
        job = dataclasses.replace(
            job,
            record_path=local_record.resolve(),
            api_cache=_absolute(job.api_cache),
            save_checkpoint=_absolute(job.save_checkpoint),
            load_checkpoint=_absolute(job.load_checkpoint),
            progress=False,  # bars from many nodes interleave in the driver's log
        )
        gpus = processes if job.run_info.device == "cuda" else 0
        cpus = self.cpus_per_run * processes
        options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus}
        if processes > 1:  # one node for all of the run's processes (accelerate launch starts them there)
            group = placement_group([{"CPU": cpus, **({"GPU": gpus} if gpus else {})}], strategy="STRICT_PACK")
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group)
        elif near:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(near, soft=True)
        # Ray sets the task's OMP_NUM_THREADS to its CPUs; the worker process's torch threads follow it
        ref = _run_task.options(**options).remote(job, processes, accelerate_config, self.out_dir)
        with self._lock:
            self._in_flight.add(ref)
        try:
            record: RunRecord = ray.get(ref)
        except TaskCancelledError:
            raise KeyboardInterrupt from None
        except RayError as err:  # the task or its node died: this run failed, the others go on
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            record = RunRecord.failed(job.run_info, f"ray task failed: {first}")
        finally:
            with self._lock:
                self._in_flight.discard(ref)
            if processes > 1:
                remove_placement_group(group)
        local_record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(local_record, record.to_json())  # streamed back: the driver writes every record
        return record

    def discard(self, folder: Path, node: str | None) -> None:
        checkpoints.remove(folder)  # this node's copy (or the shared one)
        if node and node != ray.get_runtime_context().get_node_id():
            where = NodeAffinitySchedulingStrategy(node, soft=True)  # a node that is gone: nothing to remove there
            ray.get(_remove.options(scheduling_strategy=where).remote(folder.resolve(), self.out_dir))

    def stop(self) -> None:
        with self._lock:
            running = list(self._in_flight)
        for ref in running:
            ray.cancel(ref)  # KeyboardInterrupt in the task: it stops its worker process
        if running:
            _, still = ray.wait(running, num_returns=len(running), timeout=CANCEL_GRACE_SECONDS)
            for ref in still:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            ray.shutdown()
            self.started = False
