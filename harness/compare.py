"""``compare``: plan the runs of a task, run each in its own worker process, keep every finished record.

Each run gets a fresh process (``python -m harness.worker``) so that its peak memory is its own
(``ru_maxrss`` of a new process), an out-of-memory kill or a crash in one arm cannot take the
others down, and the parent stays small. The worker writes the run's record, once; the parent keeps
``results.json`` current after every run, so an interrupted compare keeps what finished; running it
again skips runs whose record has the same config hash (``--fresh`` recomputes).

With ``--num-processes N`` each fine-tuning run is N processes started by ``accelerate launch``
(``harness.distributed``): data parallel, or FSDP for full fine-tuning that does not fit one device.
Prompting and RAG runs are evaluation only and stay one process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import checkpoints, distributed
from harness.endpoints import CompareBudgets
from harness.errors import UserError
from harness.io import atomic_write_json, display_path
from harness.job import Job
from harness.meters import hardware
from harness.record import Hardware, RunInfo, RunRecord
from harness.runstore import (
    CompareSettings,
    Comparison,
    EndpointSummary,
    Splits,
    StoredRun,
    TaskSummary,
    config_hash,
    reusable,
    write_results,
)
from harness.schema import doc
from harness.spec import Task, carve_validation
from harness.strategies import STRATEGIES, Variant, check_device, traits
from harness.strategies.tuned_rag import fill_retrieval
from harness.task import check_endpoint_keys, load_examples
from harness.tuning import checkpoint_dir, choose, final_path, plan_arms, trial_path
from harness.workers import one_line, run_in_worker, store_record, validation_line

# (variant, this device, processes per run, sharding) -> why the run cannot fit, or None: the advisor's memory model,
# so that what cannot fit fails before training, not an hour in
Preflight = Callable[[Variant, Hardware, int, str], "str | None"]
# (variant, this device, processes per run) -> "ddp" | "fsdp" for --sharding auto of a shardable run on GPUs: the
# advisor's memory model shards only when one device cannot hold a replica
ShardingPlanner = Callable[[Variant, Hardware, int], str]


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a compare: what was kept, for the one-line message."""

    def __init__(self, out_dir: Path, kept: int):
        super().__init__(f"kept {kept} finished run(s) in {out_dir}")
        self.out_dir, self.kept = out_dir, kept


def option(text: str, **checks: object) -> dict[str, object]:
    """Field metadata of a command-line setting: ``harness.schema.doc`` plus how the option is spelt."""
    return {**doc(text), **checks}


@dataclass
class CompareOptions:
    """How ``advisor compare`` runs a task: each field is one command-line option (its doc is the help)."""

    out_dir: Path | None = field(
        default=None, metadata=option("Output folder (default: reports/<task name>/).", flag="--out", path="dir")
    )
    device: str = field(default="auto", metadata=option("auto | cpu | cuda (or cuda:N)."))
    only: list[str] | None = field(default=None, metadata=option("Comma-separated strategies to run, e.g. prompt,rag."))
    skip: list[str] | None = field(
        default=None, metadata=option("Comma-separated strategies to leave out, e.g. qlora on a CPU machine.")
    )
    limit: int | None = field(
        default=None,
        metadata=option(
            "Quick look: at most N test and 5*N training examples; one setting per arm (no tuning trials), one seed, "
            "no learning-curve runs.",
            min=1,
        ),
    )
    seed: int | None = field(default=None, metadata=option("Override the task's seed.", min=0))
    seeds: int | None = field(
        default=None,
        metadata=option(
            "Run each fine-tuning arm's chosen setting with N seeds (default: the task's evaluation.seeds); the "
            "rows give the mean, the standard deviation and each seed's score.",
            min=1,
        ),
    )
    fresh: bool = field(default=False, metadata=option("Recompute runs even when a finished record matches."))
    progress: bool = field(default=True, metadata=option("Show progress bars.", flag="--progress/--no-progress"))
    num_processes: int = field(
        default=1, metadata=option("Processes per fine-tuning run (one GPU each), started by accelerate launch.", min=1)
    )
    sharding: str = field(
        default="auto",
        metadata=option(
            "With several processes: data parallel, FSDP (full fine-tuning on GPUs), or auto = FSDP only when the "
            "memory model says one GPU cannot hold a replica.",
            choices=distributed.SHARDING_CHOICES,
        ),
    )
    max_api_usd: float | None = field(
        default=None,
        metadata=option(
            "Spending cap for every endpoint request of this compare together, USD (each endpoint's own cap: "
            "endpoints.NAME.max_usd); a run stops before it would pass it.",
            min=0,
        ),
    )
    accelerate_config: Path | None = field(
        default=None,
        metadata=option(
            "An `accelerate config` file for the launcher (multi-node, custom FSDP/DeepSpeed plan).", path="file"
        ),
    )

    def folder(self, task: Task) -> Path:
        """Where the records, results.json and the report go."""
        return Path(self.out_dir or Path("reports") / task.name)


