"""The memory model: bytes per parameter, and predicted peaks against peaks others measured and published."""

from __future__ import annotations

import pytest

from advisor.costs.inference_memory import inference_memory, kv_cache_bytes_per_token
from advisor.costs.memory import NF4_BYTES_PER_PARAM, PRECISIONS, training_memory
from advisor.costs.settings import TrainingSettings, split_settings
from advisor.costs.shapes import ModelShape, param_counts

GB = 1e9
LITGPT_RESOURCE_TABLES = (
    "https://github.com/Lightning-AI/litgpt/blob/4839345a97a0a90bc5f2361664b04d665c9a0e89/tutorials/resource-tables.md"
)
LITGPT_CONFIG_HUB = (
    "https://github.com/Lightning-AI/litgpt/blob/03ffc5515b251fb7e3a461efd0e3c163e45b6b3b/config_hub/finetune/README.md"
)
PEFT_METAMATHQA = (
    "https://github.com/huggingface/peft/blob/0a179c1e8659ab4f7df0369b9b03943cfe470ff1/"
    "method_comparison/MetaMathQA/results/"
)


def test_mixed_precision_adam_is_16_bytes_per_parameter():
    # ZeRO (Rajbhandari et al. 2020, sec. 3.1): "mixed precision training of a model with Psi parameters ...
    # requires enough memory to hold an fp16 copy of the parameters and the gradients, with memory
    # requirements of 2Psi and 2Psi bytes respectively ... Adam optimizer states (fp32 copy of the parameters,
    # momentum and variance) ... 4Psi + 4Psi + 4Psi ... in total 16Psi bytes"
    assert PRECISIONS["mixed"].trained_param == 16
    shape = ModelShape.from_catalog("llama-3.1-8b")
    memory = training_memory(shape, "full", batch_size=1, seq_len=1, precision="mixed")
    assert (
        memory.weights + memory.gradients + memory.master_weights + memory.optimizer_states
        == 16 * param_counts(shape).total
    )


def test_nf4_bits_per_parameter():
    # QLoRA (Dettmers et al. 2023, sec. 3): blocksize 64 with 32-bit constants adds 32/64 = 0.5 bits per
    # parameter; double quantization brings it to 8/64 + 32/(64*256) = 0.127 bits
    assert NF4_BYTES_PER_PARAM["nf4"] * 8 == pytest.approx(4.5)
    assert NF4_BYTES_PER_PARAM["nf4-dq"] * 8 == pytest.approx(4.127, abs=5e-4)


