"""Model shapes from data/catalog/models.yaml, their parameter counts, and LoRA's trainable parameters.

Every model in the catalog is a pre-norm decoder (Llama, Qwen2, Mistral): per layer an attention block
(q, k, v, o projections, grouped-query K/V) and a SwiGLU MLP (gate, up, down), each preceded by an
RMSNorm; an input embedding, a final RMSNorm and an lm_head that may share the embedding matrix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness import catalog
from harness.errors import UserError
from harness.schema import closest

# The linear layers of a decoder block, by their Hugging Face module names (what LoRA targets).
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")  # the harness's lora default


@dataclass(frozen=True)
class ModelShape:
    name: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool
    attention_bias: bool = False
    published_params: int | None = None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def kv_dim(self) -> int:
        """Width of the K (and of the V) projection: kv heads x head_dim (< hidden_size under GQA)."""
        return self.num_key_value_heads * self.head_dim

    def linear_dims(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of each linear layer in one block."""
        h, kv, i = self.hidden_size, self.kv_dim, self.intermediate_size
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @classmethod
    def from_catalog(cls, name: str, *, where: str = "model") -> "ModelShape":
        entry = catalog.model_entry(name, where=where)
        return cls(**{field: entry[field] for field in cls.__dataclass_fields__ if field in entry})


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by where they sit; ``total`` is what a checkpoint holds."""

    embedding: int
    attention: int      # all layers
    mlp: int            # all layers
    norms: int          # all RMSNorm weights, final norm included
    lm_head: int        # 0 when tied to the embedding

    @property
    def total(self) -> int:
        return self.embedding + self.attention + self.mlp + self.norms + self.lm_head

    @property
    def block_linear(self) -> int:
        """The q/k/v/o and MLP weight matrices: what QLoRA stores in 4 bits."""
        return self.attention + self.mlp

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def param_counts(shape: ModelShape) -> ParamCounts:
    h, kv, i, L, V = shape.hidden_size, shape.kv_dim, shape.intermediate_size, shape.num_layers, shape.vocab_size
    attention_per_layer = h * h + 2 * h * kv + h * h                  # q, k, v, o weights
    if shape.attention_bias:
        attention_per_layer += h + 2 * kv                             # q, k, v biases (Qwen2); o has none
    return ParamCounts(
        embedding=V * h,
        attention=L * attention_per_layer,
        mlp=L * 3 * h * i,                                            # gate, up (h x i) and down (i x h)
        norms=L * 2 * h + h,                                          # 2 RMSNorms per layer + the final one
        lm_head=0 if shape.tie_word_embeddings else V * h,
    )


def lora_params(d_in: int, d_out: int, rank: int) -> int:
    """LoRA adds B (d_out x r) and A (r x d_in) beside a frozen d_out x d_in weight: r * (d_in + d_out)."""
    return rank * (d_in + d_out)


def check_lora_targets(targets: list[str] | tuple[str, ...], *, where: str = "lora target_modules") -> tuple[str, ...]:
    """Module names as peft takes them; ['all-linear'] means every linear layer of the blocks."""
    if list(targets) == ["all-linear"]:
        return LINEAR_MODULES
    for name in targets:
        if name not in LINEAR_MODULES:
            raise UserError(f"{where}: unknown module '{name}'{closest(name, LINEAR_MODULES)}; "
                            f"choose from: {', '.join(LINEAR_MODULES)} or all-linear")
    if not targets:
        raise UserError(f"{where}: no module listed; name at least one of: {', '.join(LINEAR_MODULES)}")
    return tuple(targets)


def lora_trainable_params(shape: ModelShape, rank: int, targets=DEFAULT_LORA_TARGETS) -> int:
    dims = shape.linear_dims()
    return shape.num_layers * sum(lora_params(*dims[name], rank) for name in check_lora_targets(targets))
