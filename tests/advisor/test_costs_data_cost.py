"""The data-cost model and its task-file block."""

from __future__ import annotations

import pytest

from advisor.costs import DataCostConfig, data_cost
from harness.errors import UserError
from harness.schema import build, schema_rows


def test_seed_004_worked_example():
    # seed 004 (Learnixo, "What Is Fine-Tuning?", 2026-05-15): 1,000 examples, 5 min each at $30/h, 50 % LLM-
    # generated at 200 tokens and $5 per million -> human 1,250.00 + LLM 0.50 = total 1,250.50, 41.7 hours.
    # Its formula has no review step.
    cost = data_cost(
        1000,
        DataCostConfig(
            minutes_per_example=5,
            hourly_rate_usd=30,
            llm_generated_fraction=0.5,
            llm_tokens_per_example=200,
            llm_usd_per_million_tokens=5,
            review_fraction=0,
        ),
    )
    assert (cost.human_examples, cost.llm_examples) == (500, 500)
    assert cost.human_writing_usd == pytest.approx(1250.0)
    assert cost.llm_generation_usd == pytest.approx(0.5)
    assert cost.total_usd == pytest.approx(1250.5)
    assert round(cost.human_hours, 1) == 41.7


def test_reviewing_generated_examples_costs_human_time():
    config = DataCostConfig(llm_generated_fraction=1.0, review_fraction=0.5, review_minutes_per_example=2)
    cost = data_cost(600, config)
    assert cost.human_examples == 0
    assert cost.review_usd == pytest.approx(300 * 2 / 60 * config.hourly_rate_usd)


def test_fractions_do_not_lose_an_example_to_rounding():
    cost = data_cost(1000, DataCostConfig(llm_generated_fraction=0.9))
    assert (cost.human_examples, cost.llm_examples) == (100, 900)


def test_task_file_block_is_checked_and_documented():
    config = build(
        DataCostConfig, {"minutes_per_example": 3, "llm_generated_fraction": 0.25}, file="t.yaml", prefix="data_cost"
    )
    assert config.minutes_per_example == 3.0 and config.hourly_rate_usd == 30.0
    with pytest.raises(UserError, match="t.yaml: data_cost.hourly_rate_usd: -1.0 is below the minimum 0"):
        build(DataCostConfig, {"hourly_rate_usd": -1}, file="t.yaml", prefix="data_cost")
    with pytest.raises(UserError, match="data_cost.review_fraction: 2.0 is above the maximum 1"):
        build(DataCostConfig, {"review_fraction": 2}, file="t.yaml", prefix="data_cost")
    assert all(text for _, _, _, text in schema_rows(DataCostConfig))
