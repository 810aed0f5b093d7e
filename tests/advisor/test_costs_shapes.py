"""Parameter counts from catalog shapes, and LoRA's trainable parameters, against published counts."""

from __future__ import annotations

import pytest

from advisor.costs.shapes import ModelShape, lora_params, lora_trainable_params, param_counts
from harness import catalog
from harness.errors import UserError


@pytest.mark.parametrize("name", list(catalog.models()))
def test_param_count_from_shapes_equals_published(name):
    # published_params in data/catalog/models.yaml: the publishers' safetensors totals (sources per entry)
    shape = ModelShape.from_catalog(name)
    assert param_counts(shape).total == shape.published_params


def test_lora_rank_8_on_4096_square_matrix():
    # seed 000 (why fine-tuning is cheap): "A rank-8 update to a 4096x4096 matrix has 4096x8 + 8x4096 ≈ 65k
    # parameters instead of ~16.8M — about 256x fewer"
    assert lora_params(4096, 4096, 8) == 65_536
    assert 4096 * 4096 // lora_params(4096, 4096, 8) == 256


def test_lora_trainable_params_match_published_runs():
    # LitGPT resource tables, Llama 2 7B, LoRA r=8 on query and value: "Trainable parameters 4,194,304"
    # https://github.com/Lightning-AI/litgpt/blob/4839345a97a0a90bc5f2361664b04d665c9a0e89/tutorials/resource-tables.md
    assert lora_trainable_params(ModelShape.from_catalog("llama-2-7b"), 8, ("q_proj", "v_proj")) == 4_194_304
    # PEFT MetaMathQA benchmark, Llama-3.2-3B, LoRA r=32 on q_proj, v_proj: "num_trainable_params": 9175040
    # https://github.com/huggingface/peft/blob/0a179c1e8659ab4f7df0369b9b03943cfe470ff1/method_comparison/MetaMathQA/results/lora--llama-3.2-3B-rank32.json
    assert lora_trainable_params(ModelShape.from_catalog("llama-3.2-3b"), 32, ("q_proj", "v_proj")) == 9_175_040


def test_all_linear_covers_every_block_matrix():
    shape = ModelShape.from_catalog("llama-3.1-8b")
    per_module = [lora_trainable_params(shape, 16, (name,)) for name in shape.linear_dims()]
    assert lora_trainable_params(shape, 16, ["all-linear"]) == sum(per_module)


def test_unknown_lora_module_and_unknown_model_are_user_errors():
    with pytest.raises(UserError, match="did you mean 'q_proj'"):
        lora_trainable_params(ModelShape.from_catalog("llama-3.1-8b"), 8, ("q_prj",))
    with pytest.raises(UserError, match="did you mean 'llama-3.1-8b'.*choose one of"):
        ModelShape.from_catalog("llama-3-8b")


def test_hugging_face_id_resolves_to_its_catalog_shape():
    assert ModelShape.from_catalog("meta-llama/Llama-3.1-8B").name == "llama-3.1-8b"


def test_lora_targets_are_counted_once_and_all_linear_may_sit_among_others():
    from advisor.costs.shapes import LINEAR_MODULES, check_lora_targets

    assert check_lora_targets(["q_proj", "q_proj", "v_proj"]) == ("q_proj", "v_proj")
    assert check_lora_targets("all-linear, q_proj") == LINEAR_MODULES
    with pytest.raises(UserError, match="q_prj"):
        check_lora_targets(["all-linear", "q_prj"])


def test_mixtral_counts_all_experts_in_memory_and_the_active_ones_in_flops():
    from advisor.costs import estimate_training

    shape = ModelShape.from_catalog("mixtral-8x7b")
    counts = param_counts(shape)
    assert counts.total == shape.published_params == 46_702_792_704
    # the paper's 12.9B active: embeddings, attention, norms, routers and 2 of the 8 experts of each layer
    assert counts.active == counts.total - 32 * 6 * 3 * 4096 * 14336
    assert 12.8e9 < counts.active < 13.0e9
    estimate = estimate_training("mixtral-8x7b", "qlora", "h100-sxm", 100, 512, 1, 1)
    assert estimate.flops.forward == 2 * (counts.active + estimate.trainable_params) * estimate.tokens
    # 4-bit base: all 8 experts' matrices are stored
    assert estimate.memory.weights > counts.block_linear * 0.5


def test_lm_head_is_a_lora_target_once_for_the_model():
    from advisor.costs.shapes import check_lora_targets

    shape = ModelShape.from_catalog("llama-3.1-8b")
    head = lora_trainable_params(shape, 8, ("lm_head",))
    assert head == 8 * (4096 + 128_256)  # one (hidden -> vocab) matrix, not one per layer
    assert lora_trainable_params(shape, 8, ("q_proj", "lm_head")) == lora_trainable_params(shape, 8, ("q_proj",)) + head
    # peft's all-linear leaves the output layer out unless it is named too
    assert "lm_head" not in check_lora_targets("all-linear")
    assert check_lora_targets("all-linear,lm_head")[-1] == "lm_head"
