"""Training FLOPs, GPU-hours and dollars, and utilisation calibrated from measured runs."""

from __future__ import annotations

import dataclasses

import pytest

from advisor.costs import TrainingSettings, Utilisation, calibrate_utilisation, estimate_training, training_flops
from advisor.costs.compute import catalog_gpu_for, gpu_hours_usd, peak_flops
from harness import catalog
from harness.errors import UserError
from harness.record import Hardware
from harness.shapes import LINEAR_MODULES, ModelShape
from harness.steps import StepPlan
from tests.advisor.factories import make_record


def test_deepseek_v3_training_cost():
    # DeepSeek-V3 Technical Report (arXiv:2412.19437), Table 1: 2,788K H800 GPU hours in total; "assuming the
    # rental price of the H800 GPU is $2 per GPU hour, our total training costs amount to only $5.576M"
    assert gpu_hours_usd(2.788e6, 2.0) == pytest.approx(5.576e6)


def test_full_fine_tuning_is_6_n_t():
    # Kaplan et al. 2020 / Chinchilla: C = 6 N D
    n, t = 8_030_261_248, 1_000_000
    assert training_flops(n, n, t).total == 6 * n * t


def test_lora_skips_only_the_frozen_weight_gradients():
    n, adapters, t = 8_030_261_248, 6_815_744, 1_000_000
    flops = training_flops(n + adapters, adapters, t)
    assert flops.forward == 2 * (n + adapters) * t and flops.input_gradients == 2 * (n + adapters) * t
    assert flops.total == pytest.approx(4 * n * t, rel=0.005)  # two thirds of full fine-tuning, not 1 %
    assert training_flops(n, n, t, gradient_checkpointing=True).total == 8 * n * t  # forward recomputed


def test_the_lm_head_is_charged_only_where_its_logits_were_computed():
    n, head, t = 1_000, 300, 10_000
    everywhere = training_flops(n, n, t, lm_head_params=head, lm_head_tokens=None)
    assert everywhere.total == 6 * n * t
    window = training_flops(n, n, t, lm_head_params=head, lm_head_tokens=1_000, lm_head_trained=True)
    assert window.total == 6 * n * t - 6 * head * 9_000  # forward, input and weight gradient skipped
    frozen = training_flops(n, 10, t, lm_head_params=head, lm_head_tokens=1_000)
    assert frozen.total == (4 * n + 2 * 10) * t - 4 * head * 9_000  # LoRA: the head has no weight gradient


def test_measured_runs_use_the_recorded_lm_head_positions():
    from advisor.costs.compute import measured_training

    record = _record("full", device="cpu", tokens=10_000, trainable=135_000_000)
    plain = measured_training(record).flops
    record.run_info.model_shape = ModelShape("m", 1, 10, 10, 1, 1, vocab_size=100, tie_word_embeddings=True)
    record.train_info.lm_head_positions = 1_000
    assert measured_training(record).flops == pytest.approx(plain - 6 * 1_000 * 9_000)


def test_time_is_flops_over_peak_times_utilisation():
    estimate = estimate_training(
        "llama-3.1-8b", "full", "h100-sxm", 1000, 512, 1, 8, utilisation=Utilisation(0.5, "test")
    )
    h100 = catalog.gpus()["h100-sxm"]
    assert estimate.gpu_hours == pytest.approx(estimate.flops.total / (989.5e12 * 0.5) / 3600)
    assert estimate.flop_usd == pytest.approx(estimate.gpu_hours * h100["usd_per_hour"])
    assert estimate.usd == pytest.approx(estimate.flop_usd + estimate.fixed.usd)
    assert estimate.utilisation.source == "test"


def test_default_utilisation_is_the_catalog_curve_at_the_jobs_tokens_per_step():
    estimate = estimate_training("llama-3.2-1b", "lora", "a10g", 100, 256, 1, 4)
    entries = catalog.utilisation()["training"]
    u_max, half = entries["lora"]["u_max"], entries["tokens_half"]["value"]
    assert estimate.utilisation.value == pytest.approx(u_max * 1024 / (1024 + half))  # 4 x 256 tokens a step
    assert estimate.utilisation.source.startswith("curve:") and "utilisation.yaml" in estimate.utilisation.source
    bigger = estimate_training(
        "llama-3.2-1b", "lora", "a10g", 100, 256, 1, 4, settings=TrainingSettings(gradient_accumulation=8)
    )
    assert bigger.utilisation.value > estimate.utilisation.value  # more tokens per optimizer step
    compiled = estimate_training(
        "llama-3.2-1b", "lora", "a10g", 100, 256, 1, 4, settings=TrainingSettings(compile=True)
    )
    assert compiled.utilisation.value == pytest.approx(estimate.utilisation.value * entries["compile_factor"]["value"])


