"""Pricing measured runs: projected training $, serving $ per 1k, and the labelled data each arm needs."""

import dataclasses

import pytest

from advisor.costs.data_cost import DataCostConfig
from advisor.pricing import labelled_examples_needed, price
from harness import catalog
from harness.record import Hardware, StrategyInfo
from harness.runstore import StoredRun
from tests.advisor.factories import make_comparison, make_record

FULL_TRAIN = {
    "tokens_trained": 1_000_000,
    "train_seconds": 600.0,
    "total_params": 100_000_000,
    "trainable_params": 100_000_000,
    "precision": "fp32",
    "examples": 400,
    "examples_labelled": 400,
}


def record(strategy, *, params=None, train=None, mode=None, hardware=None, prompt_tokens=50.0, status="ok"):
    run = make_record(
        strategy, "v", 0.5, trained=train is not None, params=params, prompt_tokens=prompt_tokens, status=status
    )
    if status != "ok":
        return run
    if train is not None:
        run.train_info = dataclasses.replace(run.train_info, **train)
    run.strategy_info = StrategyInfo(retrieval_mode=mode)
    run.meta_info = dataclasses.replace(run.meta_info, hardware=hardware or Hardware(device="cpu", cpu_count=2))
    return run


def comparison_of(records, gpu="a10g"):
    return make_comparison(
        [StoredRun(r, f"runs/{i}.json") for i, r in enumerate(records)], deployment=gpu, monthly_requests=1_000_000
    )


def test_training_is_projected_from_flops_on_the_deployment_gpu():
    priced = price(comparison_of([record("full", train=FULL_TRAIN)]), DataCostConfig())
    costs, assumptions = priced.runs[0].costs, priced.assumptions
    gpu = catalog.gpus()["a10g"]
    util = assumptions.training_utilisation["full"].value
    # full fine-tuning: 6 x N x tokens = 6e14 FLOPs at the bf16 peak x utilisation
    expected_hours = 6e14 / (gpu["peak_tflops_bf16_dense"] * 1e12 * util) / 3600
    assert costs.train_gpu_hours == pytest.approx(expected_hours, rel=1e-3)  # the shown figure is rounded
    assert costs.train_usd == pytest.approx(expected_hours * gpu["usd_per_hour"], rel=1e-3)
    assert assumptions.training_utilisation["full"].source.startswith("curve")
    # measured on the 2-core CPU entry: its wall clock at that entry's price
    cpu = catalog.gpus()["cpu-2core"]
    assert costs.train_usd_measured_hardware == pytest.approx(600 / 3600 * cpu["usd_per_hour"])


def test_runs_on_the_deployment_gpu_calibrate_the_utilisation():
    name = catalog.gpus()["a10g"]["cuda_device_names"][0]
    run = record("full", train={**FULL_TRAIN, "precision": "bf16"}, hardware=Hardware(device="cuda", gpu=name))
    priced = price(comparison_of([run]), DataCostConfig())
    assert priced.assumptions.training_utilisation["full"].source.startswith("calibrated")
    # calibrated from this very run: projecting it back gives its own measured time
    assert priced.runs[0].costs.train_gpu_hours == pytest.approx(600 / 3600, rel=1e-6)


def test_serving_uses_measured_tokens_longer_prompts_cost_more():
    records = [
        record("prompt", params={"shots": 4}, prompt_tokens=250),
        record("full", train=FULL_TRAIN, prompt_tokens=40),
    ]
    prompt, full = price(comparison_of(records), DataCostConfig()).runs
    assert prompt.costs.serve_usd_per_1k > full.costs.serve_usd_per_1k > 0


@pytest.mark.parametrize(
    "strategy, params, mode, expected",
    [
        ("prompt", {"shots": 0}, None, 0),
        ("prompt", {"shots": 4}, None, 4),
        ("rag", {}, "nearest_examples", 400),
        ("rag", {}, "knowledge", 0),
        ("lora", {}, None, 400),
    ],
)
def test_labelled_examples_each_arm_needs(strategy, params, mode, expected):
    train = FULL_TRAIN if strategy == "lora" else None
    assert labelled_examples_needed(record(strategy, params=params, mode=mode, train=train), 400) == expected


def test_data_cost_follows_the_task_settings_and_failed_runs_are_not_priced():
    records = [record("lora", train={**FULL_TRAIN, "trainable_params": 1_000_000}), record("full", status="failed")]
    lora, failed = price(comparison_of(records), DataCostConfig(minutes_per_example=2, hourly_rate_usd=60)).runs
    assert lora.costs.data_usd == pytest.approx(400 * 2 / 60 * 60)
    assert failed.costs.train_usd is None and failed.costs.data_usd is None
