"""``advisor estimate``: plan a project before there is data or a GPU - memory, training, serving and data costs
of each approach for one model on one device, from the catalogs alone (no torch)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from advisor.cli_errors import OneLineUsageErrors, user_errors
from advisor.cli_options import dataclass_options
from advisor.costs import (
    DataCostConfig,
    RequestShape,
    data_cost,
    estimate_serving,
    estimate_training,
    param_counts,
)
from advisor.costs.bands import DOES_NOT_FIT, cost_band, fit_verdict, truth_band
from advisor.costs.job_overhead import assumption_lines as job_overhead_lines
from advisor.costs.memory import (
    LOSS_FP32_COPIES,
    PRECISIONS,
    QUANTIZED_BYTES_PER_PARAM,
    adapter_bytes_per_param,
    check_lora,
    default_precision,
    usable_memory,
)
from advisor.costs.serving import HOURS_PER_MONTH
from advisor.costs.settings import ServingSettings, TrainingSettings
from advisor.costs.shapes import LINEAR_MODULES, ModelShape, check_lora_targets
from advisor.wording import usd as _usd  # the report's rule: money never in scientific notation
from harness import catalog
from harness.steps import DEFAULT_MIN_OPTIMIZER_STEPS, step_plan
from harness.strategies import STRATEGIES, traits
from harness.strategies.base import LabelledExamples, device_need
from harness.strategies.lora import DEFAULT_TARGET_MODULES
from harness.units import GIB

NOT_APPLICABLE = "-"

# What each --precision means, for the assumptions (advisor.costs.memory.default_precision: the harness trains in
# bf16 on a GPU with bf16, fp32 elsewhere)
PRECISION_MEANING = {
    "bf16": "pure bf16 as the harness trains on a bf16 GPU: bf16 weights, gradients and AdamW states, no fp32 "
    "master copy",
    "fp32": "everything fp32, as the harness trains on a CPU or a GPU without bf16",
    "mixed": "ZeRO's mixed precision: 16-bit weights and gradients, fp32 master and Adam; not what the harness does",
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the user asked about: one model on one device, the training run, the traffic, the data."""

    shape: ModelShape
    gpu: str
    examples: int
    seq_len: int
    epochs: float
    batch_size: int
    rank: int
    lora_targets: tuple[str, ...]
    precision: str
    gradient_checkpointing: bool | None  # None: each method's harness default (strategy config), on for QLoRA
    monthly_requests: int
    request: RequestShape
    data_config: DataCostConfig
    settings: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    min_optimizer_steps: int = DEFAULT_MIN_OPTIMIZER_STEPS  # the harness's step minimum (harness.steps)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["shape"]
        return {"model": self.shape.name, **data, "lora_targets": list(self.lora_targets)}


def examples_needed(strategy: str, plan: Plan) -> int:
    """Labelled examples an approach needs, by its strategy's rule: the few-shot examples for prompting; the whole
    training set for fine-tuning, and for RAG, whose harness arm retrieves labelled examples when a task has no
    corpus."""
    return plan.request.shots if traits(strategy).labelled_examples is LabelledExamples.SHOTS else plan.examples


def checkpointing_for(plan: Plan, strategy: str) -> bool:
    """What the user asked for, else what the harness's strategy does by default (its config's field:
    QloraConfig turns it on, the other training configs leave it off)."""
    if plan.gradient_checkpointing is not None:
        return plan.gradient_checkpointing
    default = getattr(STRATEGIES[strategy].config_type, "gradient_checkpointing", False)
    return bool(default)


def uses_adapters(strategy: str) -> bool:
    return traits(strategy).memory_method not in (None, "full")