# Peak memory measured by others on real fine-tuning runs: (what, model, method, settings, measured bytes, source).
# "seq_len" is the padded length of the longest batch, where the peak happens.
PUBLISHED_PEAKS = [
    # LitGPT resource tables (A100-SXM4-40GB, bf16-true, Alpaca, whose longest example is 1,304 Llama 2 tokens;
    # finetune/lora.py defaults r=8, alpha 16, dropout 0.05 on query and value): "Max GPU RAM"
    (
        "LitGPT Llama 2 7B LoRA, micro-batch 1",
        "llama-2-7b",
        "lora",
        dict(batch_size=1, seq_len=1304, precision="bf16", rank=8, lora_targets=("q_proj", "v_proj")),
        21.30 * GB,
        LITGPT_RESOURCE_TABLES,
    ),
    (
        "LitGPT Llama 2 7B LoRA, micro-batch 2",
        "llama-2-7b",
        "lora",
        dict(batch_size=2, seq_len=1304, precision="bf16", rank=8, lora_targets=("q_proj", "v_proj")),
        29.07 * GB,
        LITGPT_RESOURCE_TABLES,
    ),
    (
        "LitGPT Llama 2 7B QLoRA bnb.nf4, micro-batch 1",
        "llama-2-7b",
        "qlora",
        dict(
            batch_size=1,
            seq_len=1304,
            precision="bf16",
            rank=8,
            lora_targets=("q_proj", "v_proj"),
            quantization="nf4",
            gradient_checkpointing=False,  # LitGPT's finetune scripts do not recompute (QLoRA's default here does)
        ),
        14.14 * GB,
        LITGPT_RESOURCE_TABLES,
    ),
    (
        "LitGPT Llama 2 7B QLoRA bnb.nf4-dq, micro-batch 1",
        "llama-2-7b",
        "qlora",
        dict(
            batch_size=1,
            seq_len=1304,
            precision="bf16",
            rank=8,
            lora_targets=("q_proj", "v_proj"),
            quantization="nf4-dq",
            gradient_checkpointing=False,
        ),
        13.84 * GB,
        LITGPT_RESOURCE_TABLES,
    ),
    # LitGPT config hub (1x A10G, bf16-true, Alpaca 2k capped at 512 tokens; configs llama-3.1-8b/lora.yaml and
    # qlora.yaml: r=32 on query and value, dropout 0.05; tiny-llama/full.yaml: AdamW): "Peak memory"
    (
        "LitGPT Llama 3.1 8B LoRA r=32, micro-batch 1",
        "llama-3.1-8b",
        "lora",
        dict(batch_size=1, seq_len=512, precision="bf16", rank=32, lora_targets=("q_proj", "v_proj")),
        19.73 * GB,
        LITGPT_CONFIG_HUB,
    ),
    (
        "LitGPT Llama 3.1 8B QLoRA nf4 r=32, micro-batch 2",
        "llama-3.1-8b",
        "qlora",
        dict(
            batch_size=2,
            seq_len=512,
            precision="bf16",
            rank=32,
            lora_targets=("q_proj", "v_proj"),
            quantization="nf4",
            gradient_checkpointing=False,
        ),
        17.41 * GB,
        LITGPT_CONFIG_HUB,
    ),
    (
        "LitGPT TinyLlama 1.1B full, micro-batch 4",
        "tinyllama-1.1b-chat",
        "full",
        dict(batch_size=4, seq_len=512, precision="bf16"),
        14.10 * GB,
        LITGPT_CONFIG_HUB,
    ),
    # PEFT's MetaMathQA benchmark (1x L40S, transformers + peft, model in bf16, torch AdamW, no AMP, batch 4,
    # max_seq_length 768; the longest batch is at most 4 x 768 tokens): "cuda_memory_max"
    (
        "PEFT Llama-3.2-3B full fine-tuning, batch 4",
        "llama-3.2-3b",
        "full",
        dict(batch_size=4, seq_len=768, precision="bf16"),
        37_241_225_216,
        PEFT_METAMATHQA + "full-finetuning--llama-3.2-3B-lr_0.00001.json",
    ),
    (
        "PEFT Llama-3.2-3B LoRA r=32 on q,v, batch 4",
        "llama-3.2-3b",
        "lora",
        dict(batch_size=4, seq_len=768, precision="bf16", rank=32, lora_targets=("q_proj", "v_proj"), lora_dropout=0.0),
        22_273_851_392,
        PEFT_METAMATHQA + "lora--llama-3.2-3B-rank32.json",
    ),
]


@pytest.mark.parametrize(
    "what, model, method, settings, measured, source", PUBLISHED_PEAKS, ids=[case[0] for case in PUBLISHED_PEAKS]
)
def test_predicted_peak_within_25_percent_of_published_measurement(what, model, method, settings, measured, source):
    kwargs, recipe = split_settings(settings)
    predicted = training_memory(ModelShape.from_catalog(model), method, settings=recipe, **kwargs).peak
    assert 0.75 <= predicted / measured <= 1.25, (
        f"{what}: predicted {predicted / GB:.2f} GB, measured {measured / GB:.2f} GB ({source})"
    )


def test_every_fine_tuning_method_is_validated():
    assert {case[2] for case in PUBLISHED_PEAKS} == {"lora", "qlora", "full"}


def test_memory_savers_save_memory():
    shape = ModelShape.from_catalog("llama-3.1-8b")
    base = dict(batch_size=8, seq_len=512, precision="bf16")
    lora = training_memory(shape, "lora", **base)
    assert training_memory(shape, "lora", **base, gradient_checkpointing=True).peak < lora.peak
    assert training_memory(shape, "qlora", **base).peak < lora.peak < training_memory(shape, "full", **base).peak
    assert (
        training_memory(shape, "qlora", **base, settings=TrainingSettings(quantization="nf4-dq")).weights
        < training_memory(shape, "qlora", **base, settings=TrainingSettings(quantization="nf4")).weights
    )


