"""Prices measured runs: training on the deployment GPU, serving per 1k requests, and the labelled data.

Training is projected, not read off this machine's clock: the run's measured work (FLOPs from the
tokens it trained on and its trainable/total parameters) divided by the deployment GPU's peak
times a utilisation, which is calibrated from measured runs on that GPU when there are some, and
otherwise a published default (``data/catalog/utilisation.yaml``, under the strategy's utilisation key),
plus the fixed part every job pays (``advisor.costs.job_overhead``: start-up, model load, evaluation, checkpoint
save, billing rounding), with the run's own measured model load and evaluation where its record has them.
What the run cost on the hardware it was measured on is given beside it. Serving uses each run's measured
prompt and output tokens per request, priced by the strategy's serving method. Data counts the labelled
examples each arm consumes (the strategy's labelled-examples rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

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
from advisor.costs.compute import catalog_gpu_for, training_utilisation
from advisor.costs.data_cost import DataCostConfig
from advisor.costs.job_overhead import JobOverhead, MeasuredPhases, job_bytes, job_overhead
from advisor.costs.job_overhead import assumption_lines as job_overhead_lines
from advisor.costs.serving import HOURS_PER_MONTH
from advisor.costs.shapes import param_counts
from harness import catalog
from harness.record import LoadLevel, RunRecord
from harness.runstore import Comparison, EndpointSummary, RunRow, StoredRun
from harness.shapes import ModelShape
from harness.strategies import StrategyTraits, traits
from harness.strategies.base import LabelledExamples

SERVING_UTILISATION_KEYS = ("prefill_mfu", "decode_bandwidth_utilisation", "load_factor")


class ServeBasis(StrEnum):
    """How a run's serving is priced."""

    SERVING_MODEL = "serving model"  # whole GPU replicas, sized by advisor.costs.serving
    PER_TOKEN = "per token"  # a hosted endpoint: its price per million tokens, no GPU floor
    MEASURED_CAPACITY = "measured capacity"  # a self-hosted endpoint: GPU $/h over what its load test served


@dataclass
class RunCosts:
    """What one run costs, projected on the deployment GPU (None: not priced, e.g. a failed run)."""

    train_usd: float | None = None  # train_flop_usd + train_fixed_usd
    train_gpu_hours: float | None = None  # the FLOP part
    train_flop_usd: float | None = None  # train_gpu_hours x $/h
    train_fixed_usd: float | None = None  # the fixed part per job (advisor.costs.job_overhead)
    train_fixed_gpu_hours: float | None = None
    train_fixed_seconds: dict[str, float] | None = None  # the fixed part's items
    train_fixed_measured: list[str] | None = None  # its items taken from the run's own record
    train_flops: float | None = None
    train_usd_measured_hardware: float | None = None  # its wall-clock time at the price of what it ran on
    serve_usd_per_1k: float | None = None  # marginal: replica-hours actually used per 1,000 requests
    serve_usd_per_month: float | None = None  # whole always-on replicas at goals.monthly_requests
    serve_requests_per_gpu_hour: float | None = None  # one replica (one GPU); per-token endpoints: None
    serve_basis: ServeBasis | None = None
    price_missing: bool = False  # an endpoint whose model has no known price: its serving is not priced (not 0)
    capacity_concurrency: int | None = None  # measured capacity: the load-test level it was read at
    serve_requests_per_gpu_hour_predicted: float | None = None  # measured capacity: the serving model's figure
    data_usd: float | None = None
    labelled_examples: int | None = None

    def train_usd_scaled(self, ratio: float) -> float | None:
        """Training priced for ``ratio`` x this run's work (more examples, a bigger model): the FLOP part scales,
        the fixed part per job is kept as it is."""
        if self.train_usd is None:
            return None
        if self.train_flop_usd is None:  # priced without the split
            return self.train_usd * ratio
        return self.train_flop_usd * ratio + (self.train_fixed_usd or 0.0)


@dataclass
class PricedRun:
    """A run with its costs; a row's seed repeats and its tuned arm's trials priced the same way (what the
    comparison itself cost: ``advisor.comparison_cost``)."""

    stored: StoredRun
    row: RunRow
    costs: RunCosts = field(default_factory=RunCosts)
    repeats: list[PricedRun] = field(default_factory=list)  # the same run with the other seeds
    trials: list[PricedRun] = field(default_factory=list)  # the grid its setting was chosen from (validation)

    @classmethod
    def of(cls, stored: StoredRun) -> PricedRun:
        """``stored`` and what belongs to it, not priced yet."""
        return cls(
            stored,
            RunRow.of(stored),
            repeats=[cls.of(run) for run in stored.repeats],
            trials=[cls.of(run) for run in stored.trials],
        )

    def all_runs(self) -> list[PricedRun]:
        """This run, its seed repeats and its trials."""
        return [self, *self.repeats, *self.trials]

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


