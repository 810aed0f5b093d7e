"""Memory of a serving replica: weights in the served precision, the KV cache of the requests decoded together, and
working memory, itemised in bytes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from advisor.costs.memory import check_precision, layer_activation_bytes
from advisor.costs.settings import ServingSettings
from advisor.costs.shapes import ModelShape, param_counts

# Bytes per weight of the blocks' linear layers as served (embeddings, norms and the lm_head stay 16-bit, as in
# AWQ/GPTQ checkpoints and TensorRT-LLM's FP8 recipes):
#   fp8:  1 byte per weight, one fp32 scale per tensor (negligible);
#   int4: 4 bits + one fp16 scale and one fp16 zero point per group of 128 weights (AWQ / GPTQ's q_group_size 128):
#         (4 + 32 / 128) / 8 bytes.
QUANTIZED_WEIGHT_BYTES = {"fp8": 1.0, "int4": (4 + 32 / 128) / 8}
KV_ELEMENT_BYTES = {"fp8": 1.0}  # bf16: the serving precision's activation bytes


@dataclass(frozen=True)
class InferenceMemory:
    """Bytes of a serving replica: weights, KV cache of the concurrent requests, working memory."""

    weights: float
    kv_cache: float
    prefill_activations: float  # one prompt through one layer: prefill is scheduled a few requests at a time
    logits: float  # fp32 last-position logits of every running request

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.prefill_activations + self.logits

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def serving_precision(device: dict[str, Any]) -> str:
    """Weights and KV cache in bf16 on GPUs; fp32 on CPUs (what the harness does there)."""
    return "fp32" if device["kind"] == "cpu" else "bf16"


def kv_cache_bytes_per_token(
    shape: ModelShape, precision: str = "bf16", settings: ServingSettings = ServingSettings()
) -> float:
    """K and V of every layer for one token: layers x 2 x kv width x bytes per element."""
    element = KV_ELEMENT_BYTES.get(settings.kv_cache_dtype, check_precision(precision).activation)
    return shape.num_layers * 2 * shape.kv_dim * element


def served_weight_bytes(
    shape: ModelShape, precision: str = "bf16", settings: ServingSettings = ServingSettings()
) -> float:
    """The weights as served: the blocks' linear layers in ``settings.weight_precision``, the rest 16-bit."""
    counts = param_counts(shape)
    frozen = check_precision(precision).frozen_weight
    if settings.weight_precision not in QUANTIZED_WEIGHT_BYTES:
        return counts.total * frozen
    return (
        counts.block_linear * QUANTIZED_WEIGHT_BYTES[settings.weight_precision]
        + (counts.total - counts.block_linear) * frozen
    )


def inference_memory(
    shape: ModelShape,
    *,
    batch_size: int,
    prompt_tokens: int,
    output_tokens: int,
    precision: str = "bf16",
    settings: ServingSettings = ServingSettings(),
) -> InferenceMemory:
    """A model (LoRA/QLoRA adapters merged into it) serving ``batch_size`` requests at once; 16-bit on GPUs unless
    ``settings`` quantise the weights or the KV cache."""
    p = check_precision(precision)
    return InferenceMemory(
        weights=served_weight_bytes(shape, precision, settings),
        kv_cache=batch_size * (prompt_tokens + output_tokens) * kv_cache_bytes_per_token(shape, precision, settings),
        prefill_activations=prompt_tokens * layer_activation_bytes(shape, p, norms_trained=False, linear_inputs=False),
        logits=batch_size * shape.vocab_size * 4,
    )
