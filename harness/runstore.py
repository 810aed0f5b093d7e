"""The run store: one JSON record per run, and the results.json summary of a compare.

Layout of an output folder::

    results.json                     what the compare was (task, device, settings), a row per run, and - once
                                     the advisor has priced and recommended - costs and the recommendation
    runs/<strategy>-<variant>.json   one full record per run scored on test (harness.record, predictions included)
    runs/<...>-seed<N>.json          the same run repeated with another seed (``--seeds``)
    runs/trials/<...>.json           a tuned arm's grid points, scored on the validation split only
    checkpoints/<...>/               a fine-tuning trial's weights, until its arm's final run (harness.checkpoints)
    results.csv, predictions.parquet the runs and every test prediction as tables, written with the full
                                     results.json at the end (harness.result_tables)

The records are the source of truth: ``load_comparison`` reads the runs back from them; of the rows of
results.json (``RunRow``, summaries written for people and scripts) only the record paths are read back.
results.json schema 4 (2026-12-02: ``splits``, seeds and trials in the rows, ``comparisons``); schema 3 added
endpoint rows; older schemas load too.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.catalog import ModelRef, TokenPrice
from harness.errors import UserError
from harness.io import atomic_write_json, read_json
from harness.record import Hardware, LoadLevel, MemoryKind, RunRecord, RunStatus, SelfCheck, ValidationInfo
from harness.result_tables import write_tables
from harness.spec import Deployment, Endpoint, Goals, SelfHostedSpec
from harness.strategies import Variant
from harness.typedjson import from_jsonable, to_jsonable

RESULTS_SCHEMA = 4


@dataclass
class EndpointSummary:
    """An endpoint as the advisor prices it: where it is, its price (None: missing) or its self-hosted GPUs."""

    model: str
    base_url: str
    price: TokenPrice | None
    self_hosted: SelfHostedSpec | None = None

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointSummary:
        return cls(endpoint.spec.model, endpoint.spec.base_url, endpoint.price, endpoint.spec.self_hosted)


@dataclass
class TaskSummary:
    """What the advisor needs to know of the task after the runs: the goals, the deployment, the data."""

    name: str
    kind: str
    path: str
    metric: str
    model: ModelRef
    labels: list[str] | None
    n_train: int  # training examples the runs could use (after --limit, without the validation split)
    n_test: int
    goals: Goals
    deployment: Deployment
    knowledge: str | None
    n_validation: int = 0  # held out of train to choose each arm's setting
    data_cost: dict[str, Any] = field(default_factory=dict)  # the task file's data_cost block, as written
    endpoints: dict[str, EndpointSummary] = field(default_factory=dict)


@dataclass
class CompareSettings:
    limit: int | None = None
    seed: int = 0
    only: list[str] | None = None
    skip: list[str] | None = None
    num_processes: int = 1
    sharding: str = "auto"
    max_api_usd: float | None = None
    seeds: int = 1  # fine-tuning arms' runs per setting
    trials: int = 1  # grid points each fine-tuning arm tried
    executor: str = "local"  # where the runs went: "local" (this machine, one at a time) or "ray"


@dataclass
class StoredRun:
    """A run scored on test, with what belongs to it: the same run with the other seeds, and - for a tuned arm's
    run on all of train - the trials its setting was chosen from."""

    record: RunRecord
    path: str  # of its record, relative to the output folder
    repeats: list[StoredRun] = field(default_factory=list)  # the other seeds' runs (--seeds), same settings
    trials: list[StoredRun] = field(default_factory=list)  # the grid, in priority order, scored on validation

    @property
    def seed_runs(self) -> list[StoredRun]:
        """Every seed's run, the base seed's first."""
        return [self, *self.repeats]

    def seed_qualities(self) -> list[float]:
        """The test quality of each seed's finished run."""
        return [r.record.eval_info.quality for r in self.seed_runs if r.record.ok and r.record.eval_info]

    def all_runs(self) -> list[StoredRun]:
        """Every run this one stands for: its seeds and its trials (what the comparison itself cost)."""
        return [*self.seed_runs, *self.trials]


