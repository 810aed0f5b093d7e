"""Every strategy, end to end on a tiny random Llama, in-process (fast)."""

from __future__ import annotations

import json

import pytest
import torch

from harness.runner import RunContext, run_variant
from harness.strategies import STRATEGIES
from harness.task import load_examples, load_task
from tests.conftest import compare_in_process as compare
from tests.conftest import run_info

REQUIRED_RUN_KEYS = {
    "strategy",
    "variant",
    "quality",
    "latency_ms_p50",
    "latency_ms_p95",
    "memory_growth_mib",
    "train_seconds",
    "status",
}


def test_classification_runs_all_four_strategies(classification_task, tmp_path):
    out = tmp_path / "out"
    results, _ = compare(classification_task, out)
    runs = {(r["strategy"], r["variant"]): r for r in results["runs"]}
    assert list(runs) == [  # prompting's shots are a grid: chosen on validation, only the chosen one on test
        ("prompt", "0-shot"),
        ("rag", "top-2"),
        ("lora", "r4"),
        ("full", "all-weights"),
    ]
    for key, row in runs.items():
        assert set(row) >= REQUIRED_RUN_KEYS, key
        assert row["status"] == "ok", (key, row["error"])
        assert 0 <= row["quality"] <= 1 and row["n_examples"] == 6
        assert 0 <= row["validation_quality"] <= 1  # 2 of the 12 training examples held out
        assert row["latency_ms_p95"] >= row["latency_ms_p50"] > 0
        assert row["memory_kind"] == "cpu_rss" and row["memory_peak_mib"] > row["memory_growth_mib"] >= 0
    assert runs[("prompt", "0-shot")]["train_seconds"] is None
    assert runs[("lora", "r4")]["train_seconds"] > 0

    tuning = runs[("prompt", "0-shot")]["tuning"]
    assert tuning["chosen"] == "0-shot" and [t["variant"] for t in tuning["trials"]] == ["0-shot", "2-shot"]
    assert [t["settings"] for t in tuning["trials"]] == [{"shots": 0}, {"shots": 2}]
    trial = json.loads((out / tuning["trials"][1]["record"]).read_text())
    assert (
        trial["run_info"]["role"] == "trial" and trial["eval_info"] is None and trial["validation"]["n_examples"] == 2
    )
    assert runs[("lora", "r4")]["tuning"] is None  # one setting: nothing to choose

    # LoRA on every linear layer (the default) of 2 layers, hidden 64, kv dim 32, MLP 128: q,k,v,o
    # r*(64+64) + 2*r*(64+32) + r*(64+64) = 448r and gate, up, down 3*r*(64+128) = 576r per layer
    assert runs[("lora", "r4")]["trainable_params"] == 2 * (448 + 576) * 4
    full = json.loads((out / runs[("full", "all-weights")]["record"]).read_text())
    assert full["train_info"]["trainable_params"] == full["train_info"]["total_params"]
    # the LM head ran on each row's answer window + 1 only: at least the answer tokens, far fewer than all
    train = full["train_info"]
    assert train["loss_tokens"] + train["examples"] <= train["lm_head_positions"] < train["tokens_trained"] / 2
    # the largest micro-batch, for the memory model: no row longer than the widest batch, no window wider
    rows = train["examples"] * train["epochs"]
    assert train["tokens_trained"] <= rows * train["padded_len_max"] and train["padded_len_max"] <= 384
    assert train["lm_head_positions"] <= rows * train["logit_window_max"] < rows * train["padded_len_max"]

    # the record has everything the issue lists
    record = json.loads((out / runs[("rag", "top-2")]["record"]).read_text())
    assert record["status"] == "ok" and len(record["predictions"]) == 6
    assert {
        "quality",
        "latency_ms_p50",
        "latency_ms_p95",
        "latency_batch_size",
        "throughput_examples_per_s",
        "prompt_tokens_mean",
        "output_tokens_mean",
    } <= set(record["eval_info"])
    assert record["meta_info"]["packages"]["torch"] and record["meta_info"]["hardware"]["device"] == "cpu"
    assert record["run_info"]["seed"] == 0 and record["run_info"]["config_hash"]
    assert record["strategy_info"]["retrieval_mode"] == "nearest_examples"
    first = record["predictions"][0]
    assert {"id", "input", "target", "prediction", "output", "score"} <= set(first)
    results_file = json.loads((out / "results.json").read_text())
    assert {"task", "device", "runs"} <= set(results_file) and len(results_file["runs"]) == 4
    splits = results_file["splits"]
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (10, 2, 6)
    assert not set(splits["validation"]) & set(splits["train"])


def test_finished_runs_are_reused_unless_fresh(classification_task, tmp_path):
    out = tmp_path / "out"
    compare(classification_task, out, only=["prompt"])
    _, lines = compare(classification_task, out, only=["prompt"])
    assert sum("reusing" in line for line in lines) == 3  # two trials and the chosen one's run on test
    _, lines = compare(classification_task, out, only=["prompt"], seed=1)  # a different config: recomputed
    assert not any("reusing" in line for line in lines)
    _, lines = compare(classification_task, out, only=["prompt"], seed=1, fresh=True)
    assert not any("reusing" in line for line in lines)


