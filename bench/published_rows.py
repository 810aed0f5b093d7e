"""How each row of bench/published_runs.yaml is put to the estimator: its model, GPU and settings mapped onto
advisor.costs' inputs (TrainingSettings, ServingSettings), or the reasons it cannot be. Used by
bench/published_validation.py; pure Python, no torch.

Every mapping the sources do not state exactly is an *assumption*, written into the row's report line."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from advisor.costs import ServingSettings, TrainingSettings, estimate_serving, estimate_training
from advisor.costs.compute import peak_flops
from advisor.costs.serving import RequestShape
from advisor.costs.shapes import ModelShape
from harness import catalog
from harness.errors import UserError
from harness.units import GIB

# bytes per unit of a measured memory key (bench/published_runs.yaml's header)
MEMORY_UNITS = {"peak_memory_bytes": 1.0, "peak_memory_gb": 1e9, "peak_memory_gib": float(GIB)}
# a published GPU name's first word -> catalog entry
GPU_NAMES: dict[str, str] = {
    "a10g": "a10g",
    "a100-40gb": "a100-40gb",
    "l40s": "l40s",
    "4090": "rtx-4090",
    "a6000": "rtx-a6000",
    "h100-sxm-80gb": "h100-sxm",
    "h200-sxm-141gb": "h200",
    "dgx-h100": "h100-sxm",
    "h100": "h100-sxm",
}
# Hugging Face ids the sources use whose config.json has the same layer shapes and vocabulary as a catalog entry
# (checked on the configs: Llama 3 and 3.1 differ in RoPE scaling only; NVIDIA's FP8 checkpoints quantise the same
# network; TinyLlama's chat model is fine-tuned from the intermediate checkpoint)
SAME_SHAPES = {
    "meta-llama/meta-llama-3-8b": "llama-3.1-8b",
    "meta-llama/meta-llama-3.1-8b": "llama-3.1-8b",
    "nvidia/llama-3.1-8b-instruct-fp8": "llama-3.1-8b",
    "meta-llama/meta-llama-3-70b": "llama-3.1-70b",
    "nvidia/llama-3.3-70b-instruct-fp8": "llama-3.1-70b",
    "tinyllama/tinyllama-1.1b-intermediate-step-1431k-3t": "tinyllama-1.1b-chat",
}
# close but not equal: mapped with the difference stated
NEAR_SHAPES = {
    "mistralai/mistral-7b-v0.1": ("mistral-7b", "Mistral v0.1 has 32,000 vocabulary rows, the catalog's v0.3 32,768"),
    "unsloth/mistral-7b-v0.2": ("mistral-7b", "Mistral v0.2 has 32,000 vocabulary rows, the catalog's v0.3 32,768"),
}
# architectures whose MLP is not gated or whose norms are LayerNorms with biases: outside the memory model
OTHER_ARCHITECTURES = ("phi-1_5", "phi-2", "stablelm", "falcon", "gemma-2b", "gemma-7b", "internlm")
# LitGPT's module names -> peft's (LitGPT's 'mlp' is its three MLP matrices; 'head' is the LM head)
LITGPT_TARGETS = {
    "query": ("q_proj",),
    "key": ("k_proj",),
    "value": ("v_proj",),
    "projection": ("o_proj",),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
    "head": ("lm_head",),
}
SUFFIXES = ("-instruct", "-chat", "-hf")
# LitGPT resource tables: model.max_seq_length = the longest Alpaca example, per model (the rows' note, from
# tutorials/resource-tables.md: Llama 2 1304, StableLM 1034, phi-1.5 1044 tokens); the first iteration uses it
LITGPT_LONGEST = {"llama-2": 1304, "stablelm": 1034, "phi-1_5": 1044}
# NeMo's 'adam' is Megatron's distributed Adam with decoupled weight decay (AdamW); its states do not matter to the
# time rows it has
OPTIMIZERS = {"adamw": "adamw", "adam": "adamw", "adamw-8bit": "adamw-8bit", "paged-adamw": "paged-adamw"}
# torchtune's README resource table runs its recipes' default configs (recipes/configs/llama3_1/*.yaml, read at
# 02d7035, a later commit than the README's): the single-device full recipe steps bitsandbytes' PagedAdamW8bit in
# the backward pass; every recipe checkpoints activations and uses a chunked / linear cross-entropy
TORCHTUNE_RECIPE = "torchtune recipe defaults (llama3_1 configs @02d7035, assumed)"
TORCHTUNE_LORA = {"rank": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj", "o_proj", "mlp"]}
LITGPT_GENERATE_TOKENS = (6, 50)  # generate/base.py defaults: 'Hello, my name is', max_new_tokens=50


@dataclass
class Row:
    """One published row: its prediction and ratio, or why it cannot be expressed."""

    id: str
    kind: str
    source: str
    model: str
    gpu: str
    method: str
    settings: str = ""
    measured: str = ""
    predicted: str = ""
    ratio: float | None = None  # predicted / measured
    metric: str = ""
    component: str = ""  # memory | time | serving-throughput | ttft: what the band is per
    reasons: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    fit_inputs: dict[str, Any] = field(default_factory=dict)  # time rows: what the utilisation fit needs


def catalog_model(hf_id: str) -> tuple[str | None, str, str]:
    """(catalog entry, why not, assumption) for a Hugging Face id."""
    wanted = hf_id.lower()
    entries = catalog.models()
    for name, entry in entries.items():
        if entry.get("hf_id", "").lower() == wanted:
            return name, "", ""
    if wanted in SAME_SHAPES:
        return SAME_SHAPES[wanted], "", f"{hf_id}: same shapes as catalog {SAME_SHAPES[wanted]}"
    if wanted in NEAR_SHAPES:
        name, why = NEAR_SHAPES[wanted]
        return name, "", why

    def stem(text: str) -> str:
        for _ in SUFFIXES:  # '-chat-hf': both
            for suffix in SUFFIXES:
                text = text.removesuffix(suffix)
        return text

    for name, entry in entries.items():
        if stem(entry.get("hf_id", "").lower()) == stem(wanted):
            return name, "", f"{hf_id}: the chat/instruct variant of catalog {name} (same shapes)"
    if any(arch in wanted for arch in OTHER_ARCHITECTURES):
        return None, f"architecture of {hf_id} (non-gated MLP / LayerNorm) not modelled", ""
    return None, f"model {hf_id} not in the catalog", ""


def catalog_gpu(published: str) -> tuple[str | None, str, str]:
    """(catalog entry, reason it is missing, assumption made) for a published GPU name."""
    first = published.split()[0].lower()
    if first.startswith("a100"):
        if "40GB" in published:
            return "a100-40gb", "", ""
        if "80G" in published:
            return "a100-80gb", "", ""
        # the catalog's A100 40 GB and 80 GB share the 312 TFLOP/s peak; memory rows compare bytes, not capacity
        return "a100-80gb", "", "A100 memory size not stated: a100-80gb (same peak as 40 GB)"
    key = GPU_NAMES.get(first)
    if key is None or key not in catalog.gpus():
        return None, f"GPU {published.split(' (')[0]} not in the catalog", ""
    return key, "", ""


def lora_targets(targets: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for target in targets:
        names.extend(LITGPT_TARGETS.get(target, (target,)))
    return tuple(dict.fromkeys(names))


def _precision(s: dict[str, Any], row: Row) -> tuple[str, bool]:
    """(estimator precision, fp8) for a training row."""
    text = str(s.get("precision", "not stated")).lower()
    if "fp8" in text or s.get("fp8"):
        return "bf16", True
    if text.startswith("bf16"):
        return "bf16", False
    if text == "not stated":
        row.assumptions.append("precision not stated: bf16")
        return "bf16", False
    row.reasons.append(f"precision {text}")
    return "bf16", False


def training_settings(run: dict[str, Any], row: Row) -> TrainingSettings | None:
    """The row's recipe as TrainingSettings; None (with reasons) when a setting has no counterpart."""
    s = run["settings"]
    torchtune_recipe = run["source"] == "torchtune" and s.get("optimizer") is None
    if torchtune_recipe:
        row.assumptions.append(TORCHTUNE_RECIPE)
    optimizer = str(s.get("optimizer", "not stated")).split(" (")[0]
    if optimizer == "not stated" or (optimizer == "None" and not torchtune_recipe):
        row.assumptions.append("optimizer not stated: AdamW")
        optimizer = "adamw"
    single_full = torchtune_recipe and run["method"] == "full" and run["gpu_count"] == 1
    if torchtune_recipe:
        optimizer = "paged-adamw-8bit" if single_full else "adamw"
    if optimizer not in OPTIMIZERS and optimizer != "paged-adamw-8bit":
        row.reasons.append(f"optimizer {optimizer}")
        return None
    quantization = str(s.get("quantization", "none")).split(" (")[0]
    _, fp8 = _precision(s, row)
    if (s.get("lora") or {}).get("use_dora"):
        row.reasons.append("DoRA")
    if s.get("cpu_offload"):
        row.reasons.append("FSDP CPU offload")
    if int(s.get("tensor_parallel") or 1) > 1 or int(s.get("pipeline_parallel") or 1) > 1:
        row.reasons.append("tensor/pipeline parallel training (the estimator shards with FSDP)")
    if row.reasons:
        return None
    packing = s.get("packing")
    if packing == "not stated":
        row.assumptions.append("packing not stated: off")
    return TrainingSettings(
        gradient_accumulation=int(s.get("gradient_accumulation") or 1),
        quantization=quantization if quantization in ("nf4", "nf4-dq", "int8") else "nf4-dq",
        optimizer=OPTIMIZERS.get(optimizer, optimizer),
        optimizer_in_backward=bool(s.get("optimizer_in_backward")) or single_full,
        loss="chunked" if s.get("loss") == "chunked" or torchtune_recipe else "full",
        adapter_dtype="bf16" if run["source"] in ("litgpt", "torchtune", "nemo") else "fp32",
        packing=packing is True,
        activation_offload=bool(s.get("activation_offload")),
        compile=bool(s.get("compile")),
        fp8=fp8,
        gpus=int(run["gpu_count"]) if run["gpu_count"] > 1 else None,
    )