def estimate_method(plan: Plan, strategy: str) -> dict[str, Any]:
    """One strategy's training, serving and data estimates, and its headline figures."""
    t = traits(strategy)
    training = (
        estimate_training(
            plan.shape,
            t.memory_method,
            plan.gpu,
            plan.examples,
            plan.seq_len,
            plan.epochs,
            plan.batch_size,
            plan.rank,
            precision=plan.precision,
            lora_targets=plan.lora_targets,
            gradient_checkpointing=checkpointing_for(plan, strategy),
            settings=plan.settings,
            min_optimizer_steps=plan.min_optimizer_steps,
        )
        if t.memory_method and t.utilisation_key
        else None
    )
    serving = estimate_serving(
        plan.shape, t.serving_method, plan.gpu, plan.monthly_requests, request=plan.request, settings=plan.serving
    )
    data = data_cost(examples_needed(strategy, plan), plan.data_config)
    train_usd = training.usd if training else 0.0
    method = t.memory_method
    peak = (training.per_device_peak if training else serving.memory.total) / GIB
    peak_band = truth_band(peak, "memory", method if training else None)
    usable = (training.usable_memory if training else usable_memory(catalog.gpus()[plan.gpu])) / GIB
    serve_band = cost_band(serving.usd_per_month, "serving_throughput")
    train_band = truth_band(training.gpu_hours, "time", method) if training else None
    device_kind = "cuda" if catalog.gpus()[plan.gpu]["kind"] == "gpu" else "cpu"
    runs_here = [] if device_kind in t.devices else [f"{t.display_name} needs {device_need(t)}"]
    return {
        "notes": runs_here,
        "trainable_params": training.trainable_params if training else 0,
        "peak_memory_gib": (training.memory.peak if training else serving.memory.total) / GIB,
        "peak_memory_gib_range": peak_band.as_list(),
        "fits": training.fits if training else serving.fits,
        "fit": fit_verdict(peak_band, usable),
        "train_gpu_hours": training.gpu_hours if training else 0.0,
        "train_gpu_hours_range": train_band.as_list() if train_band else [0.0, 0.0],
        "train_usd": train_usd,
        # the band spreads the compute part; the fixed part per job is added to both ends
        "train_usd_range": [x + training.fixed.usd for x in cost_band(training.flop_usd, "time", method).as_list()]
        if training
        else [0.0, 0.0],
        "train_flop_usd": training.flop_usd if training else 0.0,
        "train_fixed_usd": training.fixed.usd if training else 0.0,
        "serve_usd_per_month": serving.usd_per_month,
        "serve_usd_per_month_range": serve_band.as_list(),
        "bands": {
            "memory": peak_band.source,
            "time": train_band.source if train_band else None,
            "serving": serve_band.source,
        },
        "serve_usd_per_1k_requests": serving.usd_per_1k_requests,
        "data_usd": data.total_usd,
        "first_month_usd": data.total_usd + train_usd + serving.usd_per_month,
        "training": training.as_dict() if training else None,
        "serving": serving.as_dict(),
        "data": data.as_dict(),
    }


# ---- the table ------------------------------------------------------------------------------------------------


def _count(n: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g}{suffix}"
    return f"{n:.3g}"


def _gib(x: float) -> str:
    return f"{x / GIB:.2f}" if x else NOT_APPLICABLE


