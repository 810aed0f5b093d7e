"""Fail early on what cannot fit: before a fine-tuning run starts, predict its peak memory on this device.

A run whose predicted peak exceeds the device's memory fails at once, with the estimate and the
settings that would fit, instead of crashing an hour in. The prediction is conservative: every
sequence is taken at ``max_seq_len`` (the longest a batch can be).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from harness import catalog
from harness.strategies import FINE_TUNING, Variant
from harness.strategies.qlora import memory_model_quantization
from harness.task import Task

from advisor.costs import ModelShape
from advisor.costs.memory import TrainingMemory, training_memory
from advisor.costs.training import sharded_gpus, sharded_peak

GB = 1e9


def model_shape(task: Task) -> ModelShape | None:
    """From the catalog, else from a local model's config.json; None when neither is at hand (hub ids)."""
    ref = task.model_ref
    if ref.catalog_name:
        return ModelShape.from_catalog(ref.catalog_name)
    config_path = Path(ref.location) / "config.json"
    if ref.source != "local" or not config_path.exists():
        return None
    config = json.loads(config_path.read_text())
    heads = config["num_attention_heads"]
    return ModelShape(name=ref.name, num_layers=config["num_hidden_layers"], hidden_size=config["hidden_size"],
                      intermediate_size=config["intermediate_size"], num_attention_heads=heads,
                      num_key_value_heads=config.get("num_key_value_heads") or heads, vocab_size=config["vocab_size"],
                      tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
                      attention_bias=bool(config.get("attention_bias", False)))


def _memory(shape: ModelShape, method: str, params: dict, precision: str, **overrides) -> TrainingMemory:
    settings = {"batch_size": params.get("batch_size", 8), "seq_len": params.get("max_seq_len", 384),
                "gradient_checkpointing": params.get("gradient_checkpointing", False),
                "gradient_accumulation": params.get("gradient_accumulation", 1), **overrides}
    if method != "full":
        settings.update(rank=params.get("rank", 8), lora_targets=tuple(params.get("target_modules", ())) or
                        ("q_proj", "k_proj", "v_proj", "o_proj"))
    if method == "qlora":
        settings.update(quantization=memory_model_quantization(params))
    return training_memory(shape, method, precision=precision, **settings)


def _predict(shape: ModelShape, method: str, params: dict, precision: str, shards: int = 1, **overrides) -> float:
    """One device's predicted peak; ``shards`` > 1: FSDP shards the model states over that many devices."""
    return sharded_peak(_memory(shape, method, params, precision, **overrides), shards)


def _what_would_fit(shape: ModelShape, method: str, params: dict, precision: str, available: float,
                    gpus: int = 0) -> list[str]:
    """Settings that would fit; ``gpus``: the GPUs here (0 on a CPU machine), for FSDP over several."""
    options = []
    if method == "full" and gpus:
        n = sharded_gpus(_memory(shape, method, params, precision), available)
        if n and 1 < n:
            options.append(f"--num-processes {n} (FSDP over {n} GPUs like this one)"
                           + ("" if n <= gpus else f"; this machine has {gpus}"))
    if method == "full" and _predict(shape, "lora", params, precision) <= available:
        options.append("strategies.lora instead of full")
    if not params.get("gradient_checkpointing") and \
            _predict(shape, method, params, precision, gradient_checkpointing=True) <= available:
        options.append("gradient_checkpointing: true")
    for batch in (4, 2, 1):
        if batch < params.get("batch_size", 8) and _predict(shape, method, params, precision, batch_size=batch) <= available:
            options.append(f"batch_size: {batch} (with gradient_accumulation to keep the global batch)")
            break
    need = _predict(shape, method, params, "mixed" if precision == "fp32" else precision) / GB
    bigger = sorted((g["memory_gb"], name) for name, g in catalog.gpus().items()
                    if g.get("kind") == "gpu" and g["memory_gb"] * 0.9 >= need)
    if bigger:
        options.append(f"a GPU with {bigger[0][0]:g} GB or more ({bigger[0][1]})")
    return options


def _device_memory(device: dict) -> tuple[float, str]:
    """Bytes one process may use and the precision the harness trains in there. With several processes on
    one CPU machine they share its memory."""
    on_cuda = str(device.get("device", "")).startswith("cuda")
    if on_cuda:
        return (device.get("gpu_memory_gb") or 0) * GB, "bf16" if device.get("bf16") else "mixed"
    return (device.get("memory_gb") or 0) * GB / max(1, device.get("num_processes", 1)), "fp32"


def memory_preflight(task: Task) -> Callable[[Variant, dict], str | None]:
    """A check for ``harness.compare``: the reason a variant cannot fit on the device, or None.

    ``device`` is the hardware facts plus ``num_processes`` and ``sharding``: under FSDP each device holds
    its share of the model states (``sharded_peak``); under DDP a whole replica."""
    shape = model_shape(task)

    def check(variant: Variant, device: dict) -> str | None:
        available, precision = _device_memory(device)
        if shape is None or variant.strategy not in FINE_TUNING or not available:
            return None
        shards = device.get("num_processes", 1) if device.get("sharding") == "fsdp" else 1
        peak = _predict(shape, variant.strategy, variant.params, precision, shards)
        if peak <= available:
            return None
        fits = _what_would_fit(shape, variant.strategy, variant.params, precision, available,
                               device.get("gpu_count", 0) if str(device.get("device", "")).startswith("cuda") else 0)
        where = device.get("gpu") or "this machine"
        per = f" per device with {shards}-way FSDP" if shards > 1 else ""
        return (f"out of memory (predicted before training): {variant.strategy} of {shape.name} needs about "
                f"{peak / GB:.1f} GB{per} at batch {variant.params.get('batch_size')} x "
                f"{variant.params.get('max_seq_len')} tokens, {where} has {available / GB:.1f} GB; would fit: "
                f"{'; '.join(fits) or 'a smaller model'}")

    return check


def sharding_planner(task: Task) -> Callable[[Variant, dict], str]:
    """``--sharding auto`` for full fine-tuning on several GPUs (``harness.compare`` decides the other cases):
    'fsdp' (model states sharded) exactly when the memory model says a replica does not fit one GPU, else
    'ddp' (a replica per GPU, gradients averaged); 'ddp' too when the model's size is unknown."""
    shape = model_shape(task)

    def plan(variant: Variant, device: dict) -> str:
        available, precision = _device_memory(device)
        if shape is None or not available:
            return "ddp"
        memory = _memory(shape, "full", variant.params, precision)
        return "ddp" if memory.peak <= available else "fsdp"

    return plan
