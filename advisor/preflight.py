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
from harness.strategies import Variant
from harness.task import Task

from advisor.costs import ModelShape
from advisor.costs.memory import training_memory

GB = 1e9
FINE_TUNING = ("lora", "full", "qlora")


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


def _predict(shape: ModelShape, method: str, params: dict, precision: str, **overrides) -> float:
    settings = {"batch_size": params.get("batch_size", 8), "seq_len": params.get("max_seq_len", 384),
                "gradient_checkpointing": params.get("gradient_checkpointing", False),
                "gradient_accumulation": params.get("gradient_accumulation", 1), **overrides}
    if method != "full":
        settings.update(rank=params.get("rank", 8), lora_targets=tuple(params.get("target_modules", ())) or
                        ("q_proj", "k_proj", "v_proj", "o_proj"))
    return training_memory(shape, method, precision=precision, **settings).peak


def _what_would_fit(shape: ModelShape, method: str, params: dict, precision: str, available: float) -> list[str]:
    options = []
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


def memory_preflight(task: Task) -> Callable[[Variant, dict], str | None]:
    """A check for ``harness.compare``: the reason a variant cannot fit on the device, or None."""
    shape = model_shape(task)

    def check(variant: Variant, device: dict) -> str | None:
        on_cuda = str(device.get("device", "")).startswith("cuda")
        available = ((device.get("gpu_memory_gb") if on_cuda else device.get("memory_gb")) or 0) * GB
        precision = ("bf16" if device.get("bf16") else "mixed") if on_cuda else "fp32"
        if shape is None or variant.strategy not in FINE_TUNING or not available:
            return None
        peak = _predict(shape, variant.strategy, variant.params, precision)
        if peak <= available:
            return None
        fits = _what_would_fit(shape, variant.strategy, variant.params, precision, available)
        where = device.get("gpu") or "this machine"
        return (f"out of memory (predicted before training): {variant.strategy} of {shape.name} needs about "
                f"{peak / GB:.1f} GB at batch {variant.params.get('batch_size')} x {variant.params.get('max_seq_len')} "
                f"tokens, {where} has {available / GB:.1f} GB; would fit: {'; '.join(fits) or 'a smaller model'}")

    return check
