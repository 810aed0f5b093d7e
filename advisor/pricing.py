"""Prices measured runs: training on the deployment GPU, serving per 1k requests, and the labelled data.

Training is projected, not read off this machine's clock: the run's measured work (FLOPs from the
tokens it trained on and its trainable/total parameters) divided by the deployment GPU's peak
times a utilisation, which is calibrated from measured runs on that GPU when there are some, and
otherwise a published default (``data/catalog/utilisation.yaml``, under the strategy's utilisation key).
What the run cost on the hardware it was measured on is given beside it. Serving uses each run's measured
prompt and output tokens per request, priced by the strategy's serving method. Data counts the labelled
examples each arm consumes (the strategy's labelled-examples rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advisor.costs import (
    RequestShape,
    Utilisation,
    calibrate_utilisation,
    data_cost,
    default_utilisation,
    estimate_serving,
    gpu_hours,
    gpu_hours_usd,
    measured_training,
)
from advisor.costs.compute import catalog_gpu_for
from advisor.costs.data_cost import DataCostConfig
from harness import catalog
from harness.record import RunRecord
from harness.runstore import Comparison, RunRow, StoredRun
from harness.shapes import ModelShape
from harness.strategies import StrategyTraits, traits
from harness.strategies.base import LabelledExamples

SERVING_UTILISATION_KEYS = ("prefill_mfu", "decode_bandwidth_utilisation", "load_factor")


@dataclass
class RunCosts:
    """What one run costs, projected on the deployment GPU (None: not priced, e.g. a failed run)."""

    train_usd: float | None = None
    train_gpu_hours: float | None = None
    train_flops: float | None = None
    train_usd_measured_hardware: float | None = None  # its wall-clock time at the price of what it ran on
    serve_usd_per_1k: float | None = None  # marginal: replica-hours actually used per 1,000 requests
    serve_usd_per_month: float | None = None  # whole always-on replicas at goals.monthly_requests
    serve_requests_per_gpu_hour: float | None = None
    data_usd: float | None = None
    labelled_examples: int | None = None


@dataclass
class PricedRun:
    stored: StoredRun
    row: RunRow
    costs: RunCosts = field(default_factory=RunCosts)

    @property
    def record(self) -> RunRecord:
        return self.stored.record

    @property
    def traits(self) -> StrategyTraits:
        return traits(self.row.strategy)


@dataclass
class PricingAssumptions:
    """Every price and utilisation the costs rest on, with its source (results.json's ``costs``)."""

    gpu: str
    gpu_display_name: str
    usd_per_hour: float
    price_source: str | None
    price_date: str
    monthly_requests: int
    training_utilisation: dict[str, Utilisation]  # by utilisation key
    serving_utilisation: dict[str, Utilisation]
    data_cost: DataCostConfig
    model_shape: ModelShape | None
    notes: list[str]


@dataclass
class Pricing:
    """A comparison with every run priced; ``assumptions`` None when it could not be priced."""

    comparison: Comparison
    runs: list[PricedRun]
    assumptions: PricingAssumptions | None


def labelled_examples_needed(record: RunRecord, n_train: int) -> int:
    """Labelled examples an arm consumes, by its strategy's rule: k for k-shot, the indexed train set for
    nearest-example RAG, none for RAG over a knowledge corpus (documents exist already), what it trained on
    for fine-tuning."""
    rule = traits(record.run_info.strategy).labelled_examples
    if rule is LabelledExamples.SHOTS:
        return int(record.run_info.params.get("shots", 0))
    if rule is LabelledExamples.RETRIEVAL_INDEX:
        mode = record.strategy_info.retrieval_mode if record.strategy_info else None
        return n_train if mode == "nearest_examples" else 0
    return record.train_info.examples_labelled if record.train_info else n_train


def model_shape(comparison: Comparison) -> ModelShape | None:
    """The base model's shape: its catalog entry, else what a run recorded when it loaded the model."""
    if comparison.task.model.catalog_name:
        return ModelShape.from_catalog(comparison.task.model.catalog_name)
    return next((run.record.run_info.model_shape for run in comparison.runs if run.record.run_info.model_shape), None)


def unpriced(comparison: Comparison) -> Pricing:
    """The runs without prices (the recommendation then weighs quality alone)."""
    return Pricing(comparison, [PricedRun(run, RunRow.of(run)) for run in comparison.runs], None)


def price(comparison: Comparison, config: DataCostConfig) -> Pricing:
    """Every run of ``comparison`` priced on the task's deployment GPU at its goals' monthly volume."""
    task = comparison.task
    gpu_name = task.deployment.gpu
    gpu = catalog.check_gpu(gpu_name)
    monthly = task.goals.monthly_requests or 0
    shape = model_shape(comparison)
    calibrated = calibrate_utilisation((run.record for run in comparison.runs), gpu_name)
    utilisations: dict[str, Utilisation] = {}
    priced = unpriced(comparison)
    for run in priced.runs:
        record = run.record
        if not record.ok:
            continue
        costs = run.costs
        measured = measured_training(record)
        if measured:
            key = measured.utilisation_key
            util = calibrated.get(key) or default_utilisation("training", key)
            utilisations[key] = Utilisation(round(util.value, 4), util.source)
            precision = "bf16" if gpu.get("supports_bf16") else "fp32"
            costs.train_gpu_hours = gpu_hours(measured.flops, gpu, precision, util.value)
            costs.train_usd = gpu_hours_usd(costs.train_gpu_hours, gpu["usd_per_hour"])
            costs.train_flops = measured.flops
            here = catalog_gpu_for(record.meta_info.hardware) if record.meta_info else None
            if here:
                costs.train_usd_measured_hardware = gpu_hours_usd(
                    measured.device_seconds / 3600, catalog.gpus()[here]["usd_per_hour"]
                )
        if shape is not None and record.eval_info:
            request = RequestShape.measured(record.eval_info.prompt_tokens_mean, record.eval_info.output_tokens_mean)
            serving = estimate_serving(shape, run.traits.serving_method, gpu_name, monthly, request=request)
            costs.serve_usd_per_1k, costs.serve_usd_per_month = serving.usd_per_1k_requests, serving.usd_per_month
            costs.serve_requests_per_gpu_hour = serving.requests_per_replica_hour
        costs.labelled_examples = labelled_examples_needed(record, task.n_train)
        costs.data_usd = data_cost(costs.labelled_examples, config).total_usd
    priced.assumptions = PricingAssumptions(
        gpu=gpu_name,
        gpu_display_name=gpu.get("display_name", gpu_name),
        usd_per_hour=gpu["usd_per_hour"],
        price_source=gpu.get("price_source"),
        price_date=str(gpu.get("date")),
        monthly_requests=monthly,
        training_utilisation=utilisations,
        serving_utilisation={key: default_utilisation("serving", key) for key in SERVING_UTILISATION_KEYS},
        data_cost=config,
        model_shape=shape,
        notes=[
            "train_usd: the run's FLOPs (2N forward + 2N input gradients + 2 x trainable weight gradients per "
            "token; the LM head's share only at the positions whose logits were computed, the answer windows) "
            f"on one {gpu_name} at the utilisation shown; train_usd_measured_hardware: its wall-clock time at the "
            "catalog price of the hardware it was measured on",
            "serve_usd_per_1k: replica-hours per 1,000 requests with each run's measured prompt and output tokens, "
            f"16-bit weights on {gpu_name}",
            "data_usd: labelled examples the arm consumes x the task's data_cost settings",
        ],
    )
    return priced