def resolve_device(device: str) -> str:
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
    """Run every planned variant of ``task`` (one worker process each; ``isolate=False``: in this process, for
    tests) and return what was measured. ``results.json`` is written after each run, without costs: the advisor
    adds them at the end."""
    if distributed.world_size() > 1:
        raise UserError(
            f"compare: started as one of {distributed.world_size()} processes (under accelerate launch or "
            f"torchrun); run advisor compare as a plain command with --num-processes "
            f"{distributed.world_size()}: it launches each fine-tuning run itself, and prompting and "
            f"RAG need one process"
        )
    data = load_examples(task)  # validate the data before anything runs
    seed = task.spec.seed if options.seed is None else options.seed
    device = resolve_device(options.device)
    distributed.check_processes(options.num_processes, device, options.sharding)
    if options.num_processes > 1 and not isolate:
        raise UserError("--num-processes: several processes need worker processes (isolate=True)")
    variants = plan(task, options.only, options.limit, options.skip)
    for name in dict.fromkeys(v.strategy for v in variants):
        check_device(name, device)  # e.g. QLoRA on a CPU: one line now, not after the other arms
    endpoint_names = list(dict.fromkeys(e.name for v in variants if (e := task.endpoint_of(v.params))))
    check_endpoint_keys(task, endpoint_names)  # an unset key: one line now, nothing runs
    budgets = CompareBudgets(task, endpoint_names, options.max_api_usd)
    out_dir = options.folder(task)
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
    machine = hardware(device)
    comparison = Comparison(
        task=TaskSummary(
            name=task.name,
            kind=task.kind,
            path=display_path(task.path),
            metric=task.metric,
            model=task.model_ref.shown(),
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
            seeds=1 if options.limit else n_seeds,
            trials=1 if options.limit or not validation else task.spec.tuning.trials,
        ),
        splits=Splits(
            train=[ex.id for ex in train], validation=[ex.id for ex in validation], test=[ex.id for ex in test]
        ),
    )
    finished: list[list[StoredRun]] = [[] for _ in arms]  # per arm, its rows so far

    def save_results() -> None:
        comparison.runs = [run for rows in finished for run in rows]
        write_results(out_dir, comparison)

    fingerprint = task.fingerprint()
    total = sum(arm.run_count for arm in arms)
    counter = iter(range(1, total + 1))

    def run_one(variant: Variant, path: Path, *, role: str, run_seed: int, **job_extra: Any) -> StoredRun:
        """One run (reused when a finished record has the same config hash)."""
        n = options.num_processes if traits(variant.strategy).trains and not job_extra.get("load_checkpoint") else 1
        digest = config_hash(
            fingerprint,
            variant,
            seed=run_seed,
            limit=options.limit,
            device=device,
            model=task.model_ref,
            num_processes=n,
            endpoint=task.endpoint_identity(variant.params),
            role=role,
        )
        what = "trial on validation" if role == "trial" else "on test"
        label = f"[{next(counter)}/{total}] {variant.strategy} {variant.name}" + (
            f" seed {run_seed}" if run_seed != seed else ""
        )
        record = None if options.fresh else reusable(path, digest)
        if record:
            log(f"{label}: reusing finished run ({path}); --fresh recomputes")
            return StoredRun(record, str(path.relative_to(out_dir)))
        sharding = _sharding(variant, options.sharding, machine, n, plan_sharding) if n > 1 else "none"
        log(f"{label} ({what}): running on {device}" + (f" x {n} processes ({sharding})" if n > 1 else "") + " ...")
        run_info = RunInfo(
            task=task.name,
            strategy=variant.strategy,
            variant=variant.name,
            params=variant.params,
            config_hash=digest,
            seed=run_seed,
            limit=options.limit,
            device=device,
            model=task.model_ref.shown(),
            num_processes=n,
            sharding=sharding,
            role=role,
        )
        job = Job(
            task=task,
            data=data,
            train=train,
            test=test,
            variant=variant,
            run_info=run_info,
            record_path=path,
            progress=options.progress,
            api_cache=out_dir / API_CACHE,
            api_cache_read=not options.fresh,
            api_budget_usd=budgets.left(task.endpoint_of(variant.params)),
            **job_extra,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            reason = preflight(variant, machine, n, sharding) if preflight else None
            if reason:
                record = store_record(job, RunRecord.failed(run_info, reason))
            elif isolate:
                record = run_in_worker(job, n, options.accelerate_config)
            else:
                from harness.runner import execute

                record = execute(job)
                assert record is not None  # one process: the main one
        except KeyboardInterrupt:
            finished_anyway = reusable(path, digest)  # the worker may have written its record just before
            if finished_anyway and role == "final" and run_seed == seed:
                late.append(StoredRun(finished_anyway, str(path.relative_to(out_dir))))
            raise
        budgets.spend(record)
        log(f"{label}: {one_line(record)}")
        return StoredRun(record, str(path.relative_to(out_dir)))

    chosen_rag: dict[str, Any] | None = None  # the local rag arm's chosen setting: the +rag arms' retrieval
    late: list[StoredRun] = []  # a run on test whose record was written as the interrupt came
    index = 0
    try:
        for index, arm in enumerate(arms):
            arm.candidates = [fill_retrieval(v, chosen_rag, task) for v in arm.candidates]
            trials: list[tuple[Variant, StoredRun]] = []
            for variant in arm.candidates if arm.tuned else []:
                keep: dict[str, Any] = {"save_checkpoint": checkpoint_dir(out_dir, variant)} if arm.trains else {}
                trials.append(
                    (
                        variant,
                        run_one(
                            variant,
                            trial_path(out_dir, variant),
                            role="trial",
                            run_seed=seed,
                            validation=validation,
                            **keep,
                        ),
                    )
                )
            if arm.tuned:
                picked = choose([(v, r.record) for v, r in trials])
                if picked is None:  # every trial failed: the arm's row is its first failure, with every trial
                    first = trials[0][1]
                    finished[index] = [StoredRun(first.record, first.path, trials=[r for _, r in trials])]
                    save_results()
                    continue
                chosen = picked[0]
                log(
                    f"{arm.strategy}: chose {chosen.name} on validation "
                    f"({validation_line(trials, chosen)}); only it is scored on test"
                )
            else:
                chosen = arm.candidates[0]
            if arm.strategy == "rag" and arm.endpoint is None:
                chosen_rag = chosen.params
            rows: dict[str, StoredRun] = {}
            for final in arm.finals(chosen):
                path = final_path(out_dir, final)
                serves_trial = arm.tuned and final.variant == chosen and final.first_seed
                extra: dict[str, Any] = {}
                if serves_trial and arm.trains and checkpoints.exists(checkpoint_dir(out_dir, chosen)):
                    extra["load_checkpoint"] = checkpoint_dir(out_dir, chosen)
                if not arm.tuned and final.variant == chosen and final.first_seed:
                    extra["validation"] = validation  # no trials: the one run scores validation too
                run = run_one(final.variant, path, role="final", run_seed=final.seed, **extra)
                if serves_trial and run.record.ok and run.record.validation is None:
                    trial = dict((v.name, r) for v, r in trials)[chosen.name]
                    scored = trial.record.validation
                    assert scored is not None  # choose() takes only trials with a validation score
                    run.record.validation = dataclasses.replace(scored, from_trial=trial.path)
                    atomic_write_json(path, run.record.to_json())
                if final.first_seed:
                    rows[final.variant.name] = run
                    if final.variant == chosen:
                        run.trials = [r for _, r in trials]
                else:
                    rows[final.variant.name].repeats.append(run)
                finished[index] = sorted(
                    rows.values(), key=lambda r: r.record.run_info.params.get("data_fraction", 1.0)
                )
                save_results()
            for variant in arm.candidates if arm.trains and arm.tuned else []:
                checkpoints.remove(checkpoint_dir(out_dir, variant))  # the final run has the chosen weights' record
    except KeyboardInterrupt:
        finished[index] += [run for run in late if run.path not in {r.path for r in finished[index]}]
        save_results()
        raise CompareInterrupted(out_dir, sum(r.record.ok for rows in finished for r in rows)) from None
    return comparison


API_CACHE = "api-cache"  # under the output folder: one JSON file per endpoint request answered


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
