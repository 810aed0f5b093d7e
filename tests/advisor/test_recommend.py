"""The recommendation from synthetic results.json dicts: which arm wins, and the sentences that say why."""

from __future__ import annotations

import dataclasses
import json

import pytest

from advisor.costs.data_cost import DataCostConfig
from advisor.recommend import analyse
from advisor.report import publish
from harness import strategies
from harness.strategies.base import Rung, StrategyTraits
from tests.advisor.factories import (
    A10G,
    learning_curve_rows,
    make_comparison,
    make_results,
    make_row,
    recommend,
    save_comparison,
)


def test_cheapest_adequate_arm_wins_and_reasons_carry_the_numbers():
    runs = [
        make_row("prompt", "4-shot", 0.82, data_usd=10.0, per_1k=0.02, prompt_tokens=240),
        make_row("lora", "r8", 0.91, train_usd=0.12, data_usd=960.0, per_1k=0.008, prompt_tokens=40),
    ]
    rec = recommend(make_results(runs))
    assert (rec["strategy"], rec["variant"], rec["meets_goals"]) == ("prompt", "4-shot", True)
    # prompting: $10 data + 12 x $737 serving = $8,854; LoRA: $960.12 + $8,844 = $9,804
    assert "0.820 accuracy ≥ the 0.80 goal" in rec["reasons"][0] and "$8,854 over 12 months" in rec["reasons"][0]
    assert any("LoRA r8 also meets the goals (0.910) at $9,804" in line for line in rec["reasons"])
    assert rec["what_would_meet_goals"] == []


def test_a_more_expensive_arm_wins_when_only_it_meets_the_goal():
    runs = [
        make_row("prompt", "4-shot", 0.55, data_usd=10.0),
        make_row("rag", "top-4", 0.70, data_usd=960.0, per_1k=0.03),
        make_row("lora", "r8", 0.86, train_usd=0.12, data_usd=960.0, per_1k=0.008),
    ]
    rec = recommend(make_results(runs))
    assert (rec["strategy"], rec["meets_goals"]) == ("lora", True)
    assert any("RAG top-4 (best RAG run) falls short: 0.700 is below the 0.80 goal" in line for line in rec["reasons"])
    assert any(line.startswith("Against RAG top-4") or "than RAG top-4" in line for line in rec["reasons"])


def test_failed_arms_are_ignored_and_named():
    runs = [
        make_row("prompt", "0-shot", 0.85),
        make_row("full", "all-weights", None, status="failed", error="worker process killed by SIGKILL"),
    ]
    rec = recommend(make_results(runs))
    assert rec["strategy"] == "prompt" and rec["meets_goals"]
    assert any(
        "full fine-tuning all-weights failed and was not considered: worker process killed by SIGKILL" in c
        for c in rec["cautions"]
    )
    assert [a["strategy"] for a in rec["arms"]] == ["prompt"]


def test_nothing_meets_the_goals_says_so_and_what_would():
    runs = [make_row("prompt", "4-shot", 0.15, data_usd=10.0, per_1k=0.02), *learning_curve_rows()]
    rec = recommend(make_results(runs, quality=0.9))
    assert rec["meets_goals"] is False
    assert rec["verdict"].startswith("No measured run meets the goals. Closest: LoRA r8 at 0.720")
    more, bigger = rec["what_would_meet_goals"]
    assert more.startswith("More examples — LoRA r8 (3 runs, 96–384 examples)")
    assert bigger.startswith(
        "A bigger base model (the ladder's answer when the task needs a capability the model "
        "lacks): smollm2-360m-instruct has 2.7x the parameters"
    )
    assert rec["learning_curves"][0]["points"][0]["examples"] == 96


def test_reachable_goal_prices_the_extra_examples():
    # q = 0.95 - 3 n^-0.5 through 96, 192, 384 examples; 0.85 needs (3 / 0.1)^2 = 900 examples
    qualities = [0.95 - 3 * n**-0.5 for n in (96, 192, 384)]
    rec = recommend(make_results([*learning_curve_rows(qualities)], quality=0.85))
    more = rec["what_would_meet_goals"][0]
    assert "reaches 0.85 at ≈ 900 examples" in more
    # 516 more examples x 5 min at $30/h = $1,290 of data and 43 person-hours
    assert "516 more than the 384 you have, ≈ $1,290 of data (43 person-hours)" in more
    assert "Unreliable" in more  # 200 test examples cannot pin three parameters down


def test_near_tie_goes_to_the_simpler_arm():
    runs = [
        make_row("lora", "r8", 0.9, train_usd=0.1, data_usd=0.0, per_month=700.0),
        make_row("rag", "top-4", 0.85, data_usd=0.0, per_month=720.0),
    ]
    rec = recommend(make_results(runs))
    assert rec["strategy"] == "rag"  # 12 x 720 = 8,640 is within 5 % of 8,400.10
    assert any("within 5% of each other, so the simpler arm wins" in line for line in rec["reasons"])