@dataclass
class Splits:
    """The example ids of each split: train (what the runs trained on or drew from), validation (carved from
    train, seeded: where settings are chosen) and test (scored once per arm)."""

    train: list[str]
    validation: list[str]
    test: list[str]


@dataclass
class Comparison:
    """One compare: the task, the machine, the settings, and every run scored on test, in plan order."""

    task: TaskSummary
    device: Hardware
    options: CompareSettings
    runs: list[StoredRun] = field(default_factory=list)
    splits: Splits | None = None


@dataclass
class TrialRow:
    """One grid point of a tuned arm, scored on the validation split."""

    variant: str
    settings: dict[str, Any]  # the tuned fields' values at this point
    status: RunStatus
    record: str
    validation_quality: float | None = None
    train_seconds: float | None = None
    wall_seconds: float | None = None
    error: str | None = None


@dataclass
class Tuning:
    """How a tuned arm's setting was chosen: its trials and the one chosen (best validation quality)."""

    metric: str
    chosen: str  # the variant
    trials: list[TrialRow]


@dataclass
class RunRow:
    """One run in a line: results.json's ``runs`` entries (with the advisor's costs beside them) and the report's
    table. Memory: the whole run's, in MiB (``harness.units``)."""

    strategy: str
    variant: str
    status: RunStatus
    record: str
    error: str | None = None
    endpoint: str | None = None  # endpoint variants: the task's endpoints.NAME; None: the local model
    metric: str | None = None
    quality: float | None = None
    n_examples: int | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_batch_size: int | None = None
    throughput_examples_per_s: float | None = None
    eval_batch_size: int | None = None
    input_tokens_mean: float | None = None  # per request, as sent (endpoints: from each response's usage)
    output_tokens_mean: float | None = None
    api_usd_spent: float | None = None  # endpoint variants: what the live requests cost
    load_test: list[LoadLevel] | None = None
    memory_kind: MemoryKind | None = None
    memory_peak_mib: float | None = None
    memory_growth_mib: float | None = None
    train_seconds: float | None = None
    num_processes: int | None = None
    sharding: str | None = None
    tokens_trained: int | None = None
    trainable_params: int | None = None
    train_examples: int | None = None
    examples_labelled: int | None = None
    data_fraction: float | None = None
    final_loss: float | None = None
    validation_quality: float | None = None  # the chosen setting on the validation split
    seeds: list[int] | None = None  # with --seeds: each seed's run; quality is their mean
    seed_qualities: list[float] | None = None
    quality_std: float | None = None  # sample standard deviation over the seeds
    seed_records: list[str] | None = None
    tuning: Tuning | None = None  # a tuned arm's grid and choice
    wall_seconds: float | None = None
    config_hash: str | None = None
    self_check: SelfCheck | None = None  # the estimator against this run (the record's, once the advisor added it)

    @classmethod
    def of(cls, run: StoredRun) -> RunRow:
        record = run.record
        info, ev, tr = record.run_info, record.eval_info, record.train_info
        row = cls(
            strategy=info.strategy,
            variant=info.variant,
            status=record.status,
            record=run.path,
            error=record.error,
            wall_seconds=info.wall_seconds,
            config_hash=info.config_hash,
            self_check=record.self_check,
            validation_quality=record.validation.quality if record.validation else None,
        )
        if info.memory:
            row.memory_kind, row.memory_peak_mib = info.memory.kind, info.memory.peak_mib
            row.memory_growth_mib = info.memory.growth_mib
        if ev:
            row.metric, row.quality, row.n_examples = ev.metric, ev.quality, ev.n_examples
            row.latency_ms_p50, row.latency_ms_p95, row.latency_batch_size = (
                ev.latency_ms_p50,
                ev.latency_ms_p95,
                ev.latency_batch_size,
            )
            row.throughput_examples_per_s, row.eval_batch_size = ev.throughput_examples_per_s, ev.eval_batch_size
            row.input_tokens_mean, row.output_tokens_mean = ev.prompt_tokens_mean, ev.output_tokens_mean
        if record.endpoint:
            row.endpoint, row.api_usd_spent = record.endpoint.name, record.endpoint.usd_spent
        row.load_test = record.load_test
        if tr:
            row.train_seconds, row.num_processes, row.sharding = tr.train_seconds, tr.num_processes, tr.sharding
            row.tokens_trained, row.trainable_params, row.final_loss = (
                tr.tokens_trained,
                tr.trainable_params,
                tr.final_loss,
            )
            row.train_examples, row.examples_labelled, row.data_fraction = (
                tr.examples,
                tr.examples_labelled,
                tr.data_fraction,
            )
        if run.repeats:
            qualities = run.seed_qualities()
            row.seeds = [r.record.run_info.seed for r in run.seed_runs]
            row.seed_records = [r.path for r in run.repeats]
            row.seed_qualities = [round(q, 4) for q in qualities]
            if qualities:
                row.quality = sum(qualities) / len(qualities)
                row.quality_std = round(statistics.stdev(qualities), 4) if len(qualities) > 1 else 0.0
        if run.trials:
            row.tuning = Tuning(
                metric=row.metric or (run.trials[0].record.validation or _NO_VALIDATION).metric,
                chosen=info.variant,
                trials=[trial_row(t, tuned_settings(run)) for t in run.trials],
            )
        return row


