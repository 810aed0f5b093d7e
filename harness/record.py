"""The run record: everything one run measured, typed; one JSON file per run (``runs/<strategy>-<variant>.json``).

    RunRecord
      run_info       what ran (strategy, variant, params, seed, device, model, config hash) and its wall time,
                     the run's memory, the base model's shape and how long loading it and evaluating took
      status         RunStatus.OK or RunStatus.FAILED (with ``error``, and ``traceback`` for a crash)
      train_info     fine-tuning runs: time, tokens, parameters, losses, parallelism, memory
      eval_info      quality, latency, throughput, tokens per request, memory of the evaluation
      strategy_info  what the strategy chose (shots, retrieval mode, quantisation, ...)
      meta_info      package versions and the hardware
      endpoint       endpoint variants: where the requests went, what they used and cost, retries, errors, cache hits
      load_test      endpoint variants: one level per concurrency (throughput, latency, time to first token, errors)
      self_check     what the advisor's estimator predicted for this run's own settings and hardware, beside what
                     it measured (written by the advisor at the end of a compare, ``advisor.self_check``)
      predictions    one per test example, with its score

Units follow ``harness.units``: memory in MiB, with peaks and growths named apart (``MemoryUse``).

``to_json`` writes schema version 2; ``RunRecord.from_json`` also reads version 1 records (written before
2026-12-01: flat ``*_memory_mb`` fields holding growths, ``strategy_info.mode``, ``memory_gb`` for GiB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.catalog import ModelRef
from harness.io import portable_text
from harness.shapes import ModelShape
from harness.typedjson import from_jsonable, to_jsonable

RECORD_SCHEMA = 2


class RunStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    STOPPED_BUDGET = "stopped_budget"  # an endpoint run stopped before its spending cap would be passed


class MemoryKind(StrEnum):
    CUDA_MAX_ALLOCATED = "cuda_max_allocated"  # torch.cuda.max_memory_allocated: tensors the run allocated
    CPU_RSS = "cpu_rss"  # resident memory of the run's own process (each run gets a fresh one)


@dataclass(frozen=True)
class MemoryUse:
    """Memory of one phase of a run (the whole run, its training, its evaluation), in MiB."""

    kind: MemoryKind
    peak_mib: float  # the most in use at once during the phase
    growth_mib: float  # the peak minus what was in use when the phase began: what the phase itself added
    reserved_peak_mib: float | None = None  # CUDA: the caching allocator's peak reservation (>= allocated)

    @property
    def baseline_mib(self) -> float:
        return self.peak_mib - self.growth_mib


@dataclass(frozen=True)
class Hardware:
    """The machine a run ran on (``harness.meters.hardware``)."""

    device: str  # cpu, cuda, cuda:1
    platform: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    memory_gib: float | None = None  # host memory
    gpu: str | None = None  # what torch.cuda.get_device_name reports
    gpu_count: int | None = None
    gpu_memory_gib: float | None = None  # one GPU's total memory
    cuda_version: str | None = None
    bf16: bool | None = None
    driver: str | None = None

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")


@dataclass(frozen=True)
class MetaInfo:
    packages: dict[str, str | None]
    hardware: Hardware
    executor: str = "local"  # what placed the run: "local" (a worker process of the compare) or "ray" (a Ray task)
    node: str | None = None  # where it ran: the Ray node id, or the host name for the local executor
    host: str | None = None  # the host name of the machine it ran on


@dataclass(frozen=True)
class PhaseSeconds:
    """Wall-clock seconds of a run's phases beside training (``TrainInfo.train_seconds``), in the main process.
    None: not timed (an endpoint run loads no model). The harness saves no checkpoint, so there is no save phase."""

    # loading the base model from its local copy (no download), every load of the run; a packaged GGUF model's
    # first load also converts it to the cached safetensors once (harness.models)
    model_load: float | None = None
    evaluation: float | None = None  # the quality pass, the timed requests and any load test


@dataclass
class RunInfo:
    task: str
    strategy: str
    variant: str
    params: dict[str, Any]  # everything of the variant's config that determines its result
    config_hash: str  # equal hash = same run (harness.runstore.config_hash): safe to reuse
    seed: int
    limit: int | None
    device: str
    model: ModelRef
    num_processes: int = 1  # processes the run trained on (one GPU each)
    sharding: str = "none"  # none (one process), ddp or fsdp
    started_at: str | None = None  # ISO 8601, UTC
    ended_at: str | None = None
    wall_seconds: float | None = None
    memory: MemoryUse | None = None  # the whole run: loading, training and evaluation
    model_shape: ModelShape | None = None  # the base model as loaded (the cost models price runs with it)
    phases: PhaseSeconds | None = None  # model load and evaluation times (added 2026-12-02; None in older records)
    role: str = "final"  # final: scored on test | trial: a grid point scored on the validation split only


@dataclass
class TrainInfo:
    train_seconds: float
    examples: int  # training items: labelled examples, plus knowledge chunks for a qa task with a corpus
    epochs: float
    optimizer_steps: int
    tokens_trained: int  # every token of every item, times the epochs
    loss_tokens: int  # the answer tokens the loss counted, times the epochs
    trainable_params: int
    total_params: int
    final_loss: float
    train_loss_mean: float
    loss_curve: list[float]
    precision: str  # bf16 | fp32
    memory: MemoryUse  # of the process that used the most
    examples_labelled: int = 0  # labelled examples among them (what data costs are charged for)
    data_fraction: float = 1.0  # share of train this run trained on (learning-curve points)
    lm_head_positions: int | None = None  # positions whose logits were computed (answer windows), all processes
    step_seconds_median: float | None = None  # one optimizer step, the first (warm-up) left out
    first_step_seconds: float | None = None
    tokens_per_second: float | None = None
    num_processes: int = 1
    sharding: str = "none"
    global_batch_size: int | None = None  # batch_size x gradient_accumulation x processes
    # the per-device batch size trained with (None: recorded before 2026-12, the config's), and whether the
    # config's min_optimizer_steps changed its batch size or epochs (``harness.steps.step_plan``)
    batch_size: int | None = None
    min_optimizer_steps: int | None = None
    min_steps_adjusted: bool = False
    memory_per_process: list[MemoryUse] | None = None  # several processes: each one's
    quantization: dict[str, Any] | None = None  # qlora: how the base was quantised
    # the shape of the largest micro-batch, for the memory model (None: recorded before 2026-12): the widest
    # padded length (tokens per row), and the most positions per row whose logits the loss computed
    padded_len_max: int | None = None
    logit_window_max: int | None = None


@dataclass
class EvalInfo:
    metric: str
    quality: float  # mean score over the test examples, 0..1
    n_examples: int
    unparsed: int  # outputs the parser could not read as an answer
    eval_batch_size: int  # batch size of the throughput measurement
    throughput_examples_per_s: float
    latency_batch_size: int
    latency_requests: int  # requests timed one at a time, end to end
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_mean: float
    prompt_tokens_mean: float  # per request, as sent (instruction, shots, retrieved context included)
    output_tokens_mean: float
    max_new_tokens: int
    memory: MemoryUse


@dataclass
class ValidationInfo:
    """The quality on the validation split (carved from train): what a tuned arm's setting is chosen on. Answered
    in batches, untimed: latency is measured on test."""

    metric: str
    quality: float
    n_examples: int
    unparsed: int
    seconds: float  # generating and scoring the split
    from_trial: str | None = None  # a final run of a tuned arm: the trial (its record) whose checkpoint it serves


@dataclass
class StrategyInfo:
    """What a strategy chose for this run; each strategy fills its own fields."""

    shot_ids: list[str] | None = None  # prompt: the in-context examples
    # rag and the fine-tuned +rag arms: knowledge (corpus chunks) | nearest_examples (labelled examples)
    retrieval_mode: str | None = None
    documents: int | None = None  # rag over a corpus
    chunks: int | None = None
    indexed_examples: int | None = None  # rag over the training examples
    embedder: ModelRef | None = None
    top_k: int | None = None  # retrieval: chunks or nearest examples in each prompt
    chunk_words: int | None = None  # retrieval over a corpus: the chunking
    chunk_overlap: int | None = None
    merged_for_inference: bool | None = None  # adapters merged into the base weights for serving
    base_quantization: str | None = None  # qlora
    compute_dtype: str | None = None  # qlora


@dataclass
class Prediction:
    id: str
    input: str
    target: Any  # a string, or an object for extraction
    prediction: Any  # what the parser read from the output (None: unparsed)
    output: str  # the model's text
    score: float
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class EndpointUse:
    """What an endpoint variant sent and what it cost (``harness.endpoints``). No credentials: the base URL cannot
    hold any (the task file is checked) and the key is never stored."""

    name: str  # the task's endpoints.NAME
    model: str
    base_url: str
    requests: int  # live requests sent, load test included (cache hits are not requests)
    cache_hits: int  # answered from the request cache: not paid again
    retries: int  # extra HTTP attempts the client made (429, 5xx, dropped connections), with backoff
    errors: int  # requests that still failed after the retries (scored as unanswered)
    input_tokens: int  # summed from the live responses' usage
    output_tokens: int
    usd_spent: float | None  # live requests at the price; None when the model's price is missing
    budget_usd: float | None = None  # what this run was allowed to spend (endpoints.NAME.max_usd, --max-api-usd)


@dataclass(frozen=True)
class LoadLevel:
    """One concurrency level of an endpoint's load test (streamed requests)."""

    concurrency: int
    requests: int
    requests_per_s: float  # answered requests / the level's wall time
    output_tokens_per_s: float
    latency_ms_p50: float | None  # end to end: request sent -> last token
    latency_ms_p95: float | None
    ttft_ms_p50: float | None  # time to the first streamed token
    errors: int
    output_tokens_from: str = "usage"  # usage | stream chunks (a server that sends no usage when streaming)