def seq_len_of(run: dict[str, Any], model: str, row: Row) -> int | None:
    value = run["settings"].get("seq_len")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and "longest" in value:
        for key, length in LITGPT_LONGEST.items():
            if key in run["model"].lower() or key in model:
                row.assumptions.append(f"seq_len: the longest Alpaca example, {length} tokens (resource-tables.md)")
                return length
    row.reasons.append(f"seq_len {value}")
    return None


def locate(run: dict[str, Any], row: Row) -> tuple[str | None, str | None]:
    """The row's catalog model and GPU; what is missing goes to its reasons, what was assumed to its assumptions."""
    model, why, assumed = catalog_model(run["model"])
    gpu, why_gpu, assumed_gpu = catalog_gpu(run["gpu"])
    row.reasons += [reason for reason in (why if model is None else "", why_gpu if gpu is None else "") if reason]
    row.assumptions += [text for text in (assumed, assumed_gpu) if text]
    return model, gpu


def training_row(run: dict[str, Any], row: Row) -> None:
    """Predict one training row (memory or throughput) into ``row``."""
    s, method, measured = run["settings"], run["method"], run["measured"]
    model, gpu = locate(run, row)
    lora = s.get("lora") or {}
    if method != "full" and not lora.get("rank") and run["source"] == "torchtune":
        lora = TORCHTUNE_LORA
        row.assumptions.append("LoRA: torchtune recipe defaults (rank 8 on q, v, o and the MLP, dropout 0), assumed")
    if method != "full" and not lora.get("rank"):
        row.reasons.append("LoRA rank/targets not stated")
    settings = training_settings(run, row)
    tokens = seconds = None
    if run["kind"] == "throughput":
        tokens, seconds = measured_time(run, row)
    if run["kind"] == "throughput" and s.get("packing") is False and "steps" not in s:
        # tokens/s count real tokens; an unpacked run also computes on padding, which needs the mean length
        row.reasons.append("unpacked run without its mean example length (padding unknown)")
    if row.reasons or model is None or gpu is None or settings is None:
        return
    seq = seq_len_of(run, model, row)
    if seq is None:
        return
    batch = int(s["micro_batch_size"])
    if run["kind"] == "throughput" and "steps" in s and "tokens" in measured and not settings.packing:
        # the mean example length the source's own counts imply: tokens / (steps x global batch)
        mean = round(float(measured["tokens"]) / (int(s["steps"]) * int(s.get("global_batch_size") or batch)))
        settings = dataclasses.replace(settings, mean_seq_len=mean)
        row.assumptions.append(f"mean length {mean} = tokens / (steps x batch); batches padded to their longest")
    checkpointing = s.get("gradient_checkpointing")
    if run["source"] == "torchtune" and checkpointing is None:
        checkpointing = True
    elif checkpointing is None:
        row.assumptions.append("gradient checkpointing not stated: method default")
    lora_kwargs: dict[str, Any] = {}
    targets: tuple[str, ...] = ()
    if method != "full":
        targets = lora_targets(lora.get("targets", ()))
        lora_kwargs = {"rank": int(lora["rank"]), "lora_targets": targets, "lora_dropout": float(lora["dropout"])}
    try:
        estimate = estimate_training(
            ModelShape.from_catalog(model),
            method,
            gpu,
            examples=1,
            seq_len=seq,
            epochs=1,
            batch_size=batch,
            precision="bf16",
            gradient_checkpointing=checkpointing,
            settings=settings,
            **lora_kwargs,
        )
    except UserError as err:
        row.reasons.append(str(err))
        return
    row.settings = describe(batch, seq, checkpointing, lora, targets, settings)
    if run["kind"] == "memory":
        key = next(k for k in MEMORY_UNITS if k in measured)
        measured_bytes = float(measured[key]) * MEMORY_UNITS[key]
        row.measured = f"{measured_bytes / GIB:.2f} GiB"
        row.predicted = f"{estimate.per_device_peak / GIB:.2f} GiB"
        row.ratio = estimate.per_device_peak / measured_bytes
        row.metric = run["memory_metric"] + (" per GPU" if run["gpu_count"] > 1 else "")
        row.component = "memory"
        return
    assert tokens is not None and seconds is not None
    # time for the measured tokens: the estimate's GPU-hours per example-token, scaled
    compute_per_token = estimate.flops.total / estimate.tokens
    per_token_hours = estimate.gpu_hours / estimate.tokens
    predicted_seconds = per_token_hours * tokens * 3600 / estimate.gpus
    row.measured = f"{tokens / seconds:,.0f} tok/s"
    row.predicted = f"{tokens / predicted_seconds:,.0f} tok/s (util {estimate.utilisation.value:.3f})"
    row.ratio = predicted_seconds / seconds
    row.metric = "time"
    row.component = "time"
    row.fit_inputs = {
        "method": method,
        "flops": compute_per_token * tokens,
        "seconds": seconds,
        "gpus": estimate.gpus,
        "peak": peak_of(gpu, settings.fp8),
        # the estimate was made for one example: compute_tokens is its padded length
        "tokens_per_step_per_gpu": batch * estimate.compute_tokens * settings.gradient_accumulation,
        "compile": settings.compile,
        "fp8": settings.fp8,
    }


