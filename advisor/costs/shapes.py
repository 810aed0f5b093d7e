"""Parameter counts of a model shape (``harness.shapes.ModelShape``: catalog entry or Hugging Face config), and
LoRA's trainable parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.errors import UserError
from harness.schema import closest
from harness.shapes import LINEAR_MODULES, ModelShape
from harness.strategies.lora import DEFAULT_TARGET_MODULES

__all__ = [
    "LINEAR_MODULES",
    "ModelShape",
    "ParamCounts",
    "check_lora_targets",
    "lora_params",
    "lora_trainable_params",
    "param_counts",
]


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by where they sit; ``total`` is what a checkpoint holds."""

    embedding: int
    attention: int  # all layers
    mlp: int  # all layers
    norms: int  # all RMSNorm weights, final norm included
    lm_head: int  # 0 when tied to the embedding

    @property
    def total(self) -> int:
        return self.embedding + self.attention + self.mlp + self.norms + self.lm_head

    @property
    def block_linear(self) -> int:
        """The q/k/v/o and MLP weight matrices: what QLoRA stores in 4 bits."""
        return self.attention + self.mlp

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def param_counts(shape: ModelShape) -> ParamCounts:
    h, q, kv, i = shape.hidden_size, shape.q_dim, shape.kv_dim, shape.intermediate_size
    L, V = shape.num_layers, shape.vocab_size
    attention_per_layer = h * q + 2 * h * kv + q * h  # q, k, v, o weights (q = h unless head_dim is set apart)
    if shape.attention_bias:
        attention_per_layer += q + 2 * kv  # q, k, v biases (Qwen2); o has none
    return ParamCounts(
        embedding=V * h,
        attention=L * attention_per_layer,
        mlp=L * 3 * h * i,  # gate, up (h x i) and down (i x h)
        norms=L * shape.norms_per_layer * h + h,  # RMSNorms per layer (2; Gemma-2: 4) + the final one
        lm_head=0 if shape.tie_word_embeddings else V * h,
    )


def lora_params(d_in: int, d_out: int, rank: int) -> int:
    """LoRA adds B (d_out x r) and A (r x d_in) beside a frozen d_out x d_in weight: r * (d_in + d_out)."""
    return rank * (d_in + d_out)


def check_lora_targets(targets: str | Sequence[str], *, where: str = "lora target_modules") -> tuple[str, ...]:
    """The modules that get adapters, each once, in the order given: a comma-separated string or a list of peft's
    module names; 'all-linear' (alone or among others) means every linear layer of the blocks. Unknown names
    fail, also beside 'all-linear'."""
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else [str(t).strip() for t in targets]
    unique = list(dict.fromkeys(name for name in names if name))
    for name in unique:
        if name != "all-linear" and name not in LINEAR_MODULES:
            raise UserError(
                f"{where}: unknown module '{name}'{closest(name, LINEAR_MODULES)}; "
                f"choose from: {', '.join(LINEAR_MODULES)} or all-linear"
            )
    if not unique:
        raise UserError(f"{where}: no module listed; name at least one of: {', '.join(LINEAR_MODULES)}")
    return LINEAR_MODULES if "all-linear" in unique else tuple(unique)


def lora_trainable_params(shape: ModelShape, rank: int, targets: Sequence[str] = DEFAULT_TARGET_MODULES) -> int:
    dims = shape.linear_dims()
    return shape.num_layers * sum(lora_params(*dims[name], rank) for name in check_lora_targets(targets))