def test_activations_scale_with_tokens_and_logits_with_vocab():
    shape = ModelShape.from_catalog("qwen2.5-0.5b")
    one = training_memory(shape, "full", batch_size=1, seq_len=256, precision="bf16")
    four = training_memory(shape, "full", batch_size=4, seq_len=256, precision="bf16")
    assert four.activations == 4 * one.activations
    # 16-bit logits kept by the model output + fp32 log-softmax output + two fp32 gradients in the backward
    assert one.logits_and_loss == 256 * shape.vocab_size * (2 + 12)


def test_kv_cache_of_llama_3_1_8b():
    # 32 layers x (K + V) x 8 KV heads x 128 dims x 2 bytes = 131,072 bytes per token (GQA)
    shape = ModelShape.from_catalog("llama-3.1-8b")
    assert kv_cache_bytes_per_token(shape) == 131_072
    memory = inference_memory(shape, batch_size=4, prompt_tokens=1000, output_tokens=24)
    assert memory.kv_cache == 4 * 1024 * 131_072
    assert memory.weights == 2 * param_counts(shape).total


def test_activations_match_what_autograd_saves_in_the_harness_on_cpu():
    # bench/README.md (2026-11-23): tensors autograd saved per token per decoder layer, SmolLM2-135M in fp32
    # through transformers 5.23 + torch 2.13 CPU, counted once per storage: 44,588 B full fine-tuning,
    # 47,788 B LoRA r=8 on q,k,v,o with dropout 0.05 (peft 0.21)
    shape = ModelShape.from_catalog("smollm2-135m-instruct")
    full = training_memory(shape, "full", batch_size=1, seq_len=1, precision="fp32")
    qkvo = ("q_proj", "k_proj", "v_proj", "o_proj")
    lora = training_memory(shape, "lora", batch_size=1, seq_len=1, precision="fp32", lora_targets=qkvo)
    assert full.activations / shape.num_layers == pytest.approx(44_588, rel=0.002)
    assert lora.activations / shape.num_layers == pytest.approx(47_788, rel=0.002)


def test_harness_settings_logits_window_and_fused_adamw():
    shape = ModelShape.from_catalog("smollm2-135m-instruct")
    foreach = TrainingSettings(optimizer="adamw")
    every = training_memory(shape, "full", batch_size=8, seq_len=256, precision="fp32", settings=foreach)
    window = training_memory(  # the defaults: fused AdamW, as the Trainer
        shape, "full", batch_size=8, seq_len=256, precision="fp32", loss_tokens_per_sequence=7
    )
    assert every.logits_and_loss == 8 * 256 * shape.vocab_size * (4 + 12)
    assert window.logits_and_loss == 8 * 7 * shape.vocab_size * (4 + 12)
    assert every.optimizer_step_temporaries == 4 * param_counts(shape).total  # foreach AdamW's sqrt(v)
    assert window.optimizer_step_temporaries == 0


# ---- LoRA targets and rank, as the API checks them (advisor estimate checks them the same way) ----------------


def test_duplicate_targets_count_once_in_order():
    from advisor.costs.shapes import check_lora_targets as lora_target_modules
    from advisor.costs.training import estimate_training

    assert lora_target_modules(["q_proj", "v_proj", "q_proj"]) == ("q_proj", "v_proj")
    assert lora_target_modules("v_proj, q_proj,v_proj") == ("v_proj", "q_proj")
    shape = ModelShape.from_catalog("llama-3.1-8b")
    once = training_memory(shape, "lora", batch_size=1, seq_len=64, lora_targets=("q_proj",))
    twice = training_memory(shape, "lora", batch_size=1, seq_len=64, lora_targets=("q_proj", "q_proj"))
    assert twice == once
    estimate = estimate_training("llama-3.1-8b", "lora", "a10g", 10, 64, 1, 1, lora_targets=("q_proj", "q_proj"))
    assert estimate.trainable_params == 32 * 8 * (4096 + 4096) == 2_097_152
    assert estimate.lora_targets == ("q_proj",)