def _rows(results: dict, usable_gib: float) -> list[tuple[str, list[str]]]:
    """(label, one cell per method); fine-tuning methods show their training peak, prompt and rag a serving replica."""

    def col(fn):
        return [fn(r) for r in results.values()]

    def train(fn):
        return col(lambda r: fn(r["training"]) if r["training"] else NOT_APPLICABLE)

    def train_mem(key):
        return train(lambda t: _gib(t["memory_bytes"][key]))

    def serve(fn):
        return col(lambda r: NOT_APPLICABLE if r["training"] else fn(r["serving"]["memory"]))

    def weights(r):
        return _gib((r["training"]["memory_bytes"] if r["training"] else r["serving"]["memory"])["weights"])

    def fits(r):
        needed = r["training"]["gpus_needed"] if r["training"] else r["serving"]["gpus_per_replica"]
        if r["fit"] != DOES_NOT_FIT:
            return r["fit"]
        return f"no ({needed} GPUs)" if needed else "no"

    def band(key: str, fmt) -> Any:
        return col(lambda r: f"{fmt(r[key + '_range'][0])}-{fmt(r[key + '_range'][1])}")

    def train_band(key: str, fmt) -> Any:
        return col(
            lambda r: f"{fmt(r[key + '_range'][0])}-{fmt(r[key + '_range'][1])}" if r["training"] else NOT_APPLICABLE
        )

    def gpu_seconds(s):
        return f"{s['replica_seconds_per_request'] * s['gpus_per_replica']:.3g}"

    def tokens(s):
        return f"{s['prompt_tokens']} + {s['output_tokens']}"

    return [
        ("trainable params", col(lambda r: _count(r["trainable_params"]))),
        ("MEMORY, GiB", []),
        ("  weights", col(weights)),
        ("  gradients", train_mem("gradients")),
        ("  fp32 master weights", train_mem("master_weights")),
        ("  Adam states", train_mem("optimizer_states")),
        ("  LoRA adapters + grads + Adam", train_mem("lora_adapters")),
        ("  activations", train_mem("activations")),
        ("  logits and loss", train_mem("logits_and_loss")),
        ("  lm_head gradient (backward start)", train_mem("lm_head_gradient")),
        ("  4-bit dequantisation buffer", train_mem("dequantisation_buffer")),
        ("  optimizer-step temporaries", train_mem("optimizer_step_temporaries")),
        ("  KV cache (serving batch)", serve(lambda m: _gib(m["kv_cache"]))),
        ("  prefill + logits (serving)", serve(lambda m: _gib(m["prefill_activations"] + m["logits"]))),
        ("  peak: training / serving", col(lambda r: f"{r['peak_memory_gib']:.2f}")),
        ("  80 % band (published runs)", band("peak_memory_gib", lambda x: f"{x:.1f}")),
        ("  peak phase", train(lambda t: t["memory_bytes"]["peak_phase"])),
        (f"  fits in {usable_gib:.1f} GiB usable", col(fits)),
        ("TRAINING", []),
        ("  tokens", train(lambda t: _count(t["tokens"]))),
        ("  FLOPs", train(lambda t: f"{t['flops']['total']:.3g}")),
        ("  utilisation (sources below)", train(lambda t: f"{t['utilisation']['value']:.2f}")),
        ("  gradient checkpointing", train(lambda t: "on" if t["gradient_checkpointing"] else "off")),
        ("  GPU-hours", train(lambda t: f"{t['train_gpu_hours']:.3g}")),
        ("  GPU-hours, 80 % band", train_band("train_gpu_hours", lambda x: f"{x:.3g}")),
        ("  fixed seconds per job (below)", train(lambda t: f"{t['fixed_costs']['total_seconds']:.3g}")),
        ("  cost: compute", train(lambda t: _usd(t["train_flop_usd"]))),
        ("  cost: fixed per job", train(lambda t: _usd(t["train_fixed_usd"]))),
        ("  cost", train(lambda t: _usd(t["train_usd"]))),
        ("  cost, 80 % band", train_band("train_usd", _usd)),
        ("SERVING", []),
        ("  prompt + output tokens", col(lambda r: tokens(r["serving"]))),
        ("  requests decoded together", col(lambda r: str(r["serving"]["batch"]))),
        ("  decode bound by", col(lambda r: r["serving"]["decode_bound"])),
        ("  GPU-seconds per request", col(lambda r: gpu_seconds(r["serving"]))),
        ("  requests per replica-hour", col(lambda r: _count(r["serving"]["requests_per_replica_hour"]))),
        ("  GPUs", col(lambda r: str(r["serving"]["gpus"]))),
        ("  cost per month", col(lambda r: _usd(r["serve_usd_per_month"]))),
        ("  cost per month, 80 % band", band("serve_usd_per_month", _usd)),
        ("  cost per 1k requests", col(lambda r: _usd(r["serve_usd_per_1k_requests"]))),
        ("DATA", []),
        ("  labelled examples", col(lambda r: f"{r['data']['examples']:,}")),
        ("  cost", col(lambda r: _usd(r["data_usd"]))),
        ("FIRST MONTH (data + training + serving)", col(lambda r: _usd(r["first_month_usd"]))),
    ]


