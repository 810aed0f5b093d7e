"""A decoder model's architecture numbers (``ModelShape``), from one of two places: the catalog
(data/catalog/models.yaml) or a Hugging Face config (a loaded model's, or a local folder's config.json).

Every model the cost models price is a pre-norm decoder (Llama, Qwen2, Mistral, Phi-3, Gemma-2): per layer an
attention block (q, k, v, o projections, grouped-query K/V) and a gated MLP (gate, up, down: SwiGLU, or GeGLU for
Gemma-2), each preceded by an RMSNorm (Gemma-2 also normalises each block's output: 4 RMSNorms a layer); an input
embedding, a final RMSNorm and an lm_head that may share the embedding matrix. Phi-3 fuses q/k/v and gate/up into
single matrices of the same total size, so its counts are the same as if they were separate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness import catalog
from harness.errors import UserError

# The linear layers of a decoder block, by their Hugging Face module names (what LoRA targets).
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# The output layer (vocab x hidden): LoRA may adapt it too, once for the model (peft's 'all-linear' leaves it out)
HEAD_MODULE = "lm_head"


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
    # Width of one attention head; 0 (the default) means hidden_size // num_attention_heads, what every Llama,
    # Qwen2 and Mistral model has. Gemma-2 sets it apart from that (9B: 256, not 3584 / 16 = 224).
    head_dim: int = 0
    # RMSNorms in one decoder layer: 2 (before attention, before the MLP), 4 for Gemma-2 (also after each).
    norms_per_layer: int = 2
    # Mixture of experts (Mixtral): each layer's MLP is num_local_experts gated MLPs and a router; a token goes
    # through num_experts_per_tok of them. 1 and 1: a dense model.
    num_local_experts: int = 1
    num_experts_per_tok: int = 1

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)

    @property
    def q_dim(self) -> int:
        """Width of the Q projection's output and o_proj's input: heads x head_dim (= hidden_size unless head_dim
        is set apart from it, as for Gemma-2)."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the K (and of the V) projection: kv heads x head_dim (< hidden_size under GQA)."""
        return self.num_key_value_heads * self.head_dim

    def linear_dims(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of each linear layer in one block."""
        h, q, kv, i = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def adaptable_dims(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of every module LoRA can adapt: each block's linear layers, and the lm_head (once)."""
        return {**self.linear_dims(), HEAD_MODULE: (self.hidden_size, self.vocab_size)}

    @classmethod
    def from_catalog(cls, name: str, *, where: str = "model") -> ModelShape:
        """The models.yaml entry for a catalog name or its Hugging Face id."""
        entry = catalog.model_entry(name, where=where)
        return cls(**{f.name: entry[f.name] for f in fields(cls) if f.name in entry})

    @classmethod
    def from_hf_config(cls, name: str, config: dict[str, Any]) -> ModelShape:
        """From a Hugging Face config: ``model.config.to_dict()`` or a config.json."""
        heads = config["num_attention_heads"]
        return cls(
            name=name,
            num_layers=config["num_hidden_layers"],
            hidden_size=config["hidden_size"],
            intermediate_size=config["intermediate_size"],
            num_attention_heads=heads,
            num_key_value_heads=config.get("num_key_value_heads") or heads,
            vocab_size=config["vocab_size"],
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            attention_bias=bool(config.get("attention_bias", False)),
            head_dim=config.get("head_dim") or 0,
            norms_per_layer=4 if config.get("model_type") == "gemma2" else 2,
            num_local_experts=config.get("num_local_experts") or 1,
            num_experts_per_tok=config.get("num_experts_per_tok") or 1,
        )

    @classmethod
    def of_model(cls, ref: catalog.ModelRef) -> ModelShape | None:
        """A model's shape without loading it: its catalog entry, else its local config.json; None for a hub id
        that is not in the catalog (its shape is known once it is loaded)."""
        if ref.catalog_name:
            return cls.from_catalog(ref.catalog_name)
        config_path = Path(ref.location) / "config.json"
        if ref.source != "local" or not config_path.exists():
            return None
        try:
            return cls.from_hf_config(ref.name, json.loads(config_path.read_text(encoding="utf-8")))
        except (KeyError, json.JSONDecodeError) as err:
            raise UserError(
                f"{config_path}: not a decoder config the cost models know ({err}); "
                f"use a Llama-, Qwen2- or Mistral-style model"
            ) from None