def _record(
    strategy,
    *,
    device,
    tokens=100_000,
    seconds=50.0,
    trainable=1_000_000,
    total=135_000_000,
    precision="fp32",
    gpu=None,
    checkpointing=False,
    status="ok",
    processes=1,
):
    record = make_record(
        strategy, "v", 0.5, trained=True, status=status, params={"gradient_checkpointing": checkpointing}
    )
    if status != "ok":
        return record
    record.train_info = dataclasses.replace(
        record.train_info,
        tokens_trained=tokens,
        train_seconds=seconds,
        trainable_params=trainable,
        total_params=total,
        precision=precision,
        num_processes=processes,
    )
    record.meta_info = dataclasses.replace(record.meta_info, hardware=Hardware(device=device, cpu_count=2, gpu=gpu))
    return record


def test_calibrate_utilisation_from_measured_runs():
    records = [
        _record("lora", device="cpu"),
        _record("lora", device="cpu", seconds=150.0),
        _record("full", device="cpu", trainable=135_000_000),
        _record(
            "full",
            device="cuda",
            gpu="NVIDIA H100 80GB HBM3",
            precision="bf16",  # other hardware
            trainable=135_000_000,
        ),
        _record("lora", device="cpu", status="failed"),
    ]
    calibrated = calibrate_utilisation(records, "cpu-2core")
    cpu_peak = peak_flops(catalog.gpus()["cpu-2core"], "fp32")
    lora_flops = (4 * 135_000_000 + 2 * 1_000_000) * 100_000
    assert calibrated["lora"].value == pytest.approx(2 * lora_flops / 200.0 / cpu_peak)  # pooled: 2 runs, 200 s
    assert calibrated["full"].value == pytest.approx(6 * 135e6 * 1e5 / 50.0 / cpu_peak)
    assert calibrated["lora"].source.startswith("calibrated: 2 measured lora run(s) on cpu-2core")
    on_h100 = calibrate_utilisation(records, "h100-sxm")
    assert set(on_h100) == {"full"}
    assert on_h100["full"].value == pytest.approx(6 * 135e6 * 1e5 / 50.0 / (989.5e12))  # H100 SXM dense bf16


def test_runs_on_several_gpus_are_calibrated_per_gpu():
    """4 GPUs for 50 s did the work of one GPU for 200 s; 2 processes sharing one CPU machine are one machine."""
    on_four = _record(
        "full", device="cuda", gpu="NVIDIA H100 80GB HBM3", precision="bf16", trainable=135_000_000, processes=4
    )
    assert calibrate_utilisation([on_four], "h100-sxm")["full"].value == pytest.approx(
        6 * 135e6 * 1e5 / (4 * 50.0) / 989.5e12
    )
    two_cpu = _record("full", device="cpu", trainable=135_000_000, processes=2)
    assert calibrate_utilisation([two_cpu], "cpu-2core")["full"].value == pytest.approx(
        6 * 135e6 * 1e5 / 50.0 / peak_flops(catalog.gpus()["cpu-2core"], "fp32")
    )


def test_calibration_matches_a_numbered_cuda_device():
    record = _record("lora", device="cuda:0", gpu="NVIDIA A10G", tokens=100_000, seconds=10.0, total=100_000_000)
    assert set(calibrate_utilisation([record], "a10g")) == {"lora"}