def _assumptions(plan: Plan, results: dict, usable_gib: float, device: dict) -> list[str]:
    p, request, data = PRECISIONS[plan.precision], plan.request, plan.data_config
    serving = next(iter(results.values()))["serving"]

    def figure(utilisation: dict) -> str:
        return f"{utilisation['value']:.2f} ({utilisation['source']})"

    lines = [
        (
            f"training examples average {plan.settings.mean_seq_len} tokens (--mean-seq-len; tokens = examples x "
            "mean x epochs), the longest batch is seq-len (memory); the devices also compute on padding unless packed"
            if plan.settings.mean_seq_len
            else "every training example is seq-len tokens long: tokens = examples x seq-len x epochs (give "
            "--mean-seq-len for time and tokens of shorter examples)"
        ),
        f"precision '{plan.precision}': {p.weight:g} + {p.gradient:g} + {p.master_weight:g} + {p.optimizer:g} = "
        f"{p.trained_param:g} B per trained parameter (weights + gradients + fp32 master + Adam; "
        f"{PRECISION_MEANING[plan.precision]}), {p.frozen_weight:g} B per frozen one, {p.activation:g} B per "
        f"activation; LoRA adapters {plan.settings.adapter_dtype} + Adam, "
        f"{adapter_bytes_per_param(plan.settings):.3g} B each; QLoRA stores the blocks' matrices in "
        f"{plan.settings.quantization} ({QUANTIZED_BYTES_PER_PARAM[plan.settings.quantization] * 8:.3g} bits per "
        "weight), embeddings and lm_head in 16 bits",
        f"recipe: optimizer {plan.settings.optimizer}"
        + (" stepped in the backward pass" if plan.settings.optimizer_in_backward else "")
        + f", {plan.settings.loss} loss, gradient accumulation {plan.settings.gradient_accumulation}"
        + (", packed" if plan.settings.packing else ", unpacked (batches padded to their longest)")
        + (f", mean length {plan.settings.mean_seq_len}" if plan.settings.mean_seq_len else "")
        + (", torch.compile" if plan.settings.compile else "")
        + (", activation offload" if plan.settings.activation_offload else "")
        + (", FP8" if plan.settings.fp8 else "")
        + (f", {plan.settings.gpus} GPUs" if plan.settings.gpus else ""),
        "bands: the 10th-90th percentile of predicted / measured on published runs "
        "(data/catalog/estimate_bands.yaml, bench/published_validation.py): "
        + "; ".join(
            f"{name} {src}"
            for name, src in next((r for r in results.values() if r["training"]), next(iter(results.values())))[
                "bands"
            ].items()
            if src is not None
        ),
        "activations: what Hugging Face transformers' decoder layers keep with SDPA attention (no seq x seq scores, "
        f"fp32 RMSNorm inputs); logits and loss (bytes per activation + {4 * LOSS_FP32_COPIES}) x vocab per token; "
        "gradient checkpointing keeps each layer's input and rebuilds one layer at a time",
        f"fits: the peak's band against {usable_gib:.1f} GiB, the usable share of "
        f"{device['memory_gib']} GiB "
        f"(CUDA context, allocator fragmentation)",
        "training FLOPs per token: 2N forward + 2N input gradients + 2 x trained parameters for weight gradients "
        "(+ 2N recompute with checkpointing); time = FLOPs / (peak x utilisation)",
    ]
    lines += [
        f"utilisation {method}: {figure(r['training']['utilisation'])}"
        for method, r in results.items()
        if r["training"]
    ]
    if any(r["training"] for r in results.values()):
        lines += job_overhead_lines(plan.gpu)
    lines += [
        f"request tokens: template {request.template_tokens}, instruction {request.instruction_tokens}, "
        f"{request.shots} shots x {request.shot_tokens}, {request.rag_chunks} RAG chunks x {request.chunk_tokens}, "
        f"input {request.input_tokens}, output {request.output_tokens}; fine-tuned models get template + input only",
        f"serving: prefill at {figure(serving['prefill_mfu'])} of peak FLOP/s; decode at "
        f"{figure(serving['decode_bandwidth_utilisation'])} of memory bandwidth; load factor "
        f"{figure(serving['load_factor'])}; whole GPUs for {HOURS_PER_MONTH} h a month, at least one while there "
        f"is traffic; adapters merged into 16-bit weights",
        f"data: {data.minutes_per_example:g} min per human-written example at ${data.hourly_rate_usd:g}/h; "
        f"{data.llm_generated_fraction:.0%} LLM-generated at {data.llm_tokens_per_example} tokens and "
        f"${data.llm_usd_per_million_tokens:g} per million; {data.review_fraction:.0%} of those reviewed at "
        f"{data.review_minutes_per_example:g} min each",
    ]
    return lines