def test_data_fractions_train_on_nested_subsets(classification_task, tmp_path):
    body = classification_task.read_text().replace(
        "lora: {rank: 4, epochs: 1, batch_size: 4,",
        "lora: {rank: 4, epochs: 1, batch_size: 4, data_fractions: [0.25, 0.5, 1.0],",
    )
    classification_task.write_text(body)
    results, _ = compare(classification_task, tmp_path / "out", only=["lora"])
    rows = results["runs"]
    assert [(r["variant"], r["data_fraction"], r["examples_labelled"]) for r in rows] == [
        ("r4-25pct", 0.25, 3),  # of the 10 left after the validation split
        ("r4-50pct", 0.5, 5),
        ("r4", 1.0, 10),
    ]
    assert all(r["status"] == "ok" for r in rows)

    quick, _ = compare(classification_task, tmp_path / "quick", only=["lora"], limit=2)  # a quick look
    assert [r["variant"] for r in quick["runs"]] == ["r4"]

    from harness.training import training_subset

    train = list(range(40))
    quarter, half = training_subset(train, 0.25, seed=0), training_subset(train, 0.5, seed=0)
    assert len(quarter) == 10 and len(half) == 20 and set(quarter) < set(half)


def test_limit_takes_seeded_subsets(classification_task):
    task = load_task(classification_task)
    data = load_examples(task)
    train, test = data.limited(1, seed=0)
    assert len(test) == 1 and len(train) == 5
    assert data.limited(1, seed=0) == (train, test)
    assert data.limited(None, seed=0) == (data.train, data.test)


def test_qa_with_knowledge_retrieves_chunks_and_injects_them_into_training(qa_task, tmp_path):
    results, _ = compare(qa_task, tmp_path / "out")
    runs = {r["strategy"]: r for r in results["runs"]}
    assert runs["rag"]["status"] == "ok" and runs["lora"]["status"] == "ok"
    rag = json.loads((tmp_path / "out" / runs["rag"]["record"]).read_text())
    assert rag["strategy_info"]["retrieval_mode"] == "knowledge" and rag["strategy_info"]["documents"] == 3
    assert rag["eval_info"]["metric"] == "token_f1"
    # 2 QA pairs (the third is the validation split) + at least one window per handbook document
    assert runs["lora"]["train_examples"] >= 2 + 3


def test_extraction_scores_json(extraction_task, tmp_path):
    results, _ = compare(extraction_task, tmp_path / "out")
    assert [r["status"] for r in results["runs"]] == ["ok", "ok"]
    assert all(r["metric"] == "json_match" for r in results["runs"])


def test_full_finetuning_learns_the_answers(classification_task):
    """A real training loop: the loss on the answers must fall a lot over a few epochs."""
    task = load_task(classification_task)
    data = load_examples(task)
    ctx = RunContext(task=task, data=data, train=data.train, test=data.test[:2], device="cpu", seed=0, progress=False)
    config = STRATEGIES["full"].config_type(epochs=10, learning_rate=3e-3, batch_size=4, min_optimizer_steps=0)
    variant = STRATEGIES["full"].variants(config)[0]
    record = run_variant(ctx, variant, run_info(task, variant))
    assert record.ok, record.error
    curve = record.train_info.loss_curve
    assert len(curve) == record.train_info.optimizer_steps == 30
    assert sum(curve[-3:]) / 3 < 0.6 * sum(curve[:3]) / 3  # 10.8 (uniform over 49k tokens) -> ~5.5
    # the phases the advisor prices a job's fixed part with: loading the model and evaluating, timed apart
    phases = record.run_info.phases
    assert phases.model_load > 0 and phases.evaluation > 0
    assert phases.model_load + phases.evaluation + record.train_info.train_seconds <= record.run_info.wall_seconds


def test_a_failing_arm_is_recorded_and_the_others_still_run(classification_task, tmp_path, monkeypatch):
    from harness.strategies.lora import LoraStrategy

    def boom(self, ctx, variant):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(LoraStrategy, "prepare", boom)
    results, lines = compare(classification_task, tmp_path / "out", only=["lora", "prompt"])
    status = {r["strategy"] + " " + r["variant"]: r for r in results["runs"]}
    assert status["lora r4"]["status"] == "failed"
    assert (
        status["lora r4"]["error"] == "out of memory: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    )
    assert status["prompt 0-shot"]["status"] == "ok"
    assert any("FAILED" in line for line in lines)


@pytest.mark.parametrize("strategy", ["prompt", "rag"])
def test_inference_arms_are_reproducible(classification_task, tmp_path, strategy):
    a, _ = compare(classification_task, tmp_path / "a", only=[strategy])
    b, _ = compare(classification_task, tmp_path / "b", only=[strategy])
    for ra, rb in zip(a["runs"], b["runs"], strict=True):
        pa = json.loads((tmp_path / "a" / ra["record"]).read_text())["predictions"]
        pb = json.loads((tmp_path / "b" / rb["record"]).read_text())["predictions"]
        assert [p["output"] for p in pa] == [p["output"] for p in pb]


def test_lora_targets_reach_peft_once_and_all_linear_as_its_shorthand():
    from harness.strategies.lora import LoraConfig, lora_adapter_config

    assert (
        lora_adapter_config(LoraConfig(rank=8, target_modules=["all-linear", "q_proj"])).target_modules == "all-linear"
    )
    assert set(
        lora_adapter_config(LoraConfig(rank=8, target_modules=["q_proj", "v_proj", "q_proj"])).target_modules
    ) == {
        "q_proj",
        "v_proj",
    }


def test_lora_and_qlora_adapt_every_linear_layer_by_default():
    from harness.strategies.lora import DEFAULT_TARGET_MODULES, LoraConfig, lora_adapter_config
    from harness.strategies.qlora import QloraConfig

    assert DEFAULT_TARGET_MODULES == ("all-linear",)
    assert lora_adapter_config(LoraConfig(rank=8)).target_modules == "all-linear"
    assert lora_adapter_config(QloraConfig(rank=8)).target_modules == "all-linear"