_NO_VALIDATION = ValidationInfo(metric="", quality=0.0, n_examples=0, unparsed=0, seconds=0.0)


def tuned_settings(run: StoredRun) -> list[str]:
    """The parameters that differ between a tuned arm's trials (its grid's axes)."""
    params = [t.record.run_info.params for t in run.trials]
    keys = dict.fromkeys(k for p in params for k in p)
    return [k for k in keys if len({json.dumps(p.get(k), sort_keys=True, default=str) for p in params}) > 1]


def trial_row(run: StoredRun, axes: list[str]) -> TrialRow:
    record = run.record
    return TrialRow(
        variant=record.run_info.variant,
        settings={k: record.run_info.params.get(k) for k in axes},
        status=record.status,
        record=run.path,
        validation_quality=record.validation.quality if record.validation else None,
        train_seconds=record.train_info.train_seconds if record.train_info else None,
        wall_seconds=record.run_info.wall_seconds,
        error=record.error,
    )


def run_id(variant: Variant) -> str:
    return f"{variant.strategy}-{variant.name}"


def record_path(out_dir: Path, variant: Variant) -> Path:
    return out_dir / "runs" / f"{run_id(variant)}.json"


def config_hash(
    fingerprint: dict[str, Any],
    variant: Variant,
    *,
    seed: int,
    limit: int | None,
    device: str,
    model: ModelRef,
    num_processes: int = 1,
    endpoint: dict[str, Any] | None = None,
    role: str = "final",
) -> str:
    """Everything that determines a run's result; equal hash = same run, safe to reuse. The number of training
    processes counts (it multiplies the global batch) only when there are several, so one-process records
    keep their hash; DDP or FSDP does not (the same arithmetic, sharded differently)."""
    payload = {
        "task": fingerprint,
        "strategy": variant.strategy,
        "variant": variant.name,
        "params": variant.params,
        "seed": seed,
        "limit": limit,
        "device": device,
        # a packaged model by its package, version and folder inside it, not the machine's site-packages path: a
        # record made on another machine (a committed example, a Ray node) is the same run
        "model": to_jsonable(model.shown() if model.source == "package" else model),
    }
    if num_processes > 1:
        payload["num_processes"] = num_processes
    if role != "final":  # a trial is scored on validation only: not the same record as the final run
        payload["role"] = role
    if endpoint is not None:  # an endpoint variant: where it ran and its load test (Task.endpoint_identity)
        payload["endpoint"] = endpoint
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load_record(path: Path) -> RunRecord | None:
    """The record at ``path``; None when there is none or it is not a complete record (being written, say)."""
    data = read_json(path)
    if not isinstance(data, dict):
        return None
    try:
        return RunRecord.from_json(data)
    except (TypeError, KeyError, ValueError):
        return None