def _checkpointing(plan: Plan) -> str:
    if plan.gradient_checkpointing is None:
        return "as each method's harness default (on for QLoRA)"
    return "on" if plan.gradient_checkpointing else "off"


def _steps_line(plan: Plan) -> str:
    """The optimizer steps the plan takes, and what the step minimum changed to reach it."""
    steps = step_plan(
        plan.examples,
        plan.epochs,
        plan.batch_size,
        plan.settings.gradient_accumulation,
        plan.settings.gpus or 1,
        plan.min_optimizer_steps,
    )
    line = f"optimizer steps: {steps.optimizer_steps:,}"
    if not steps.adjusted:
        return line + (f" (at least {plan.min_optimizer_steps} asked)" if plan.min_optimizer_steps else "")
    changed = [f"batch {plan.batch_size} -> {steps.batch_size}"] if steps.batch_lowered else []
    changed += [f"epochs {plan.epochs:g} -> {steps.epochs:.3g}"] if steps.epochs_raised else []
    return (
        f"{line}: the harness's minimum of {plan.min_optimizer_steps} (--min-optimizer-steps; 0: none) makes it "
        f"{', '.join(changed)}, priced so"
    )


def render_text(plan: Plan, results: dict) -> str:
    device = catalog.check_gpu(plan.gpu)
    usable_gib = usable_memory(device) / GIB
    rows = _rows(results, usable_gib)
    label_width = max(len(label) for label, _ in rows) + 2
    widths = [
        max([len(method)] + [len(cells[i]) for _, cells in rows if cells]) + 2 for i, method in enumerate(results)
    ]
    lines = [
        f"{plan.shape.name} ({_count(param_counts(plan.shape).total)} params) on {plan.gpu}: {device['display_name']}, "
        f"{device['memory_gib']} GiB, {device['peak_tflops_bf16_dense']} TFLOPS bf16, "
        f"{device['memory_bandwidth_gbs']} GB/s, ${device['usd_per_hour']}/h",
        f"training: {plan.examples:,} examples x {plan.seq_len} tokens x {plan.epochs:g} epochs, batch "
        f"{plan.batch_size}, precision {plan.precision}, gradient checkpointing "
        f"{_checkpointing(plan)}; LoRA rank {plan.rank} on {','.join(plan.lora_targets)}",
        _steps_line(plan),
        f"serving: {plan.monthly_requests:,} requests/month",
        "",
        " " * label_width + "".join(method.rjust(w) for method, w in zip(results, widths, strict=True)),
    ]
    # a section header has no cells
    lines += [
        label.ljust(label_width) + "".join(c.rjust(w) for c, w in zip(cells, widths, strict=False))
        for label, cells in rows
    ]
    lines += ["", "Assumptions:"] + [f"  - {line}" for line in _assumptions(plan, results, usable_gib, device)]
    notes = [
        f"  - {method}: {note}"
        for method, r in results.items()
        for note in r["notes"] + (r["training"]["notes"] if r["training"] else []) + r["serving"]["notes"]
    ]
    return "\n".join(lines + (["", "Notes:"] + notes if notes else []))


