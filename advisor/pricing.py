"""Prices measured runs: training on the deployment GPU, serving per 1k requests, and the labelled data.

Training is projected, not read off this machine's clock: the run's measured work (FLOPs from the
tokens it trained on and its trainable/total parameters) divided by the deployment GPU's peak
times a utilisation, which is calibrated from measured runs on that GPU when there are some, and
otherwise a published default (``data/catalog/utilisation.yaml``). What the run cost on the
hardware it was measured on is given beside it. Serving uses each run's measured prompt and output
tokens per request. Data counts the labelled examples each arm needs.
"""

from __future__ import annotations

from harness import catalog
from harness.task import DataCostConfig

from advisor.costs import (ModelShape, RequestShape, calibrate_utilisation, data_cost, default_utilisation,
                           estimate_serving, gpu_hours, gpu_hours_usd, measured_training)
from advisor.costs.compute import catalog_gpu_for

SERVING_METHOD = {"prompt": "prompt", "rag": "rag", "lora": "lora", "full": "full", "qlora": "qlora"}


def labelled_examples_needed(record: dict, n_train: int) -> int:
    """Labelled examples an arm consumes: k for k-shot, the indexed train set for nearest-example RAG,
    none for RAG over a knowledge corpus (documents exist already), all of train for fine-tuning."""
    info = record.get("run_info") or {}
    strategy, params = info.get("strategy"), info.get("params") or {}
    if strategy == "prompt":
        return int(params.get("shots", 0))
    if strategy == "rag":
        return n_train if (record.get("strategy_info") or {}).get("mode") == "nearest_examples" else 0
    return (record.get("train_info") or {}).get("examples_labelled", n_train)


def _shape(results: dict, records: list[dict]) -> ModelShape | None:
    name = (results["task"].get("model") or {}).get("catalog_name")
    if name:
        return ModelShape.from_catalog(name)
    recorded = next((r["run_info"]["model_shape"] for r in records if (r.get("run_info") or {}).get("model_shape")), None)
    return ModelShape(**recorded) if recorded else None


def price_runs(results: dict, records: list[dict], config: DataCostConfig) -> dict:
    """Adds cost fields to every row of ``results['runs']`` (same order as ``records``) and returns the
    assumptions, stored as ``results['costs']``."""
    task = results["task"]
    gpu_name = task["deployment"]["gpu"]
    gpu = catalog.check_gpu(gpu_name)
    monthly = task["goals"].get("monthly_requests") or 0
    shape = _shape(results, records)
    calibrated = calibrate_utilisation(records, gpu_name)
    utilisations: dict[str, dict] = {}
    for row, record in zip(results["runs"], records):
        row.update(train_usd=None, train_gpu_hours=None, train_usd_measured_hardware=None,
                   serve_usd_per_1k=None, serve_usd_per_month=None, data_usd=None, labelled_examples=None)
        if record.get("status") != "ok":
            continue
        strategy = row["strategy"]
        measured = measured_training(record)
        if measured:
            util = calibrated.get(strategy) or default_utilisation("training", strategy)
            utilisations[strategy] = {"value": round(util.value, 4), "source": util.source}
            precision = "bf16" if gpu.get("supports_bf16") else "fp32"
            hours = gpu_hours(measured.flops, gpu, precision, util.value)
            row.update(train_gpu_hours=hours, train_usd=gpu_hours_usd(hours, gpu["usd_per_hour"]),
                       train_flops=measured.flops)
            here = catalog_gpu_for((record.get("meta_info") or {}).get("hardware") or {})
            if here:
                row["train_usd_measured_hardware"] = gpu_hours_usd(measured.device_seconds / 3600,
                                                                   catalog.gpus()[here]["usd_per_hour"])
        if shape is not None:
            request = RequestShape.measured(row["prompt_tokens_mean"], row["output_tokens_mean"])
            serving = estimate_serving(shape, SERVING_METHOD[strategy], gpu_name, monthly, request=request)
            row.update(serve_usd_per_1k=serving.usd_per_1k_requests, serve_usd_per_month=serving.usd_per_month,
                       serve_requests_per_gpu_hour=serving.requests_per_replica_hour)
        n = labelled_examples_needed(record, task["n_train"])
        row.update(labelled_examples=n, data_usd=data_cost(n, config).total_usd)
    serving_defaults = {key: default_utilisation("serving", key).as_dict()
                        for key in ("prefill_mfu", "decode_bandwidth_utilisation", "load_factor")}
    return {
        "gpu": gpu_name,
        "gpu_display_name": gpu.get("display_name", gpu_name),
        "usd_per_hour": gpu["usd_per_hour"],
        "price_source": gpu.get("price_source"),
        "price_date": str(gpu.get("date")),
        "monthly_requests": monthly,
        "training_utilisation": utilisations,
        "serving_utilisation": serving_defaults,
        "data_cost": vars(config),
        "model_shape": vars(shape) if shape else None,
        "notes": [
            "train_usd: the run's FLOPs (2N forward + 2N input gradients + 2 x trainable weight gradients per token; "
            "the LM head's share only at the positions whose logits were computed, the answer windows) "
            f"on one {gpu_name} at the utilisation shown; train_usd_measured_hardware: its wall-clock time at the "
            "catalog price of the hardware it was measured on",
            "serve_usd_per_1k: replica-hours per 1,000 requests with each run's measured prompt and output tokens, "
            f"16-bit weights on {gpu_name}",
            "data_usd: labelled examples the arm consumes x the task's data_cost settings",
        ],
    }


def price_results_dir(out_dir, config: DataCostConfig) -> dict:
    """Price the runs stored in ``out_dir`` and rewrite its results.json with the cost fields."""
    from pathlib import Path

    from harness.runstore import atomic_write_json, read_json

    from advisor.report import load_results

    out_dir = Path(out_dir)
    results = load_results(out_dir)
    records = [read_json(out_dir / row["record"]) or {} for row in results["runs"]]
    results["costs"] = price_runs(results, records, config)
    atomic_write_json(out_dir / "results.json", results)
    return results
