"""Pricing measured runs: projected training $, serving $ per 1k, and the labelled data each arm needs."""

import dataclasses

import pytest

from advisor.costs.data_cost import DataCostConfig
from advisor.costs.job_overhead import job_bytes, job_overhead
from advisor.costs.shapes import ModelShape, param_counts
from advisor.pricing import RunCosts, labelled_examples_needed, price
from harness import catalog
from harness.record import Hardware, PhaseSeconds, RunRecord, StrategyInfo
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
    assert costs.train_flop_usd == pytest.approx(expected_hours * gpu["usd_per_hour"], rel=1e-3)
    # train_usd = the FLOP part + the fixed part per job (start-up, load, evaluation, save, billing rounding)
    assert costs.train_fixed_usd > 0
    assert costs.train_usd == pytest.approx(costs.train_flop_usd + costs.train_fixed_usd)
    assert costs.train_fixed_gpu_hours == pytest.approx(sum(costs.train_fixed_seconds.values()) / 3600)
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


def test_a_measured_model_load_and_evaluation_are_used_for_the_fixed_part():
    timed = record("full", train=FULL_TRAIN)
    timed.run_info.phases = PhaseSeconds(model_load=30.0, evaluation=5.0)
    untimed = record("full", train=FULL_TRAIN)  # recorded before the phases were timed: catalog figures
    measured, from_catalog = (run.costs for run in price(comparison_of([timed, untimed]), DataCostConfig()).runs)
    assert measured.train_fixed_measured == ["model_load", "eval"] and from_catalog.train_fixed_measured == []
    # same FLOPs, same start-up and save: the two differ by the load and evaluation alone
    assert measured.train_flop_usd == pytest.approx(from_catalog.train_flop_usd)
    base = param_counts(ModelShape.from_catalog("smollm2-135m-instruct")).total
    expected = job_overhead(
        job_bytes(base, "full", trained_params=0, precision="bf16"),
        "a10g",
        compute_seconds=measured.train_gpu_hours * 3600,
        eval_seconds=5.0,
    )
    download = (
        expected.model_load_s - base * 2 / catalog.job_overheads()["throughput"]["disk_read_bytes_per_s"]["value"]
    )
    assert measured.train_fixed_seconds["model_load"] == pytest.approx(download + 30.0)
    assert measured.train_fixed_seconds["eval"] == 5.0
    assert from_catalog.train_fixed_seconds["eval"] == catalog.job_overheads()["evaluation"]["seconds"]["value"]
    assert measured.train_usd == pytest.approx(measured.train_flop_usd + measured.train_fixed_usd)
    assert measured.train_usd != pytest.approx(from_catalog.train_usd)


def test_the_pricing_assumptions_list_the_fixed_items_and_their_sources():
    notes = price(comparison_of([record("lora", train=FULL_TRAIN)]), DataCostConfig()).assumptions.notes
    text = " ".join(notes)
    assert "fixed per job" in text and "job_overheads.yaml" in text
    assert "per-second-billing" in text and "measured" in text


def test_scaling_training_scales_the_flops_not_the_fixed_part():
    costs = RunCosts(train_usd=1.5, train_flop_usd=0.5, train_fixed_usd=1.0)
    assert costs.train_usd_scaled(10) == pytest.approx(6.0)
    assert RunCosts(train_usd=2.0).train_usd_scaled(3) == pytest.approx(6.0)  # priced without the split
    assert RunCosts().train_usd_scaled(3) is None


def test_records_keep_their_phases_and_old_records_load_without_them():
    run = record("full", train=FULL_TRAIN)
    run.run_info.phases = PhaseSeconds(model_load=1.5, evaluation=2.5)
    data = run.to_json()
    assert RunRecord.from_json(data).run_info.phases == PhaseSeconds(1.5, 2.5)
    del data["run_info"]["phases"]
    assert RunRecord.from_json(data).run_info.phases is None
