"""Catalog parameter counts within 1% of the published ones, and the shapes whose head_dim is not hidden / heads
(Gemma-2) or that carry 4 RMSNorms a layer."""

from __future__ import annotations

import pytest

from advisor.costs.shapes import ModelShape, param_counts
from harness import catalog
from harness.typedjson import from_jsonable


@pytest.mark.parametrize("name", list(catalog.models()))
def test_computed_params_within_1_percent_of_published(name):
    shape = ModelShape.from_catalog(name)
    assert shape.published_params, f"{name}: models.yaml entry has no published_params"
    assert abs(param_counts(shape).total / shape.published_params - 1) < 0.01


@pytest.mark.parametrize("name", [n for n in catalog.models() if "head_dim" not in catalog.models()[n]])
def test_head_dim_defaults_to_hidden_over_heads(name):
    shape = ModelShape.from_catalog(name)
    assert shape.head_dim == shape.hidden_size // shape.num_attention_heads
    assert shape.q_dim == shape.hidden_size
    assert shape.norms_per_layer == 2


def test_gemma_2_9b_head_dim_is_not_hidden_over_heads():
    # google/gemma-2-9b config.json: hidden_size 3584, 16 heads, 8 KV heads, head_dim 256 (3584 / 16 = 224)
    shape = ModelShape.from_catalog("gemma-2-9b")
    assert (shape.head_dim, shape.q_dim, shape.kv_dim) == (256, 4096, 2048)
    dims = shape.linear_dims()
    assert dims["q_proj"] == (3584, 4096)
    assert dims["o_proj"] == (4096, 3584)
    assert dims["k_proj"] == dims["v_proj"] == (3584, 2048)


def test_gemma_2_9b_counts_by_part():
    # 42 layers x 4 RMSNorms x 3584 + the final one; tied embeddings (no lm_head); total = the safetensors total
    counts = param_counts(ModelShape.from_catalog("gemma-2-9b"))
    assert counts.norms == 42 * 4 * 3584 + 3584
    assert counts.attention == 42 * (3584 * 4096 * 2 + 2 * 3584 * 2048)
    assert counts.lm_head == 0
    assert counts.total == 9_241_705_984


def test_from_hf_config_reads_head_dim_and_gemma2_norms():
    config = {
        "model_type": "gemma2",
        "num_hidden_layers": 46,
        "hidden_size": 4608,
        "intermediate_size": 36864,
        "num_attention_heads": 32,
        "num_key_value_heads": 16,
        "head_dim": 128,
        "vocab_size": 256000,
        "tie_word_embeddings": True,
    }
    shape = ModelShape.from_hf_config("gemma-2-27b", config)
    assert (shape.head_dim, shape.norms_per_layer) == (128, 4)
    assert param_counts(shape).total == ModelShape.from_catalog("gemma-2-27b").published_params


def test_llama_config_without_head_dim_keeps_the_derived_one():
    config = {
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_attention_heads": 32,
        "vocab_size": 32000,
    }
    shape = ModelShape.from_hf_config("llama-2-7b", config)
    assert (shape.head_dim, shape.norms_per_layer, shape.num_key_value_heads) == (128, 2, 32)
    assert param_counts(shape).total == ModelShape.from_catalog("llama-2-7b").published_params


def test_record_written_before_head_dim_existed_reads_back():
    # runs/*.json written before head_dim / norms_per_layer: the fields take their defaults
    old = {
        "name": "m",
        "num_layers": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 100,
        "tie_word_embeddings": True,
    }
    shape = from_jsonable(ModelShape, old)
    assert (shape.head_dim, shape.kv_dim, shape.norms_per_layer) == (16, 32, 2)
