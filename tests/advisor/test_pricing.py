"""Pricing measured runs: projected training $, serving $ per 1k, and the labelled data each arm needs."""

import pytest

from advisor.pricing import labelled_examples_needed, price_runs
from harness import catalog
from harness.task import DataCostConfig


def record(strategy, *, params=None, train=None, mode=None, hardware=None, prompt_tokens=50.0, output_tokens=4.0):
    return {"status": "ok", "run_info": {"strategy": strategy, "params": params or {}},
            "train_info": train, "strategy_info": {"mode": mode} if mode else {},
            "meta_info": {"hardware": hardware or {"device": "cpu", "cpu_count": 2}},
            "eval_info": {"prompt_tokens_mean": prompt_tokens, "output_tokens_mean": output_tokens}}


def results_for(records, n_train=400, gpu="a10g"):
    rows = [{"strategy": r["run_info"]["strategy"], "status": r["status"],
             "prompt_tokens_mean": (r.get("eval_info") or {}).get("prompt_tokens_mean"),
             "output_tokens_mean": (r.get("eval_info") or {}).get("output_tokens_mean")} for r in records]
    return {"task": {"n_train": n_train, "deployment": {"gpu": gpu}, "goals": {"monthly_requests": 1_000_000},
                     "model": {"catalog_name": "smollm2-135m-instruct"}}, "runs": rows}


FULL_TRAIN = {"tokens_trained": 1_000_000, "train_seconds": 600.0, "total_params": 100_000_000,
              "trainable_params": 100_000_000, "precision": "fp32", "examples": 400}


def test_training_is_projected_from_flops_on_the_deployment_gpu():
    records = [record("full", train=FULL_TRAIN)]
    results = results_for(records)
    costs = price_runs(results, records, DataCostConfig())
    row = results["runs"][0]
    gpu = catalog.gpus()["a10g"]
    util = costs["training_utilisation"]["full"]["value"]
    # full fine-tuning: 6 x N x tokens = 6e14 FLOPs at the bf16 peak x utilisation
    expected_hours = 6e14 / (gpu["peak_tflops_bf16_dense"] * 1e12 * util) / 3600
    assert row["train_gpu_hours"] == pytest.approx(expected_hours, rel=1e-6)
    assert row["train_usd"] == pytest.approx(expected_hours * gpu["usd_per_hour"], rel=1e-6)
    assert costs["training_utilisation"]["full"]["source"].startswith("default")
    # measured on the 2-core CPU entry: its wall clock at that entry's price
    cpu = catalog.gpus()["cpu-2core"]
    assert row["train_usd_measured_hardware"] == pytest.approx(600 / 3600 * cpu["usd_per_hour"])


def test_runs_on_the_deployment_gpu_calibrate_the_utilisation():
    name = catalog.gpus()["a10g"]["cuda_device_names"][0]
    records = [record("full", train={**FULL_TRAIN, "precision": "bf16"}, hardware={"device": "cuda", "gpu": name})]
    results = results_for(records)
    costs = price_runs(results, records, DataCostConfig())
    assert costs["training_utilisation"]["full"]["source"].startswith("calibrated")
    # calibrated from this very run: projecting it back gives its own measured time
    assert results["runs"][0]["train_gpu_hours"] == pytest.approx(600 / 3600, rel=1e-6)


def test_serving_uses_measured_tokens_longer_prompts_cost_more():
    records = [record("prompt", params={"shots": 4}, prompt_tokens=250), record("full", train=FULL_TRAIN, prompt_tokens=40)]
    results = results_for(records)
    price_runs(results, records, DataCostConfig())
    prompt, full = results["runs"]
    assert prompt["serve_usd_per_1k"] > full["serve_usd_per_1k"] > 0


@pytest.mark.parametrize("strategy, params, mode, expected", [
    ("prompt", {"shots": 0}, None, 0), ("prompt", {"shots": 4}, None, 4),
    ("rag", {}, "nearest_examples", 400), ("rag", {}, "knowledge", 0), ("lora", {}, None, 400)])
def test_labelled_examples_each_arm_needs(strategy, params, mode, expected):
    assert labelled_examples_needed(record(strategy, params=params, mode=mode), 400) == expected


def test_data_cost_follows_the_task_settings_and_failed_runs_are_not_priced():
    records = [record("lora", train={**FULL_TRAIN, "trainable_params": 1_000_000}), {"status": "failed", "run_info": {"strategy": "full"}}]
    results = results_for(records)
    price_runs(results, records, DataCostConfig(minutes_per_example=2, hourly_rate_usd=60))
    assert results["runs"][0]["data_usd"] == pytest.approx(400 * 2 / 60 * 60)
    assert results["runs"][1]["train_usd"] is None and results["runs"][1]["data_usd"] is None