def pick(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``values`` that are fields of dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


EXAMPLES = """\b
Examples:
  advisor estimate --model llama-3.1-8b --gpu a10g
  advisor estimate --model llama-3.1-70b --gpu h100-sxm --method lora --rank 16 --json
  advisor estimate --model smollm2-135m-instruct --gpu a10g --examples 1000 --epochs 3
"""


@click.command(cls=OneLineUsageErrors, epilog=EXAMPLES)
@click.option("--model", required=True, help="A model name from data/catalog/models.yaml (or its Hugging Face id).")
@click.option(
    "--method",
    type=click.Choice(list(STRATEGIES)),
    default=None,
    help="One approach (a strategy); default: all side by side.",
)
@click.option("--gpu", required=True, help="A device name from data/catalog/gpus.yaml.")
@click.option("--examples", type=click.IntRange(min=1), default=1000, show_default=True, help="Training examples.")
@click.option(
    "--seq-len",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Tokens per training example (the longest batch's padded length, for memory).",
)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Examples per step per device."
)
@click.option(
    "--min-optimizer-steps",
    type=click.IntRange(min=0),
    default=DEFAULT_MIN_OPTIMIZER_STEPS,
    show_default=True,
    help="Fewest optimizer steps, as the harness trains (min_optimizer_steps): fewer lower the batch size, then "
    "raise the epochs; 0: none.",
)
@click.option("--rank", type=click.IntRange(min=1), default=8, show_default=True, help="LoRA rank.")
@click.option(
    "--lora-targets",
    default=",".join(DEFAULT_TARGET_MODULES),
    show_default=True,
    help=f"Comma-separated modules that get adapters: {', '.join(LINEAR_MODULES)} or all-linear.",
)
@click.option(
    "--precision",
    type=click.Choice(list(PRECISIONS)),
    default=None,
    help="Training precision regime (default: what the harness trains in there - bf16 on GPUs with bf16, "
    "fp32 on CPUs and other GPUs).",
)
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing",
    default=None,
    help="Recompute activations in the backward pass (default: each method's harness default - on for QLoRA, "
    "off otherwise).",
)
@click.option("--monthly-requests", type=click.IntRange(min=0), default=1_000_000, show_default=True)
@click.option(
    "--input-tokens",
    type=click.IntRange(min=1),
    default=RequestShape.input_tokens,
    show_default=True,
    help="Tokens of the user's input per request.",
)
@click.option(
    "--output-tokens",
    type=click.IntRange(min=1),
    default=RequestShape.output_tokens,
    show_default=True,
    help="Tokens generated per request.",
)
@dataclass_options(TrainingSettings)
@dataclass_options(ServingSettings)
@dataclass_options(DataCostConfig)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@user_errors
def estimate(
    model: str,
    method: str | None,
    gpu: str,
    examples: int,
    seq_len: int,
    epochs: float,
    batch_size: int,
    min_optimizer_steps: int,
    rank: int,
    lora_targets: str,
    precision: str | None,
    gradient_checkpointing: bool | None,
    monthly_requests: int,
    input_tokens: int,
    output_tokens: int,
    as_json: bool,
    **fields: Any,
) -> None:
    """Estimate memory, training, serving and data costs of each approach for a model on a device, before any run."""
    device = catalog.check_gpu(gpu, where="--gpu")
    shape = ModelShape.from_catalog(model, where="--model")
    methods = (method,) if method else tuple(STRATEGIES)
    if any(uses_adapters(m) for m in methods):
        targets = check_lora(shape, rank, lora_targets, rank_option="--rank", targets_option="--lora-targets")
    else:
        targets = check_lora_targets(lora_targets, where="--lora-targets")
    plan = Plan(
        shape=shape,
        gpu=gpu,
        examples=examples,
        seq_len=seq_len,
        epochs=epochs,
        batch_size=batch_size,
        rank=rank,
        lora_targets=targets,
        precision=precision or default_precision(device),
        gradient_checkpointing=gradient_checkpointing,
        monthly_requests=monthly_requests,
        request=RequestShape(input_tokens=input_tokens, output_tokens=output_tokens),
        data_config=DataCostConfig(**pick(DataCostConfig, fields)),
        settings=TrainingSettings(**pick(TrainingSettings, fields)),
        serving=ServingSettings(**pick(ServingSettings, fields)),
        min_optimizer_steps=min_optimizer_steps,
    )
    if method and plan.gradient_checkpointing is None:  # one method: say what it does, not "its default"
        plan = dataclasses.replace(plan, gradient_checkpointing=checkpointing_for(plan, method))
    results = {m: estimate_method(plan, m) for m in methods}
    if as_json:
        click.echo(json.dumps({**plan.as_dict(), **(results[method] if method else {"methods": results})}))
    else:
        click.echo(render_text(plan, results))