def test_recorded_hardware_maps_to_catalog_entries():
    assert catalog_gpu_for(Hardware(device="cuda", gpu="NVIDIA A100-SXM4-80GB")) == "a100-80gb"
    assert catalog_gpu_for(Hardware(device="cpu", cpu_count=2)) == "cpu-2core"
    assert catalog_gpu_for(Hardware(device="cpu", cpu_count=64)) is None
    assert catalog_gpu_for(Hardware(device="cuda", gpu="NVIDIA H100 PCIe")) is None  # different peak: not h100-sxm


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="examples: -1 must be positive"):
        estimate_training("llama-3.2-1b", "lora", "a10g", -1, 256, 1, 4)
    with pytest.raises(UserError, match="trains nothing"):
        estimate_training("llama-3.2-1b", "rag", "a10g", 10, 256, 1, 4)
    with pytest.raises(UserError, match="unknown GPU 'h100'.*choose one of"):
        estimate_training("llama-3.2-1b", "lora", "h100", 10, 256, 1, 4)


def test_too_big_for_one_gpu_reports_how_many_sharded_gpus():
    estimate = estimate_training("llama-3.1-70b", "full", "h100-sxm", 1000, 512, 1, 1, gradient_checkpointing=True)
    assert not estimate.fits
    # the harness's pure bf16 (the default on a bf16 GPU) with fused AdamW (the Trainer's), sharded over n GPUs:
    # weights 2 + AdamW m, v 4 + (at the step) gradients 2 = 8 B per parameter; 70.55e9 x 8 / n <= 77.3e9 B usable
    # (0.9 x 80 GiB) -> n = 8 (with ZeRO's mixed precision, 16 B per parameter: 15)
    assert estimate.precision == "bf16"
    assert estimate.gpus_needed == 8
    mixed = estimate_training(
        "llama-3.1-70b", "full", "h100-sxm", 1000, 512, 1, 1, gradient_checkpointing=True, precision="mixed"
    )
    assert mixed.gpus_needed == 15
    assert "FSDP/ZeRO-3" in estimate.notes[0]


def test_qlora_70b_fits_one_a100_80gb_at_batch_1():
    # QLoRA (Dettmers et al. 2023) fine-tuned 65B models on one 48 GB GPU; with the harness's defaults (bf16,
    # NF4 + double quantisation, gradient checkpointing) Llama 3.1 70B at batch 1 x 512 tokens fits one 80 GB A100
    estimate = estimate_training("llama-3.1-70b", "qlora", "a100-80gb", 1000, 512, 1, 1)
    assert estimate.precision == "bf16" and estimate.gradient_checkpointing
    assert estimate.fits and estimate.gpus_needed == 1
    assert estimate.memory.peak < 48 * 2**30  # on the paper's 48 GB card too


def test_qlora_8b_fits_a_24gb_card_at_batch_1_seq_2048():
    for gpu in ("a10g", "rtx-4090"):
        estimate = estimate_training("llama-3.1-8b", "qlora", gpu, 1000, 2048, 1, 1, gradient_checkpointing=True)
        assert estimate.fits, (gpu, estimate.memory.peak / 2**30)


def test_the_estimator_prices_the_steps_the_run_takes():
    job = ("smollm2-135m-instruct", "lora", "a10g", 151, 256, 2.0, 8)
    as_given = estimate_training(*job)
    with_minimum = estimate_training(*job, min_optimizer_steps=100)
    at_batch_3 = estimate_training(*job[:-1], 3)
    assert as_given.steps == StepPlan(8, 2.0, 38)
    assert with_minimum.steps == StepPlan(3, 2.0, 102, batch_lowered=True)
    # the same job as one asked for at batch 3: the same tokens, the utilisation of smaller steps, less memory
    assert with_minimum.gpu_hours == at_batch_3.gpu_hours and with_minimum.memory == at_batch_3.memory
    assert with_minimum.tokens == as_given.tokens and with_minimum.memory.peak < as_given.memory.peak
    longer = estimate_training(*job[:3], 20, 256, 2.0, 8, min_optimizer_steps=100)  # batch 1, 5 epochs
    assert (longer.steps.batch_size, longer.steps.epochs, longer.tokens) == (1, 5.0, 20 * 256 * 5.0)
    assert longer.as_dict()["optimizer_steps"] == 100 and longer.as_dict()["min_steps_adjusted"] is True


def test_the_estimators_default_lora_targets_are_the_harness_default_every_linear_layer():
    estimate = estimate_training("smollm2-135m-instruct", "lora", "a10g", 100, 256, 1, 4)
    assert estimate.lora_targets == LINEAR_MODULES
