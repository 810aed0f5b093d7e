"""``compare``: plan the runs of a task, run each in its own worker process, keep every finished record.

Each run gets a fresh process (``python -m harness.worker``) so that its peak memory is its own
(``ru_maxrss`` of a new process), an out-of-memory kill or a crash in one arm cannot take the
others down, and the parent stays small. The parent writes ``results.json`` after every run, so an
interrupted compare keeps what finished; running it again skips runs whose record has the same
config hash (``--fresh`` recomputes).

With ``--num-processes N`` each fine-tuning run is N processes started by ``accelerate launch``
(``harness.distributed``): data parallel, or FSDP for full fine-tuning that does not fit one device.
Prompting and RAG runs are evaluation only and stay one process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import distributed
from harness.errors import UserError
from harness.runstore import atomic_write_json, config_hash, read_json, record_path, reusable, run_id, summarize
from harness.strategies import FINE_TUNING, STRATEGIES, Variant
from harness.task import Task, load_examples, load_task
from harness.worker import error_path

RESULTS_SCHEMA = 1


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a compare: what was kept, for the one-line message."""

    def __init__(self, out_dir: Path, kept: int):
        super().__init__(f"kept {kept} finished run(s) in {out_dir}")
        self.out_dir, self.kept = out_dir, kept


@dataclass
class CompareOptions:
    out_dir: Path
    device: str = "auto"
    only: list[str] | None = None
    skip: list[str] | None = None
    limit: int | None = None
    seed: int | None = None
    fresh: bool = False
    isolate: bool = True  # one worker process per run; False runs in this process (tests)
    progress: bool = True
    # called before each run with the variant and this device's hardware; a returned reason fails the run
    # at once (the advisor's memory model: what cannot fit fails before training, not an hour in)
    preflight: Callable[[Variant, dict], str | None] | None = None
    num_processes: int = 1  # processes per fine-tuning run, one device each (accelerate launch)
    sharding: str = "auto"  # with several processes: ddp, fsdp, or auto (decided per run by plan_sharding)
    accelerate_config: Path | None = None  # a user's `accelerate config` file for the launcher
    # (variant, device facts incl. num_processes) -> "ddp" | "fsdp" for --sharding auto of full fine-tuning on
    # GPUs: the advisor's memory model shards only when one device cannot hold a replica
    plan_sharding: Callable[[Variant, dict], str] | None = None


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here (torch reports none); use --device cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UserError(f"--device {device}: unknown device; use auto, cpu or cuda")
    return device


def plan(task: Task, only: list[str] | None, limit: int | None = None, skip: list[str] | None = None) -> list[Variant]:
    """The runs to make. ``--limit`` is a quick look: it skips the learning-curve runs (data fractions < 1)."""
    for name in skip or []:
        if name not in STRATEGIES:
            raise UserError(f"--skip: unknown strategy '{name}'; choose from: {', '.join(STRATEGIES)}")
    variants = [v for v in _planned(task, only) if v.strategy not in (skip or [])]
    if limit:
        variants = [v for v in variants if v.params.get("data_fraction", 1.0) == 1.0]
    return variants


def _planned(task: Task, only: list[str] | None) -> list[Variant]:
    names = list(task.strategy_configs)
    if only:
        for name in only:
            if name not in STRATEGIES:
                raise UserError(f"--only: unknown strategy '{name}'; choose from: {', '.join(STRATEGIES)}")
            if name not in names:
                raise UserError(f"--only: strategy '{name}' is not in {task.path.name} (strategies: {', '.join(names)}); "
                                f"add it under strategies: or drop it from --only")
        names = [n for n in names if n in only]
    return [v for n in names for v in STRATEGIES[n].variants(task.strategy_configs[n])]