class CheckedPhase(StrEnum):
    TRAINING = "training"  # a fine-tuning run: its training peak and time
    INFERENCE = "inference"  # a prompt or RAG run: the memory of serving the model


@dataclass
class SelfCheck:
    """The advisor's estimator against this run: what it predicts for the run's own settings and hardware, beside
    what the run measured (computed by ``advisor.self_check``; the harness only stores it). Ratios are measured /
    predicted: 1 is exact, above 1 the run needed more than predicted. Memory in bytes (binary units when shown),
    time in seconds; None where the estimator or the record lacks what it takes."""

    phase: CheckedPhase
    memory_basis: str  # what the measured peak is (allocator or resident memory, which phases, weights included)
    predicted_peak_memory_bytes: float | None = None
    measured_peak_memory_bytes: float | None = None
    memory_ratio: float | None = None
    peak_phase: str | None = None  # where the predicted training peak sits: forward/backward | optimizer step
    precision: str | None = None  # the regime predicted in: bf16 | fp32
    catalog_device: str | None = None  # the data/catalog/gpus.yaml entry the hardware matched (None: no time)
    utilisation_default: float | None = None  # data/catalog/utilisation.yaml's training figure for the strategy
    utilisation_calibrated: float | None = None  # from this compare's runs of the same key on the same hardware
    calibration_runs: int = 0  # how many runs that calibration pooled (1: this run alone)
    predicted_train_seconds_default: float | None = None
    predicted_train_seconds_calibrated: float | None = None
    measured_train_seconds: float | None = None
    time_ratio_default: float | None = None
    time_ratio_calibrated: float | None = None
    predicted_step_seconds_default: float | None = None  # the run's FLOPs per optimizer step at each utilisation
    predicted_step_seconds_calibrated: float | None = None
    measured_step_seconds: float | None = None  # median step, the first (warm-up) left out
    step_ratio_default: float | None = None
    step_ratio_calibrated: float | None = None
    predicted_tokens: float | None = None  # the estimator's: examples x max_seq_len x epochs (padding included)
    measured_tokens: int | None = None  # every token of every item, times the epochs (no padding)
    tokens_ratio: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    run_info: RunInfo
    status: RunStatus
    error: str | None = None
    traceback: str | None = None
    train_info: TrainInfo | None = None
    eval_info: EvalInfo | None = None  # on test; None for a trial (scored on validation only)
    validation: ValidationInfo | None = None
    strategy_info: StrategyInfo | None = None
    meta_info: MetaInfo | None = None
    endpoint: EndpointUse | None = None
    load_test: list[LoadLevel] | None = None
    predictions: list[Prediction] = field(default_factory=list)
    schema: int = RECORD_SCHEMA
    self_check: SelfCheck | None = None  # added by the advisor once the compare's runs are in

    @classmethod
    def failed(
        cls,
        run_info: RunInfo,
        error: str,
        *,
        traceback: str | None = None,
        meta_info: MetaInfo | None = None,
        endpoint: EndpointUse | None = None,
        status: RunStatus = RunStatus.FAILED,
    ) -> RunRecord:
        """The record of a run that did not finish: what ran, and why it stopped (one line). Neither names the
        machine's folders (``io.portable_text``): records are committed and shared."""
        return cls(
            run_info=run_info,
            status=status,
            error=portable_text(error) or error,
            traceback=portable_text(traceback),
            meta_info=meta_info,
            endpoint=endpoint,
        )

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        if data.get("schema", 1) == 1:
            data = upgrade_v1(data)
        return from_jsonable(cls, data)