def test_latency_measured_on_a_cpu_is_not_held_against_a_gpu_goal():
    runs = [make_row("prompt", "4-shot", 0.85, p95=2500.0)]
    rec = recommend(make_results(runs))
    assert rec["meets_goals"] and rec["latency_goal_applied"] is False
    assert any(
        "measured on a 2-core CPU (AMD EPYC), not on the deployment a10g: the 1,000 ms p95 goal is not applied" in c
        for c in rec["cautions"]
    )


def test_latency_measured_on_the_deployment_gpu_is_a_goal():
    runs = [make_row("prompt", "4-shot", 0.85, p95=2500.0), make_row("rag", "top-4", 0.6, p95=400.0)]
    rec = recommend(make_results(runs, device=A10G))
    assert rec["latency_goal_applied"] is True and rec["meets_goals"] is False
    assert any(
        "A relaxed latency goal: prompting 4-shot meets everything else at p95 2,500 ms" in line
        for line in rec["what_would_meet_goals"]
    )


def test_training_budget_is_a_goal():
    runs = [make_row("full", "all-weights", 0.95, train_usd=900.0)]
    rec = recommend(make_results(runs))
    assert rec["meets_goals"] is False
    assert any(
        "A larger training budget: $900 would let full fine-tuning all-weights through" in line
        for line in rec["what_would_meet_goals"]
    )


def test_unpriced_results_still_recommend_on_quality():
    runs = [make_row("lora", "r8", 0.9, train_usd=1.0), make_row("prompt", "4-shot", 0.85)]
    rec = recommend(make_results(runs, priced=False))
    assert rec["strategy"] == "prompt"  # no prices: the simplest adequate arm
    assert any("not priced" in c for c in rec["cautions"]) and rec["break_even"] == []


def test_no_finished_run():
    rec = recommend(make_results([make_row("prompt", "0-shot", None, status="failed", error="boom")]))
    assert rec["strategy"] is None and rec["verdict"] == "No run finished: nothing to recommend."


def test_a_registered_combination_is_named_by_its_traits_and_can_win(monkeypatch):
    """A new arm is a registry entry: its traits name it, rank it and price it; nothing else needs to know it."""
    lora = strategies.STRATEGIES["lora"]
    combined = type(
        "LoraRag",
        (),
        {
            "name": "lora+rag",
            "config_type": lora.config_type,
            "traits": dataclasses.replace(
                lora.traits, display_name="LoRA + RAG", ladder_rank=Rung.FULL, serving_method="rag"
            ),
        },
    )()
    assert isinstance(combined.traits, StrategyTraits)
    monkeypatch.setitem(strategies.STRATEGIES, "lora+rag", combined)
    runs = [make_row("lora+rag", "r8-top-4", 0.88, train_usd=0.2, data_usd=100.0), make_row("rag", "top-4", 0.7)]
    rec = recommend(make_results(runs))
    assert rec["strategy"] == "lora+rag" and rec["label"] == "LoRA + RAG r8-top-4"


def test_goal_inside_the_interval_is_a_caveat():
    rec = recommend(make_results([make_row("prompt", "4-shot", 0.81)]))
    assert any("within the test set's sampling error of the 0.80 goal" in c for c in rec["cautions"])


def test_break_even_is_part_of_the_recommendation():
    runs = [
        make_row("prompt", "4-shot", 0.5, data_usd=10.0, per_1k=0.02),
        make_row("lora", "r8", 0.9, train_usd=0.12, data_usd=960.0, per_1k=0.008),
    ]
    analysis = analyse(make_results(runs))
    (pair,) = analysis.recommendation.break_even
    # (960.12 - 10) / (12 x (0.02 - 0.008) / 1000) = 6,598,055.6 requests a month
    assert pair["monthly_requests"] == pytest.approx(6_598_055.6, rel=1e-6)
    assert "cheaper over 12 months above 6,598,056 requests a month (the task expects 1,000,000)" in pair["sentence"]
    assert analysis.recommendation.break_even_basis.startswith("Break-even compares marginal serving cost")


def test_publish_writes_results_json_once_with_the_recommendation(tmp_path):
    comparison = make_comparison([make_row("prompt", "0-shot", 0.85).stored])
    save_comparison(tmp_path, comparison)
    analysis, report = publish(tmp_path, comparison, DataCostConfig())
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["recommendation"]["strategy"] == "prompt" == analysis.recommendation.strategy
    assert [row["variant"] for row in stored["runs"]] == ["0-shot"] and stored["runs"][0]["data_usd"] == 0
    assert stored["costs"]["gpu"] == "a10g" and report.is_file()
    written = sorted(p.name for p in tmp_path.iterdir())  # no temp files
    assert written == ["predictions.parquet", "report.html", "results.csv", "results.json", "runs"]