def _run_in_worker(job: dict, path: Path, processes: int, accelerate_config: Path | None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    if processes > 1:
        command = distributed.launch_command(f.name, processes, job["device"], accelerate_config)
    else:
        command = [sys.executable, "-m", "harness.worker", f.name]
    errors = [error_path(path, rank) for rank in range(1, processes)]
    for stale in errors:
        stale.unlink(missing_ok=True)
    proc = subprocess.Popen(command)
    try:
        proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the worker too; SIGTERM (re-raised as this) may not: stop it
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        Path(f.name).unlink(missing_ok=True)
    other_errors = [e.read_text().strip() for e in errors if e.exists()]
    for e in errors:
        e.unlink(missing_ok=True)
    record = read_json(path)
    if record and record.get("run_info", {}).get("config_hash") == job["run_info"]["config_hash"] \
            and record.get("status") in ("ok", "failed"):
        return record
    if proc.returncode == -signal.SIGINT or proc.returncode == 130:
        raise KeyboardInterrupt
    if other_errors:
        why = f"failed in {other_errors[0]}"
    elif proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        why = "killed by SIGKILL, most likely out of memory" if sig == "SIGKILL" else f"killed by {sig}"
    else:
        why = f"exited with code {proc.returncode} without writing its record"
    return {"schema": 1, "run_info": {**job["run_info"]}, "status": "failed",
            "error": f"worker process {why}", "train_info": None, "eval_info": None, "predictions": []}


def run_compare(task_path: str | Path, options: CompareOptions, log: Callable[[str], None] = print) -> dict:
    from harness.meters import hardware

    if distributed.world_size() > 1:
        raise UserError(f"compare: started as one of {distributed.world_size()} processes (under accelerate launch or "
                        f"torchrun); run advisor compare as a plain command with --num-processes "
                        f"{distributed.world_size()}: it launches each fine-tuning run itself, and prompting and "
                        f"RAG need one process")
    task = load_task(task_path)
    data = load_examples(task)  # validate the data before anything runs
    seed = task.spec.seed if options.seed is None else options.seed
    device = resolve_device(options.device)
    distributed.check_processes(options.num_processes, device, options.sharding)
    if options.num_processes > 1 and not options.isolate:
        raise UserError("--num-processes: several processes need worker processes (isolate=True)")
    variants = plan(task, options.only, options.limit, options.skip)
    for name in dict.fromkeys(v.strategy for v in variants):
        STRATEGIES[name].check_device(device)  # e.g. QLoRA on a CPU: one line now, not after the other arms
    out_dir = Path(options.out_dir)
    fingerprint = task.fingerprint()
    n_train = min(len(data.train), 5 * options.limit) if options.limit else len(data.train)
    n_test = min(len(data.test), options.limit) if options.limit else len(data.test)
    results = {
        "schema": RESULTS_SCHEMA,
        "task": {"name": task.name, "kind": task.kind, "path": str(task.path), "metric": task.metric,
                 "model": task.model_ref.describe(), "labels": data.labels, "n_train": n_train, "n_test": n_test,
                 "goals": vars(task.spec.goals), "deployment": vars(task.spec.deployment),
                 "knowledge": str(task.knowledge_path) if task.knowledge_path else None},
        "device": hardware(device),
        "options": {"limit": options.limit, "seed": seed, "only": options.only, "skip": options.skip,
                    "num_processes": options.num_processes, "sharding": options.sharding},
        "runs": [],
        "costs": None,            # filled by the cost models (advisor)
        "recommendation": None,   # filled by the recommendation (advisor)
    }
    rows: dict[str, dict] = {}

    def save_results() -> None:
        results["runs"] = [rows[run_id(v)] for v in variants if run_id(v) in rows]
        atomic_write_json(out_dir / "results.json", results)

    def processes(v: Variant) -> int:
        return options.num_processes if v.strategy in FINE_TUNING else 1

    digests = {run_id(v): config_hash(fingerprint, v, seed=seed, limit=options.limit, device=device,
                                      model=task.model_ref.describe(), num_processes=processes(v)) for v in variants}
    ctx = None
    try:
        for i, variant in enumerate(variants, start=1):
            path = record_path(out_dir, variant)
            digest = digests[run_id(variant)]
            label = f"[{i}/{len(variants)}] {variant.strategy} {variant.name}"
            record = None if options.fresh else reusable(path, digest)
            if record:
                log(f"{label}: reusing finished run ({path}); --fresh recomputes")
            else:
                n = processes(variant)
                sharding = _sharding(variant, options, {**results["device"], "num_processes": n}) if n > 1 else "none"
                log(f"{label}: running on {device}" + (f" x {n} processes ({sharding})" if n > 1 else "") + " ...")
                run_info = {"task": task.name, "strategy": variant.strategy, "variant": variant.name,
                            "params": variant.params, "config_hash": digest, "seed": seed, "limit": options.limit,
                            "device": device, "model": task.model_ref.describe(), "num_processes": n,
                            "sharding": sharding}
                facts = {**results["device"], "num_processes": n, "sharding": sharding}
                reason = options.preflight(variant, facts) if options.preflight else None
                if reason:
                    record = {"schema": 1, "run_info": run_info, "status": "failed", "error": reason,
                              "train_info": None, "eval_info": None, "predictions": []}
                elif options.isolate:
                    job = {"task_path": str(task.path), "strategy": variant.strategy, "variant": variant.name,
                           "device": device, "seed": seed, "limit": options.limit, "record_path": str(path),
                           "run_info": run_info, "progress": options.progress, "sharding": sharding}
                    record = _run_in_worker(job, path, n, options.accelerate_config)
                else:
                    from harness.runner import RunContext, limit_examples, run_variant

                    if ctx is None:
                        train, test = limit_examples(data, options.limit, seed)
                        ctx = RunContext(task=task, data=data, train=train, test=test, device=device, seed=seed,
                                         progress=options.progress)
                    record = run_variant(ctx, variant, run_info)
                atomic_write_json(path, record)
                log(f"{label}: {_one_line(record)}")
            rows[run_id(variant)] = summarize(record, path, out_dir)
            save_results()
    except KeyboardInterrupt:
        for variant in variants:  # a worker may have finished its record just before the interrupt
            path = record_path(out_dir, variant)
            record = rows.get(run_id(variant)) is None and reusable(path, digests[run_id(variant)])
            if record:
                rows[run_id(variant)] = summarize(record, path, out_dir)
        save_results()
        raise CompareInterrupted(out_dir, sum(r["status"] == "ok" for r in rows.values())) from None
    save_results()
    return results


def _sharding(variant: Variant, options: CompareOptions, device: dict) -> str:
    """DDP or FSDP for one multi-process run. FSDP is for full fine-tuning on GPUs only: LoRA's trained state is
    small (sharding frozen weights is not worth FSDP's gathers) and Accelerate has no FSDP on CPU. For full
    fine-tuning on GPUs: what was asked, and for auto the planner's choice (without one, DDP)."""
    if variant.strategy != "full" or not str(device.get("device", "")).startswith("cuda"):
        return "ddp"
    if options.sharding != "auto":
        return options.sharding
    return options.plan_sharding(variant, device) if options.plan_sharding else "ddp"


def _one_line(record: dict) -> str:
    if record.get("status") != "ok":
        return f"FAILED: {record.get('error')}"
    ev, tr = record["eval_info"], record.get("train_info") or {}
    parts = [f"{ev['metric']} {ev['quality']:.3f}", f"p50 {ev['latency_ms_p50']:.0f} ms", f"p95 {ev['latency_ms_p95']:.0f} ms"]
    if tr:
        parts.append(f"trained {tr['train_seconds']:.0f} s")
    parts.append(f"{record['run_info']['wall_seconds']:.0f} s total")
    return "ok: " + ", ".join(parts)