def measured_capacity(levels: list[LoadLevel] | None, p95_goal_ms: float | None) -> LoadLevel | None:
    """The load-test level a self-hosted endpoint is priced at: the most requests/s among levels without errors
    whose p95 meets the goal (no goal: the most requests/s); None when no level qualifies."""
    qualifying = [
        level
        for level in levels or []
        if not level.errors
        and level.requests_per_s > 0
        and (p95_goal_ms is None or (level.latency_ms_p95 or 0.0) <= p95_goal_ms)
    ]
    return max(qualifying, key=lambda level: level.requests_per_s, default=None)


def price_endpoint(
    run: PricedRun, endpoint: EndpointSummary, monthly: int, shape: ModelShape | None, p95_goal_ms: float | None
) -> None:
    """An endpoint row's serving cost. Hosted: per token, no GPU floor -

        serve_usd_per_1k = (input_tokens_mean x input $/Mtok + output_tokens_mean x output $/Mtok) x 1000 / 1e6
        serve_usd_per_month = serve_usd_per_1k x monthly_requests / 1000

    (the mean of each request's cost is the cost of the mean tokens: it is linear). Self-hosted: whole GPU replicas
    at the capacity its load test measured -

        requests per replica-hour = measured requests/s at the p95 goal x 3600 / replicas
        serve_usd_per_1k = 1000 x GPU $/h / requests per replica-hour
        serve_usd_per_month = ceil(monthly / (requests per replica-hour x 730)) x 730 x GPU $/h

    beside the serving model's prediction for the same GPU and tokens."""
    costs, eval_info = run.costs, run.record.eval_info
    assert eval_info is not None
    tokens_in, tokens_out = eval_info.prompt_tokens_mean, eval_info.output_tokens_mean
    hosting = endpoint.self_hosted
    if hosting is None:
        costs.serve_basis = ServeBasis.PER_TOKEN
        if endpoint.price is None:
            costs.price_missing = True
            return
        costs.serve_usd_per_1k = endpoint.price.usd(tokens_in, tokens_out) * 1000
        costs.serve_usd_per_month = costs.serve_usd_per_1k * monthly / 1000
        return
    costs.serve_basis = ServeBasis.MEASURED_CAPACITY
    level = measured_capacity(run.record.load_test, p95_goal_ms)
    if level is None:
        return  # no load test, or no level met the goal without errors: capacity unknown
    gpu = catalog.check_gpu(hosting.gpu)
    per_replica_hour = level.requests_per_s * 3600 / hosting.replicas
    costs.capacity_concurrency = level.concurrency
    costs.serve_requests_per_gpu_hour = per_replica_hour
    costs.serve_usd_per_1k = 1000 * gpu["usd_per_hour"] / per_replica_hour
    replicas = math.ceil(monthly / (per_replica_hour * HOURS_PER_MONTH)) if monthly else 0
    costs.serve_usd_per_month = replicas * HOURS_PER_MONTH * gpu["usd_per_hour"]
    served = catalog.models().get(endpoint.model)
    model = ModelShape.from_catalog(endpoint.model) if served else shape
    if model is not None:
        request = RequestShape.measured(tokens_in, tokens_out)
        predicted = estimate_serving(model, run.traits.serving_method, hosting.gpu, monthly, request=request)
        # the model's peak, without its load factor: the load test measures what a replica does flat out
        costs.serve_requests_per_gpu_hour_predicted = 3600 / predicted.replica_seconds_per_request


def fixed_part(
    record: RunRecord, shape: ModelShape | None, gpu: str, precision: str, compute_seconds: float
) -> JobOverhead:
    """A training run's fixed part per job on one ``gpu``: its base model's bytes (the shape's parameters, else
    what the run counted), its checkpoint (every weight, or its adapters), its measured phases where recorded."""
    train = record.train_info
    assert train is not None
    method = traits(record.run_info.strategy).memory_method or "full"
    adapters = 0 if method == "full" else train.trainable_params
    base = param_counts(shape).total if shape is not None else train.total_params - adapters
    phases = record.run_info.phases
    measured = MeasuredPhases(model_load_s=phases.model_load, eval_s=phases.evaluation) if phases else None
    job = job_bytes(base, method, trained_params=adapters, precision=precision)
    return job_overhead(job, gpu, compute_seconds=compute_seconds, measured=measured)


