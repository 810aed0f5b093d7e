"""The recipe settings (advisor.costs.settings) change the estimate the way the frameworks that use them do."""

from __future__ import annotations

import pytest

from advisor.costs import ServingSettings, TrainingSettings, estimate_serving, estimate_training, training_memory
from advisor.costs.bands import DOES_NOT_FIT, FITS, MAY_NOT_FIT, Band, fit_verdict, truth_band
from advisor.costs.memory import ADAM_8BIT_BYTES_PER_PARAM, adapter_bytes_per_param
from advisor.costs.shapes import ModelShape, param_counts
from harness.errors import UserError

SHAPE = ModelShape.from_catalog("llama-3.2-3b")
BASE = dict(batch_size=2, seq_len=4096, precision="bf16")


def memory(method="full", **settings):
    return training_memory(SHAPE, method, **BASE, settings=TrainingSettings(**settings))


def test_optimizer_states_by_optimizer():
    n = param_counts(SHAPE).total
    assert memory(optimizer="adamw-fused").optimizer_states == 4 * n  # bf16 m and v
    assert memory(optimizer="adamw-8bit").optimizer_states == pytest.approx(ADAM_8BIT_BYTES_PER_PARAM * n)
    assert memory(optimizer="paged-adamw-8bit").optimizer_states == 0  # managed memory, off the device peak
    assert memory(optimizer="adamw").optimizer_step_temporaries == 2 * n  # foreach sqrt(v)
    assert memory(optimizer="adamw-fused").optimizer_step_temporaries == 0


def test_optimizer_in_backward_keeps_one_gradient_alive():
    full = memory()
    in_backward = memory(optimizer_in_backward=True)
    assert full.gradients == 2 * param_counts(SHAPE).total
    assert in_backward.gradients == 2 * SHAPE.vocab_size * SHAPE.hidden_size  # the largest parameter's
    short = dict(batch_size=1, seq_len=128, precision="bf16")  # few activations: the optimizer step is the peak
    stepped = training_memory(SHAPE, "full", **short, settings=TrainingSettings(optimizer_in_backward=True))
    assert stepped.peak < training_memory(SHAPE, "full", **short).peak


def test_chunked_loss_never_holds_the_whole_sequences_fp32_logits():
    full, chunked = memory(loss="full"), memory(loss="chunked")
    logits = 2 * 4096 * SHAPE.vocab_size
    assert full.logits_and_loss == logits * (2 + 12)
    assert chunked.logits_and_loss == pytest.approx(logits * (2 * 2 + 12 / 8))


def test_offload_compile_and_adapter_dtype_lower_memory():
    assert memory(activation_offload=True).activations < memory().activations
    assert memory(compile=True).activations < memory().activations
    assert adapter_bytes_per_param(TrainingSettings(adapter_dtype="bf16")) == 8
    assert adapter_bytes_per_param(TrainingSettings()) == 16
    assert memory("lora", adapter_dtype="bf16").lora_adapters < memory("lora").lora_adapters


def test_quantisations_of_the_qlora_base():
    nf4, nf4_dq, int8 = (memory("qlora", quantization=q).weights for q in ("nf4", "nf4-dq", "int8"))
    assert nf4_dq < nf4 < int8


def test_mean_length_packing_and_devices_in_time_and_memory():
    job = ("llama-3.1-8b", "full", "h100-sxm", 1000, 2048, 1, 4)
    every = estimate_training(*job)
    shorter = estimate_training(*job, settings=TrainingSettings(mean_seq_len=512))
    packed = estimate_training(*job, settings=TrainingSettings(mean_seq_len=512, packing=True))
    assert shorter.tokens == 1000 * 512 and shorter.memory.peak == every.memory.peak  # memory at the longest
    assert packed.compute_tokens == 1000 * 512 < shorter.compute_tokens  # unpacked batches compute on padding
    assert packed.gpu_hours < shorter.gpu_hours < every.gpu_hours
    eight = estimate_training(*job, settings=TrainingSettings(gpus=8))
    assert eight.gpus == 8 and eight.per_device_peak < every.per_device_peak


def test_fp8_needs_fp8_tensor_cores():
    fp8 = estimate_training("llama-3.1-8b", "lora", "h100-sxm", 1000, 512, 1, 4, settings=TrainingSettings(fp8=True))
    bf16 = estimate_training("llama-3.1-8b", "lora", "h100-sxm", 1000, 512, 1, 4)
    assert fp8.gpu_hours != bf16.gpu_hours
    with pytest.raises(UserError, match="FP8"):
        estimate_training("llama-3.1-8b", "lora", "a100-80gb", 1000, 512, 1, 4, settings=TrainingSettings(fp8=True))


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UserError, match="optimizer: unknown 'sgd'"):
        TrainingSettings(optimizer="sgd")
    with pytest.raises(UserError, match="gradient_accumulation"):
        TrainingSettings(gradient_accumulation=0)
    with pytest.raises(UserError, match="weight_precision"):
        ServingSettings(weight_precision="fp4")


def test_serving_settings_batch_tensor_parallel_and_precisions():
    plain = estimate_serving("llama-3.1-70b", "fine-tuned", "h100-sxm", 0)
    assert plain.gpus_per_replica == 2  # 141 GB of bf16 weights
    fp8 = estimate_serving(
        "llama-3.1-70b", "fine-tuned", "h100-sxm", 0, settings=ServingSettings(weight_precision="fp8")
    )
    assert fp8.memory.weights < plain.memory.weights / 1.9
    tp4 = estimate_serving("llama-3.1-70b", "fine-tuned", "h100-sxm", 0, settings=ServingSettings(tensor_parallel=4))
    assert tp4.gpus_per_replica == 4 and tp4.output_tokens_per_second > plain.output_tokens_per_second
    one = estimate_serving("llama-3.1-8b", "fine-tuned", "h100-sxm", 0, settings=ServingSettings(serving_batch=1))
    sixteen = estimate_serving("llama-3.1-8b", "fine-tuned", "h100-sxm", 0, settings=ServingSettings(serving_batch=16))
    assert one.batch == 1 and sixteen.output_tokens_per_second > one.output_tokens_per_second
    assert sixteen.ttft_seconds >= one.ttft_seconds  # a burst of 16 is prefilled before any decodes
    kv8 = estimate_serving("llama-3.1-8b", "fine-tuned", "h100-sxm", 0, settings=ServingSettings(kv_cache_dtype="fp8"))
    assert kv8.batch >= estimate_serving("llama-3.1-8b", "fine-tuned", "h100-sxm", 0).batch


def test_bands_and_the_fit_verdict():
    band = truth_band(10.0, "memory", "lora")
    assert band.low <= 10.0 * 1.5 and band.low < band.high
    assert fit_verdict(Band(5, 8, ""), usable=10) == FITS
    assert fit_verdict(Band(9, 12, ""), usable=10) == MAY_NOT_FIT
    assert fit_verdict(Band(11, 12, ""), usable=10) == DOES_NOT_FIT