def save_record(out_dir: Path, run: StoredRun) -> None:
    """Write ``run``'s record again at its place in ``out_dir``: after the advisor has added what it computes from
    all the runs together (``RunRecord.self_check``); what the run measured is unchanged."""
    atomic_write_json(Path(out_dir) / run.path, run.record.to_json())


def reusable(path: Path, digest: str) -> RunRecord | None:
    """The stored record when it finished ok with the same config hash."""
    record = load_record(path)
    return record if record and record.ok and record.run_info.config_hash == digest else None


def write_results(
    out_dir: Path,
    comparison: Comparison,
    *,
    row_costs: list[dict[str, Any]] | None = None,
    costs: Any = None,
    recommendation: Any = None,
    comparisons: Any = None,
    tables: bool = False,
) -> Path:
    """results.json for ``comparison``; the advisor adds each row's costs, the assumptions and the recommendation.
    ``tables`` (the full write at the end): results.csv and predictions.parquet beside it (harness.result_tables)."""
    rows = [to_jsonable(RunRow.of(run)) for run in comparison.runs]
    for row, extra in zip(rows, row_costs, strict=True) if row_costs is not None else ():
        row.update(extra)
    path = Path(out_dir) / "results.json"
    atomic_write_json(
        path,
        {
            "schema": RESULTS_SCHEMA,
            "task": to_jsonable(comparison.task),
            "device": to_jsonable(comparison.device),
            "options": to_jsonable(comparison.options),
            "splits": to_jsonable(comparison.splits),
            "runs": rows,
            "comparisons": to_jsonable(comparisons),
            "costs": to_jsonable(costs),
            "recommendation": to_jsonable(recommendation),
        },
    )
    if tables:
        write_tables(out_dir, rows, ((r.path, r.record) for run in comparison.runs for r in run.seed_runs))
    return path


def read_results(out_dir: Path) -> dict[str, Any]:
    """A compare folder's results.json as it is stored; one-line errors for a folder without a readable one."""
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: no such folder; give the output folder of an advisor compare")
    path = out_dir / "results.json"
    if not path.is_file():
        raise UserError(f"{path}: no results.json here; run `advisor compare TASK.yaml --out {out_dir}` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}); re-run advisor compare to rewrite it"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a results.json (no JSON object); re-run advisor compare to rewrite it")
    return data


def load_comparison(out_dir: Path) -> Comparison:
    """A finished (or interrupted) compare from its folder: results.json for the task, device and settings, the
    runs from their records."""
    out_dir = Path(out_dir)
    data = read_results(out_dir)
    path = out_dir / "results.json"
    if data.get("schema", 1) == 1:
        data = _upgrade_results_v1(data)

    def stored(where: str, record_file: str) -> StoredRun:
        record = load_record(out_dir / record_file)
        if record is None:
            raise UserError(
                f"{path}: {where}: its record {out_dir / record_file} is missing or unreadable; "
                f"run the same advisor compare again to redo it"
            )
        return StoredRun(record, record_file)

    runs = []
    for i, row in enumerate(data.get("runs") or []):
        run = stored(f"runs[{i}]", row["record"])
        run.repeats = [stored(f"runs[{i}].seed_records", f) for f in row.get("seed_records") or []]
        run.trials = [stored(f"runs[{i}].tuning", t["record"]) for t in (row.get("tuning") or {}).get("trials", [])]
        runs.append(run)
    return Comparison(
        task=from_jsonable(TaskSummary, data["task"]),
        device=from_jsonable(Hardware, data["device"]),
        options=from_jsonable(CompareSettings, data.get("options") or {}),
        runs=runs,
        splits=from_jsonable(Splits, data["splits"]) if data.get("splits") else None,
    )


def _upgrade_results_v1(data: dict[str, Any]) -> dict[str, Any]:
    """results.json schema 1: the data-cost settings lived in the costs block, host memory was ``memory_gb``."""
    task = {**data["task"], "data_cost": ((data.get("costs") or {}).get("data_cost") or {})}
    device = dict(data.get("device") or {})
    for old, new in (("memory_gb", "memory_gib"), ("gpu_memory_gb", "gpu_memory_gib")):
        if old in device:
            device[new] = device.pop(old)
    return {**data, "task": task, "device": device}