def peak_of(gpu: str, fp8: bool) -> float:
    return peak_flops(catalog.gpus()[gpu], "fp8" if fp8 else "bf16")


def measured_time(run: dict[str, Any], row: Row) -> tuple[float | None, float | None]:
    """(tokens, seconds) of all GPUs together, from whichever form the source gives."""
    m = run["measured"]
    if "tokens" in m and "train_seconds" in m:
        return float(m["tokens"]), float(m["train_seconds"])
    if "tokens_per_second" in m:
        return 1e6, 1e6 / float(m["tokens_per_second"])
    if "tokens_per_second_per_gpu" in m:
        return 1e6, 1e6 / (float(m["tokens_per_second_per_gpu"]) * int(run["gpu_count"]))
    row.reasons.append("no token count (time alone)")
    return None, None


def describe(
    batch: int, seq: int, checkpointing: Any, lora: dict, targets: tuple[str, ...], settings: TrainingSettings
) -> str:
    parts = [f"b{batch} s{seq}"]
    if settings.gradient_accumulation > 1:
        parts.append(f"ga{settings.gradient_accumulation}")
    if checkpointing:
        parts.append("ckpt")
    if lora:
        parts.append(f"r{lora['rank']} {'+'.join(t.removesuffix('_proj') for t in targets)}")
    flags = [
        (settings.optimizer != "adamw-fused", settings.optimizer),
        (settings.optimizer_in_backward, "opt-in-bwd"),
        (settings.loss == "chunked", "chunked-ce"),
        (settings.packing, "packed"),
        (settings.compile, "compile"),
        (settings.activation_offload, "offload"),
        (settings.fp8, "fp8"),
        (bool(settings.gpus), f"{settings.gpus} GPUs"),
        (settings.mean_seq_len is not None, f"mean {settings.mean_seq_len}"),
    ]
    return " ".join(parts + [text for on, text in flags if on])