def _memory_v1(info: dict[str, Any] | None, prefix: str = "") -> dict[str, Any] | None:
    """A version 1 memory block (``<prefix>peak_memory_mb``: growth over ``<prefix>baseline_memory_mb``)."""
    if not info or info.get(f"{prefix}peak_memory_mb") is None:
        return None
    growth = info[f"{prefix}peak_memory_mb"]
    kind = info.get(f"{prefix}peak_memory_kind")
    return {
        "kind": "cpu_rss" if kind == "cpu_rss_growth" else kind,
        "peak_mib": round(growth + (info.get(f"{prefix}baseline_memory_mb") or 0.0), 1),
        "growth_mib": growth,
        "reserved_peak_mib": info.get(f"{prefix}reserved_memory_mb"),
    }


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version 1 record in version 2's layout. Per-process memory of multi-process runs is dropped: version 1
    kept only each process's growth, not its peak."""
    data = {**data, "schema": RECORD_SCHEMA}
    run = dict(data.get("run_info") or {})
    run["memory"] = _memory_v1(run.get("memory"))
    data["run_info"] = run
    if data.get("train_info"):
        train = dict(data["train_info"])
        train["memory"] = _memory_v1(train, "train_")
        train.pop("train_peak_memory_mb_per_process", None)
        data["train_info"] = train
    if data.get("eval_info"):
        data["eval_info"] = {**data["eval_info"], "memory": _memory_v1(data["eval_info"], "eval_")}
    if data.get("strategy_info") is not None:
        info = dict(data["strategy_info"])
        if "mode" in info:
            info["retrieval_mode"] = info.pop("mode")
        data["strategy_info"] = info
    if data.get("meta_info"):
        hardware = dict(data["meta_info"].get("hardware") or {})
        for old, new in (("memory_gb", "memory_gib"), ("gpu_memory_gb", "gpu_memory_gib")):
            if old in hardware:
                hardware[new] = hardware.pop(old)  # version 1 already measured them in GiB
        data["meta_info"] = {**data["meta_info"], "hardware": hardware}
    return data
