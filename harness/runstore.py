"""The run store: one JSON record per run, and the results.json summary of a compare.

Layout of an output folder::

    results.json                     what the compare was (task, device, settings), a row per run, and - once
                                     the advisor has priced and recommended - costs and the recommendation
    runs/<strategy>-<variant>.json   one full record per run (harness.record, predictions included)

The records are the source of truth: ``load_comparison`` reads the runs back from them, and the rows of
results.json are summaries written for people and scripts (``RunRow``), never read back.
results.json schema 3 (2026-12-02: endpoint rows, ``input_tokens_mean`` for ``prompt_tokens_mean``); schemas 1
and 2 load too (their rows are never read back).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.catalog import ModelRef, TokenPrice
from harness.errors import UserError
from harness.io import atomic_write_json, read_json
from harness.record import Hardware, LoadLevel, MemoryKind, RunRecord, RunStatus, SelfCheck
from harness.spec import Deployment, Endpoint, Goals, SelfHostedSpec
from harness.strategies import Variant
from harness.typedjson import from_jsonable, to_jsonable

RESULTS_SCHEMA = 3


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
    n_train: int  # training examples the runs could use (after --limit)
    n_test: int
    goals: Goals
    deployment: Deployment
    knowledge: str | None
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


@dataclass
class StoredRun:
    record: RunRecord
    path: str  # of its record, relative to the output folder


@dataclass
class Comparison:
    """One compare: the task, the machine, the settings, and every run in plan order."""

    task: TaskSummary
    device: Hardware
    options: CompareSettings
    runs: list[StoredRun] = field(default_factory=list)


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
        return row


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
        "model": to_jsonable(model),
    }
    if num_processes > 1:
        payload["num_processes"] = num_processes
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
) -> Path:
    """results.json for ``comparison``; the advisor adds each row's costs, the assumptions and the recommendation."""
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
            "runs": rows,
            "costs": to_jsonable(costs),
            "recommendation": to_jsonable(recommendation),
        },
    )
    return path


def load_comparison(out_dir: Path) -> Comparison:
    """A finished (or interrupted) compare from its folder: results.json for the task, device and settings, the
    runs from their records."""
    out_dir = Path(out_dir)
    path = out_dir / "results.json"
    if not path.is_file():
        raise UserError(f"{path}: no results.json here; run `advisor compare TASK.yaml --out {out_dir}` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}); re-run advisor compare to rewrite it"
        ) from None
    if data.get("schema", 1) == 1:
        data = _upgrade_results_v1(data)
    runs = []
    for i, row in enumerate(data.get("runs") or []):
        record = load_record(out_dir / row["record"])
        if record is None:
            raise UserError(
                f"{path}: runs[{i}]: its record {out_dir / row['record']} is missing or unreadable; "
                f"run the same advisor compare again to redo it"
            )
        runs.append(StoredRun(record, row["record"]))
    return Comparison(
        task=from_jsonable(TaskSummary, data["task"]),
        device=from_jsonable(Hardware, data["device"]),
        options=from_jsonable(CompareSettings, data.get("options") or {}),
        runs=runs,
    )


def _upgrade_results_v1(data: dict[str, Any]) -> dict[str, Any]:
    """results.json schema 1: the data-cost settings lived in the costs block, host memory was ``memory_gb``."""
    task = {**data["task"], "data_cost": ((data.get("costs") or {}).get("data_cost") or {})}
    device = dict(data.get("device") or {})
    for old, new in (("memory_gb", "memory_gib"), ("gpu_memory_gb", "gpu_memory_gib")):
        if old in device:
            device[new] = device.pop(old)
    return {**data, "task": task, "device": device}