def serving_row(run: dict[str, Any], row: Row) -> None:
    s, measured = run["settings"], run["measured"]
    model, gpu = locate(run, row)
    if "litgpt generate" in str(s.get("engine")):
        # eager PyTorch, one request at a time, no CUDA graphs: launch-bound, not bandwidth-bound like the engines
        # (vLLM, TensorRT-LLM, lmdeploy) whose efficiencies the serving model carries
        row.reasons.append("engine: eager PyTorch generate (not a serving engine)")
    precision = str(s.get("weight_precision", "not stated")).lower()
    if precision.startswith(("bf16", "fp16")):
        weights = "bf16"
    elif precision == "fp8":
        weights = "fp8"
    else:
        row.reasons.append(f"weights {precision}")
        weights = "bf16"
    if row.reasons or model is None or gpu is None:
        return
    batch = s.get("batch")
    fixed_batch = batch if isinstance(batch, int) else None
    if fixed_batch is None and isinstance(s.get("concurrency"), int):
        fixed_batch = int(s["concurrency"])
    prompt, output = s.get("input_tokens"), s.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(output, int):
        prompt, output = LITGPT_GENERATE_TOKENS
        row.assumptions.append("prompt/output not stated: LitGPT generate.py defaults (6 + 50)")
    kv = str(s.get("kv_cache_dtype", "not stated"))
    if kv == "not stated":
        row.assumptions.append("KV cache dtype not stated: bf16")
    settings = ServingSettings(
        serving_batch=fixed_batch,
        tensor_parallel=int(s.get("tensor_parallel") or run["gpu_count"] or 1),
        weight_precision=weights,
        kv_cache_dtype="fp8" if kv == "fp8" else "bf16",
    )
    request = RequestShape(input_tokens=int(prompt), output_tokens=int(output), template_tokens=0, shots=0)
    estimate = estimate_serving(
        ModelShape.from_catalog(model), "fine-tuned", gpu, 0, request=request, settings=settings
    )
    row.settings = (
        f"batch {estimate.batch}{'' if fixed_batch else ' (ours)'}, {prompt} + {output} tokens, TP "
        f"{estimate.gpus_per_replica}, {weights}"
    )
    # every published figure of the row is a comparison of its own: output throughput, time to first token
    parts = []
    if "output_tokens_per_second" in measured:
        value = float(measured["output_tokens_per_second"])
        predicted = estimate.output_tokens_per_second
        parts.append(("serving-throughput", predicted, value, f"{value:,.0f} tok/s", f"{predicted:,.0f} tok/s"))
    if "ttft_ms" in measured:
        value, predicted = float(measured["ttft_ms"]) / 1000, estimate.ttft_seconds
        parts.append(("ttft", predicted, value, f"TTFT {value * 1000:.0f} ms", f"{predicted * 1000:.0f} ms"))
    row.fit_inputs = {"parts": parts}
    if not parts:
        row.reasons.append("no throughput or TTFT figure")


def expand(rows: list[Row]) -> list[Row]:
    """A serving row becomes one row per compared quantity (throughput, TTFT), each with predicted / measured."""
    out = []
    for row in rows:
        parts = row.fit_inputs.get("parts") if row.kind == "serving" else None
        if not parts:
            out.append(row)
            continue
        for component, predicted, value, shown, said in parts:
            twin = dataclasses.replace(row, reasons=list(row.reasons), assumptions=list(row.assumptions))
            twin.id = row.id if len(parts) == 1 else f"{row.id}#{component}"
            twin.component, twin.metric, twin.measured, twin.predicted = component, component, shown, said
            twin.ratio = predicted / value
            out.append(twin)
    return out


def evaluate(runs: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for run in runs:
        if run.get("excluded"):
            continue
        row = Row(run["id"], run["kind"], run["source"], run["model"], run["gpu"], run["method"])
        if run["kind"] == "serving":
            serving_row(run, row)
        else:
            training_row(run, row)
        rows.append(row)
    return expand(rows)
