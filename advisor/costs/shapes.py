"""Parameter counts of a model shape (``harness.shapes.ModelShape``: catalog entry or Hugging Face config), and
LoRA's trainable parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.errors import UserError
from harness.schema import closest
from harness.shapes import HEAD_MODULE, LINEAR_MODULES, ModelShape
from harness.strategies.lora import DEFAULT_TARGET_MODULES

MLP_MODULES = ("gate_proj", "up_proj", "down_proj")

__all__ = [
    "HEAD_MODULE",
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
    router: int = 0  # mixture of experts: each layer's router (hidden x experts)
    inactive_experts: int = 0  # mixture of experts: the MLP weights of the experts a token does not go through

    @property
    def total(self) -> int:
        return self.embedding + self.attention + self.mlp + self.norms + self.lm_head + self.router

    @property
    def active(self) -> int:
        """Parameters one token goes through (its FLOPs): all of them in a dense model; a MoE's top-k experts."""
        return self.total - self.inactive_experts

    @property
    def block_linear(self) -> int:
        """The q/k/v/o and MLP weight matrices: what QLoRA stores in 4 bits."""
        return self.attention + self.mlp

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "active": self.active}


def param_counts(shape: ModelShape) -> ParamCounts:
    h, q, kv, i = shape.hidden_size, shape.q_dim, shape.kv_dim, shape.intermediate_size
    L, V = shape.num_layers, shape.vocab_size
    attention_per_layer = h * q + 2 * h * kv + q * h  # q, k, v, o weights (q = h unless head_dim is set apart)
    if shape.attention_bias:
        attention_per_layer += q + 2 * kv  # q, k, v biases (Qwen2); o has none
    experts, used = shape.num_local_experts, shape.num_experts_per_tok
    return ParamCounts(
        embedding=V * h,
        attention=L * attention_per_layer,
        mlp=L * experts * 3 * h * i,  # gate, up (h x i) and down (i x h), per expert
        norms=L * shape.norms_per_layer * h + h,  # RMSNorms per layer (2; Gemma-2: 4) + the final one
        lm_head=0 if shape.tie_word_embeddings else V * h,
        router=L * h * experts if experts > 1 else 0,
        inactive_experts=L * (experts - used) * 3 * h * i,
    )


def lora_params(d_in: int, d_out: int, rank: int) -> int:
    """LoRA adds B (d_out x r) and A (r x d_in) beside a frozen d_out x d_in weight: r * (d_in + d_out)."""
    return rank * (d_in + d_out)


def check_lora_targets(targets: str | Sequence[str], *, where: str = "lora target_modules") -> tuple[str, ...]:
    """The modules that get adapters, each once, in the order given: a comma-separated string or a list of peft's
    module names; 'all-linear' (alone or among others) means every linear layer of the blocks, as in peft, which
    leaves the lm_head out unless it is named too. Unknown names fail, also beside 'all-linear'."""
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else [str(t).strip() for t in targets]
    unique = list(dict.fromkeys(name for name in names if name))
    known = (*LINEAR_MODULES, HEAD_MODULE)
    for name in unique:
        if name != "all-linear" and name not in known:
            raise UserError(
                f"{where}: unknown module '{name}'{closest(name, known)}; choose from: {', '.join(known)} or all-linear"
            )
    if not unique:
        raise UserError(f"{where}: no module listed; name at least one of: {', '.join(known)}")
    if "all-linear" in unique:
        return LINEAR_MODULES + ((HEAD_MODULE,) if HEAD_MODULE in unique else ())
    return tuple(unique)


def lora_trainable_params(shape: ModelShape, rank: int, targets: Sequence[str] = DEFAULT_TARGET_MODULES) -> int:
    """Adapters of every layer's adapted block modules (an MLP module of a mixture of experts once per expert),
    plus the lm_head's once when it is a target."""
    dims = shape.adaptable_dims()
    names = check_lora_targets(targets)
    per_layer = sum(
        lora_params(*dims[name], rank) * (shape.num_local_experts if name in MLP_MODULES else 1)
        for name in names
        if name != HEAD_MODULE
    )
    head = lora_params(*dims[HEAD_MODULE], rank) if HEAD_MODULE in names else 0
    return shape.num_layers * per_layer + head