def test_all_linear_inside_a_list_means_every_linear_module():
    from advisor.costs.shapes import LINEAR_MODULES
    from advisor.costs.shapes import check_lora_targets as lora_target_modules
    from harness.errors import UserError

    assert lora_target_modules(["all-linear", "q_proj"]) == LINEAR_MODULES
    assert lora_target_modules(["q_proj", "all-linear"]) == LINEAR_MODULES
    shape = ModelShape.from_catalog("llama-3.2-1b")
    every = training_memory(shape, "qlora", batch_size=1, seq_len=64, lora_targets=["all-linear"])
    assert training_memory(shape, "qlora", batch_size=1, seq_len=64, lora_targets=["all-linear", "q_proj"]) == every
    with pytest.raises(UserError, match="q_prj"):  # a typo beside all-linear still fails
        lora_target_modules(["all-linear", "q_prj"])
    with pytest.raises(UserError, match="no module"):
        lora_target_modules([])


@pytest.mark.parametrize("rank", [0, -3, 1024, 100_000])
def test_rank_must_be_low_rank_for_every_adapted_matrix(rank):
    from advisor.costs.training import estimate_training
    from harness.errors import UserError

    # llama-3.1-8b's k_proj and v_proj are 1024 x 4096 (GQA): a rank of 1024 or more is not low-rank there
    shape = ModelShape.from_catalog("llama-3.1-8b")
    with pytest.raises(UserError, match=r"^rank: ") as err:
        training_memory(shape, "lora", batch_size=1, seq_len=64, rank=rank)
    assert "\n" not in str(err.value)
    if rank > 0:
        assert "1023" in str(err.value)
    with pytest.raises(UserError, match=r"^rank: "):
        estimate_training(shape, "qlora", "a10g", 10, 64, 1, 1, rank=rank)


def test_the_rank_limit_is_the_smallest_dimension_of_the_adapted_matrices():
    shape = ModelShape.from_catalog("llama-3.1-8b")
    # q_proj alone is 4096 x 4096: rank 1023 and 4095 are fine there, 1023 with k_proj too
    training_memory(shape, "lora", batch_size=1, seq_len=8, rank=4095, lora_targets=("q_proj",))
    training_memory(shape, "lora", batch_size=1, seq_len=8, rank=1023, lora_targets=("q_proj", "k_proj"))
    # full fine-tuning has no adapters, so no rank to check
    training_memory(shape, "full", batch_size=1, seq_len=8, rank=100_000)


# ---- defaults: what the harness does ----------------------------------------------------------------------------


def test_default_precision_is_what_the_harness_trains_in():
    from advisor.costs.memory import default_precision
    from harness import catalog

    gpus = catalog.gpus()
    for name, device in gpus.items():
        expected = "bf16" if device["kind"] == "gpu" and device.get("supports_bf16") else "fp32"
        assert default_precision(device) == expected, name
    assert default_precision(gpus["a10g"]) == "bf16"
    assert default_precision(gpus["cpu-2core"]) == "fp32"  # the harness trains in fp32 on CPUs, bf16 or not
    assert default_precision({"kind": "gpu", "supports_bf16": False}) == "fp32"  # e.g. a T4 or V100
    # the harness's bf16: bf16 weights and gradients, torch AdamW's m and v in bf16, no fp32 master copy
    assert PRECISIONS["bf16"].trained_param == 8 and PRECISIONS["bf16"].master_weight == 0


def test_default_gradient_checkpointing_and_quantization_are_the_harness_strategies():
    from advisor.costs.memory import default_gradient_checkpointing
    from advisor.costs.settings import DEFAULT_QUANTIZATION
    from harness.strategies import STRATEGIES, traits
    from harness.strategies.qlora import QloraConfig

    for name, strategy in STRATEGIES.items():
        method = traits(name).memory_method
        if method:
            assert strategy.config_type().gradient_checkpointing is default_gradient_checkpointing(method), name
    assert default_gradient_checkpointing("qlora") is True
    assert default_gradient_checkpointing("lora") is False and default_gradient_checkpointing("full") is False
    assert QloraConfig(rank=8).memory_settings()["quantization"] == DEFAULT_QUANTIZATION
    shape = ModelShape.from_catalog("llama-3.1-8b")
    default = training_memory(shape, "qlora", batch_size=1, seq_len=512)
    assert default == training_memory(shape, "qlora", batch_size=1, seq_len=512, gradient_checkpointing=True)
    assert (
        default.activations
        < training_memory(shape, "qlora", batch_size=1, seq_len=512, gradient_checkpointing=False).activations
    )
