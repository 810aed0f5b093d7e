"""``compare``: plan the runs of a task, run them through an executor, keep every finished record.

Each run gets a fresh process (``python -m harness.worker``) so that its peak memory is its own
(``ru_maxrss`` of a new process), an out-of-memory kill or a crash in one arm cannot take the
others down, and the parent stays small. Where that process runs is the executor's business
(``harness.executors``): this machine, one run after another (``local``), or a Ray task placed on any node of a
cluster with room, runs in parallel (``ray``, ``harness.ray_executor``). The parent keeps ``results.json`` current
after every run (``harness.arm_runs``), so an interrupted compare keeps what finished; running it again skips
runs whose record has the same config hash (``--fresh`` recomputes).

With ``--num-processes N`` each fine-tuning run is N processes started by ``accelerate launch``
(``harness.distributed``): data parallel, or FSDP for full fine-tuning that does not fit one device.
Prompting and RAG runs are evaluation only and stay one process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness import distributed
from harness.arm_runs import CompareRun, Preflight, RunData
from harness.compare_options import CompareOptions
from harness.endpoints import CompareBudgets
from harness.errors import UserError
from harness.executors import make_executor
from harness.io import display_path
from harness.record import Hardware
from harness.runstore import CompareSettings, Comparison, EndpointSummary, Splits, TaskSummary
from harness.spec import Datasets, Example, Task, carve_validation
from harness.strategies import STRATEGIES, Variant, check_device, traits
from harness.task import check_endpoint_keys, load_examples
from harness.tuning import plan_arms

# (variant, this device, processes per run) -> "ddp" | "fsdp" for --sharding auto of a shardable run on GPUs: the
# advisor's memory model shards only when one device cannot hold a replica
ShardingPlanner = Callable[[Variant, Hardware, int], str]


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a compare: what was kept, for the one-line message."""

    def __init__(self, out_dir: Path, kept: int):
        super().__init__(f"kept {kept} finished run(s) in {out_dir}")
        self.out_dir, self.kept = out_dir, kept


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
                raise UserError(
                    f"--only: strategy '{name}' is not in {task.path.name} (strategies: {', '.join(names)}); "
                    f"add it under strategies: or drop it from --only"
                )
        names = [n for n in names if n in only]
    return [v for n in names for v in STRATEGIES[n].variants(task.strategy_configs[n])]


def run_compare(
    task: Task,
    options: CompareOptions,
    *,
    preflight: Preflight | None = None,
    plan_sharding: ShardingPlanner | None = None,
    isolate: bool = True,
    log: Callable[[str], None] = print,
) -> Comparison:
    """Run every planned variant of ``task`` through the executor ``options`` name (``isolate=False``: the local
    one, in this process, for tests) and return what was measured. ``results.json`` is written after each run,
    without costs: the advisor adds them at the end."""
    if distributed.world_size() > 1:
        raise UserError(
            f"compare: started as one of {distributed.world_size()} processes (under accelerate launch or "
            f"torchrun); run advisor compare as a plain command with --num-processes "
            f"{distributed.world_size()}: it launches each fine-tuning run itself, and prompting and "
            f"RAG need one process"
        )
    data = load_examples(task)  # validate the data before anything runs
    seed = task.spec.seed if options.seed is None else options.seed
    variants = plan(task, options.only, options.limit, options.skip)
    endpoint_names = list(dict.fromkeys(e.name for v in variants if (e := task.endpoint_of(v.params))))
    check_endpoint_keys(task, endpoint_names)  # an unset key: one line now, nothing runs
    budgets = CompareBudgets(task, endpoint_names, options.max_api_usd)
    out_dir = options.folder(task)
    executor = make_executor(options, out_dir, isolate=isolate)
    try:
        device = executor.device(options.device)
        executor.check_processes(options.num_processes, device, options.sharding)
        for name in dict.fromkeys(v.strategy for v in variants):
            check_device(name, device)  # e.g. QLoRA on a CPU: one line now, not after the other arms
        limited_train, test = data.limited(options.limit, seed)
        train, validation = carve_validation(limited_train, task.spec.evaluation.validation, seed)
        n_seeds = options.seeds or task.spec.evaluation.seeds
        arms = plan_arms(
            task,
            variants,
            seed=seed,
            seeds=n_seeds,
            trials=task.spec.tuning.trials,
            has_validation=bool(validation),
            quick=bool(options.limit),
        )
        machine = executor.hardware(device)
        comparison = _comparison(
            task, options, data, (train, validation, test), machine, endpoint_names, seed=seed, seeds=n_seeds
        )
        runs = CompareRun(
            task,
            RunData(data, train, validation, test),
            options,
            executor,
            comparison,
            arms,
            budgets=budgets,
            preflight=preflight,
            sharding=lambda variant, n: _sharding(variant, options.sharding, machine, n, plan_sharding),
            log=log,
        )
        try:
            runs.run()
        except KeyboardInterrupt:
            raise CompareInterrupted(out_dir, runs.kept()) from None
    finally:
        executor.close()
    return comparison


def _comparison(
    task: Task,
    options: CompareOptions,
    data: Datasets,
    splits: tuple[list[Example], list[Example], list[Example]],
    machine: Hardware,
    endpoint_names: list[str],
    *,
    seed: int,
    seeds: int,
) -> Comparison:
    """What the compare is about, before any run: the task, its splits, the machine and the settings."""
    train, validation, test = splits
    return Comparison(
        task=TaskSummary(
            name=task.name,
            kind=task.kind,
            path=display_path(task.path),
            metric=task.metric,
            model=task.model_ref.shown(task.path.parent),
            labels=data.labels,
            n_train=len(train),
            n_test=len(test),
            n_validation=len(validation),
            goals=task.spec.goals,
            deployment=task.spec.deployment,
            knowledge=display_path(task.knowledge_path) if task.knowledge_path else None,
            data_cost=dict(task.spec.data_cost),
            endpoints={name: EndpointSummary.of(e) for name, e in task.endpoints.items() if name in endpoint_names},
        ),
        device=machine,
        options=CompareSettings(
            limit=options.limit,
            seed=seed,
            only=options.only,
            skip=options.skip,
            num_processes=options.num_processes,
            sharding=options.sharding,
            max_api_usd=options.max_api_usd,
            seeds=1 if options.limit else seeds,
            trials=1 if options.limit or not validation else task.spec.tuning.trials,
            executor=options.executor,
        ),
        splits=Splits(
            train=[ex.id for ex in train], validation=[ex.id for ex in validation], test=[ex.id for ex in test]
        ),
    )


def _sharding(
    variant: Variant, asked: str, machine: Hardware, processes: int, plan_sharding: ShardingPlanner | None
) -> str:
    """DDP or FSDP for one multi-process run. FSDP is for shardable strategies (full fine-tuning) on GPUs only:
    LoRA's trained state is small (sharding frozen weights is not worth FSDP's gathers) and Accelerate has no
    FSDP on CPU. For a shardable run on GPUs: what was asked, and for auto the planner's choice (without one,
    DDP)."""
    if not traits(variant.strategy).shardable or not machine.on_cuda:
        return "ddp"
    if asked != "auto":
        return asked
    return plan_sharding(variant, machine, processes) if plan_sharding else "ddp"
