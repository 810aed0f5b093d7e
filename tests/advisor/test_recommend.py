"""The recommendation from synthetic results.json dicts: which arm wins, and the sentences that say why."""

from __future__ import annotations

import json

import pytest

from advisor.recommend import analyse, recommend, store_recommendation
from advisor.wording import strategy_name

CPU = {"device": "cpu", "platform": "Linux", "cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 2, "memory_gb": 23.5}
A10G = {"device": "cuda", "gpu": "NVIDIA A10G", "gpu_count": 1, "platform": "Linux", "cpu": "x86", "cpu_count": 8,
        "memory_gb": 32}
DATA_COST = {"minutes_per_example": 5.0, "hourly_rate_usd": 30.0, "llm_generated_fraction": 0.0,
             "llm_tokens_per_example": 200, "llm_usd_per_million_tokens": 10.0, "review_fraction": 1.0,
             "review_minutes_per_example": 1.0}
SMOLLM2_135M = {"name": "smollm2-135m-instruct", "num_layers": 30, "hidden_size": 576, "intermediate_size": 1536,
                "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True,
                "attention_bias": False}


def make_row(strategy, variant, quality, *, p95=500.0, train_usd=None, data_usd=0.0, per_1k=0.01, per_month=737.0,
             prompt_tokens=100.0, n_test=200, train_examples=None, status="ok", error=None):
    """A priced results.json row (harness.runstore.summarize + advisor.pricing fields)."""
    trained = train_usd is not None
    return {"strategy": strategy, "variant": variant, "status": status, "error": error, "metric": "accuracy",
            "quality": quality if status == "ok" else None, "n_examples": n_test,
            "latency_ms_p50": p95 * 0.8, "latency_ms_p95": p95, "latency_batch_size": 1,
            "throughput_examples_per_s": 3.0, "eval_batch_size": 16, "prompt_tokens_mean": prompt_tokens,
            "output_tokens_mean": 4.0, "peak_memory_mb": 900.0, "peak_memory_kind": "cpu_rss_growth",
            "train_seconds": 100.0 if trained else None, "tokens_trained": 1e5 if trained else None,
            "trainable_params": 1e6 if trained else None, "train_examples": train_examples,
            "final_loss": 0.5 if trained else None, "train_usd": train_usd, "train_gpu_hours": None,
            "train_usd_measured_hardware": None, "serve_usd_per_1k": per_1k, "serve_usd_per_month": per_month,
            "serve_requests_per_gpu_hour": 1010 / per_1k if per_1k else None, "data_usd": data_usd, "labelled_examples": None,
            "record": f"runs/{strategy}-{variant}.json"}


def make_results(runs, *, device=CPU, deployment="a10g", priced=True, knowledge=None, **goals):
    goals = {"quality": 0.8, "p95_latency_ms": 1000.0, "monthly_requests": 1_000_000, "training_budget_usd": 500.0,
             **goals}
    costs = {"gpu": deployment, "gpu_display_name": "NVIDIA A10G 24GB (AWS G5)", "usd_per_hour": 1.01,
             "price_source": "AWS on-demand", "price_date": "2026-05-01", "monthly_requests": goals["monthly_requests"],
             "training_utilisation": {}, "serving_utilisation": {}, "data_cost": DATA_COST,
             "model_shape": SMOLLM2_135M, "notes": []}
    return {"schema": 1,
            "task": {"name": "demo", "kind": "classification", "path": "demo.yaml", "metric": "accuracy",
                     "model": {"name": "smollm2-135m-instruct", "source": "package", "catalog_name": "smollm2-135m-instruct"},
                     "labels": ["a", "b"], "n_train": 384, "n_test": 200, "goals": goals,
                     "deployment": {"gpu": deployment}, "knowledge": knowledge},
            "device": device, "options": {"limit": None, "seed": 0, "only": None}, "runs": runs,
            "costs": costs if priced else None, "recommendation": None}


def learning_curve_rows(qualities=(0.62, 0.68, 0.72)):
    sizes = (96, 192, 384)
    names = ("r8-25pct", "r8-50pct", "r8")
    return [make_row("lora", name, q, train_usd=0.12 * n / 384, data_usd=2.5 * n, per_1k=0.008, prompt_tokens=40,
                     train_examples=n, p95=300) for name, n, q in zip(names, sizes, qualities)]


def test_cheapest_adequate_arm_wins_and_reasons_carry_the_numbers():
    runs = [make_row("prompt", "4-shot", 0.82, data_usd=10.0, per_1k=0.02, prompt_tokens=240),
            make_row("lora", "r8", 0.91, train_usd=0.12, data_usd=960.0, per_1k=0.008, prompt_tokens=40)]
    rec = recommend(make_results(runs))
    assert (rec["strategy"], rec["variant"], rec["meets_goals"]) == ("prompt", "4-shot", True)
    # prompting: $10 data + 12 x $737 serving = $8,854; LoRA: $960.12 + $8,844 = $9,804
    assert "0.820 accuracy ≥ the 0.80 goal" in rec["reasons"][0] and "$8,854 over 12 months" in rec["reasons"][0]
    assert any("LoRA r8 also meets the goals (0.910) at $9,804" in line for line in rec["reasons"])
    assert rec["what_would_meet_goals"] == []


def test_a_more_expensive_arm_wins_when_only_it_meets_the_goal():
    runs = [make_row("prompt", "4-shot", 0.55, data_usd=10.0),
            make_row("rag", "top-4", 0.70, data_usd=960.0, per_1k=0.03),
            make_row("lora", "r8", 0.86, train_usd=0.12, data_usd=960.0, per_1k=0.008)]
    rec = recommend(make_results(runs))
    assert (rec["strategy"], rec["meets_goals"]) == ("lora", True)
    assert any("RAG top-4 (best RAG run) falls short: 0.700 is below the 0.80 goal" in line for line in rec["reasons"])
    assert any(line.startswith("Against RAG top-4") or "than RAG top-4" in line for line in rec["reasons"])


def test_failed_arms_are_ignored_and_named():
    runs = [make_row("prompt", "0-shot", 0.85),
            make_row("full", "all-weights", None, status="failed", error="worker process killed by SIGKILL")]
    rec = recommend(make_results(runs))
    assert rec["strategy"] == "prompt" and rec["meets_goals"]
    assert any("full fine-tuning all-weights failed and was not considered: worker process killed by SIGKILL" in c
               for c in rec["cautions"])
    assert [a["strategy"] for a in rec["arms"]] == ["prompt"]


def test_nothing_meets_the_goals_says_so_and_what_would():
    runs = [make_row("prompt", "4-shot", 0.15, data_usd=10.0, per_1k=0.02), *learning_curve_rows()]
    rec = recommend(make_results(runs, quality=0.9))
    assert rec["meets_goals"] is False
    assert rec["verdict"].startswith("No measured run meets the goals. Closest: LoRA r8 at 0.720")
    more, bigger = rec["what_would_meet_goals"]
    assert more.startswith("More examples — LoRA r8 (3 runs, 96–384 examples)")
    assert bigger.startswith("A bigger base model (the ladder's answer when the task needs a capability the model "
                             "lacks): smollm2-360m-instruct has 2.7x the parameters")
    assert rec["learning_curves"][0]["points"][0]["examples"] == 96


def test_reachable_goal_prices_the_extra_examples():
    # q = 0.95 - 3 n^-0.5 through 96, 192, 384 examples; 0.85 needs (3 / 0.1)^2 = 900 examples
    qualities = [0.95 - 3 * n ** -0.5 for n in (96, 192, 384)]
    rec = recommend(make_results([*learning_curve_rows(qualities)], quality=0.85))
    more = rec["what_would_meet_goals"][0]
    assert "reaches 0.85 at ≈ 900 examples" in more
    # 516 more examples x 5 min at $30/h = $1,290 of data and 43 person-hours
    assert "516 more than the 384 you have, ≈ $1,290 of data (43 person-hours)" in more
    assert "Unreliable" in more  # 200 test examples cannot pin three parameters down


def test_near_tie_goes_to_the_simpler_arm():
    runs = [make_row("lora", "r8", 0.9, train_usd=0.1, data_usd=0.0, per_month=700.0),
            make_row("rag", "top-4", 0.85, data_usd=0.0, per_month=720.0)]
    rec = recommend(make_results(runs))
    assert rec["strategy"] == "rag"  # 12 x 720 = 8,640 is within 5 % of 8,400.10
    assert any("within 5% of each other, so the simpler arm wins" in line for line in rec["reasons"])


def test_latency_measured_on_a_cpu_is_not_held_against_a_gpu_goal():
    runs = [make_row("prompt", "4-shot", 0.85, p95=2500.0)]
    rec = recommend(make_results(runs))
    assert rec["meets_goals"] and rec["latency_goal_applied"] is False
    assert any("measured on a 2-core CPU (AMD EPYC), not on the deployment a10g: the 1,000 ms p95 goal is not applied"
               in c for c in rec["cautions"])


def test_latency_measured_on_the_deployment_gpu_is_a_goal():
    runs = [make_row("prompt", "4-shot", 0.85, p95=2500.0), make_row("rag", "top-4", 0.6, p95=400.0)]
    rec = recommend(make_results(runs, device=A10G))
    assert rec["latency_goal_applied"] is True and rec["meets_goals"] is False
    assert any("A relaxed latency goal: prompting 4-shot meets everything else at p95 2,500 ms" in line
               for line in rec["what_would_meet_goals"])


def test_training_budget_is_a_goal():
    runs = [make_row("full", "all-weights", 0.95, train_usd=900.0)]
    rec = recommend(make_results(runs))
    assert rec["meets_goals"] is False
    assert any("A larger training budget: $900 would let full fine-tuning all-weights through" in line
               for line in rec["what_would_meet_goals"])


def test_unpriced_results_still_recommend_on_quality():
    runs = [make_row("lora", "r8", 0.9, train_usd=1.0), make_row("prompt", "4-shot", 0.85)]
    for row in runs:
        for key in ("train_usd", "serve_usd_per_1k", "serve_usd_per_month", "data_usd"):
            row.pop(key)
    rec = recommend(make_results(runs, priced=False))
    assert rec["strategy"] == "prompt"  # no prices: the simplest adequate arm
    assert any("not priced" in c for c in rec["cautions"]) and rec["break_even"] == []


def test_no_finished_run():
    rec = recommend(make_results([make_row("prompt", "0-shot", None, status="failed", error="boom")]))
    assert rec["strategy"] is None and rec["verdict"] == "No run finished: nothing to recommend."


def test_measured_combination_is_named_and_can_win():
    runs = [make_row("lora+rag", "r8-top-4", 0.88, train_usd=0.2, data_usd=100.0),
            make_row("rag", "top-4", 0.7)]
    rec = recommend(make_results(runs))
    assert rec["strategy"] == "lora+rag" and rec["label"] == "LoRA + RAG r8-top-4"
    assert strategy_name("full+rag") == "full fine-tuning + RAG"


def test_goal_inside_the_interval_is_a_caveat():
    rec = recommend(make_results([make_row("prompt", "4-shot", 0.81)]))
    assert any("within the test set's sampling error of the 0.80 goal" in c for c in rec["cautions"])


def test_break_even_is_part_of_the_recommendation():
    runs = [make_row("prompt", "4-shot", 0.5, data_usd=10.0, per_1k=0.02),
            make_row("lora", "r8", 0.9, train_usd=0.12, data_usd=960.0, per_1k=0.008)]
    analysis = analyse(make_results(runs))
    (pair,) = analysis.recommendation["break_even"]
    # (960.12 - 10) / (12 x (0.02 - 0.008) / 1000) = 6,598,055.6 requests a month
    assert pair["monthly_requests"] == pytest.approx(6_598_055.6, rel=1e-6)
    assert "cheaper over 12 months above 6,598,056 requests a month (the task expects 1,000,000)" in pair["sentence"]
    assert analysis.recommendation["break_even_basis"].startswith("Break-even compares marginal serving cost")


def test_store_recommendation_rewrites_results_json(tmp_path):
    results = make_results([make_row("prompt", "0-shot", 0.85)])
    store_recommendation(tmp_path, results)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["recommendation"]["strategy"] == "prompt" and stored["runs"] == results["runs"]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left behind