def model_shape(comparison: Comparison) -> ModelShape | None:
    """The base model's shape: its catalog entry, else what a run recorded when it loaded the model."""
    if comparison.task.model.catalog_name:
        return ModelShape.from_catalog(comparison.task.model.catalog_name)
    return next((run.record.run_info.model_shape for run in comparison.runs if run.record.run_info.model_shape), None)


def unpriced(comparison: Comparison) -> Pricing:
    """The runs without prices (the recommendation then weighs quality alone)."""
    return Pricing(comparison, [PricedRun.of(run) for run in comparison.runs], None)


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
    # every run the comparison made, trials and seed repeats too: one pricing path for the rows and for what the
    # comparison itself cost (advisor.comparison_cost); the utilisation stays calibrated on the rows' runs
    for run in (each for row in priced.runs for each in row.all_runs()):
        record = run.record
        if not record.ok:
            continue
        costs = run.costs
        measured = measured_training(record)
        if measured:
            key = measured.utilisation_key
            util = calibrated.get(key) or training_utilisation(key, measured.tokens_per_step_per_gpu)
            utilisations[key] = Utilisation(round(util.value, 4), util.source)
            precision = "bf16" if gpu.get("supports_bf16") else "fp32"
            costs.train_gpu_hours = gpu_hours(measured.flops, gpu, precision, util.value)
            costs.train_flop_usd = gpu_hours_usd(costs.train_gpu_hours, gpu["usd_per_hour"])
            fixed = fixed_part(record, shape, gpu_name, precision, costs.train_gpu_hours * 3600)
            costs.train_fixed_usd, costs.train_fixed_gpu_hours = fixed.usd, fixed.gpu_hours
            costs.train_fixed_seconds, costs.train_fixed_measured = fixed.item_seconds(), list(fixed.measured)
            # train_usd = FLOP part + fixed part per job
            costs.train_usd = costs.train_flop_usd + fixed.usd
            costs.train_flops = measured.flops
            here = catalog_gpu_for(record.meta_info.hardware) if record.meta_info else None
            if here:
                costs.train_usd_measured_hardware = gpu_hours_usd(
                    measured.device_seconds / 3600, catalog.gpus()[here]["usd_per_hour"]
                )
        endpoint = task.endpoints.get(run.row.endpoint) if run.row.endpoint else None
        if endpoint is not None and record.eval_info:
            price_endpoint(run, endpoint, monthly, shape, task.goals.p95_latency_ms)
        elif shape is not None and record.eval_info:
            request = RequestShape.measured(record.eval_info.prompt_tokens_mean, record.eval_info.output_tokens_mean)
            serving = estimate_serving(shape, run.traits.serving_method, gpu_name, monthly, request=request)
            costs.serve_usd_per_1k, costs.serve_usd_per_month = serving.usd_per_1k_requests, serving.usd_per_month
            costs.serve_requests_per_gpu_hour = serving.requests_per_replica_hour
            costs.serve_basis = ServeBasis.SERVING_MODEL
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
            "train_usd = compute + fixed per job. Compute: the run's FLOPs (2N forward + 2N input gradients + 2 x "
            "trainable weight gradients per token; the LM head's share only at the positions whose logits were "
            f"computed, the answer windows) on one {gpu_name} at the utilisation shown; train_usd_measured_hardware: "
            "its wall-clock time at the catalog price of the hardware it was measured on",
            "fixed per job: the run's own model load (from its local copy; the download is priced from the catalog "
            "on top) and evaluation as its record measured them, on the hardware it ran on, not projected; the "
            "catalog's figures for runs recorded before these were timed; checkpoint save always from the catalog "
            "(the harness saves none)",
            *job_overhead_lines(gpu_name),
            "serve_usd_per_1k: replica-hours per 1,000 requests with each run's measured prompt and output tokens, "
            f"16-bit weights on {gpu_name}",
            "data_usd: labelled examples the arm consumes x the task's data_cost settings",
            *(
                [
                    "endpoint rows: per token, serve_usd_per_1k = mean(input tokens x input price + output tokens x "
                    "output price) x 1000 / 1e6 from each response's usage, no GPU floor; a self-hosted endpoint: its "
                    "GPU $/h / the requests per hour its load test measured at the p95 goal"
                ]
                if task.endpoints
                else []
            ),
        ],
    )
    return priced
