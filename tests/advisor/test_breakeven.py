"""Break-even arithmetic, checked against hand-computed numbers."""

from __future__ import annotations

import pytest

from advisor.breakeven import ArmEconomics, break_even, volume_range
from advisor.pricing import RunCosts


def arm(label, one_time, per_1k, replica_month=None):
    return ArmEconomics(
        label=label,
        strategy=label.split()[0],
        one_time_usd=one_time,
        usd_per_1k=per_1k,
        replica_month_usd=replica_month,
    )


def test_fine_tuning_pays_back_above_the_crossing():
    tuned, prompt = arm("lora r8", 300.0, 0.01), arm("prompt 4-shot", 0.0, 0.04)
    pair = break_even(tuned, prompt, months=12)
    # 300 / (12 x (0.04 - 0.01) / 1000) = 833,333.3 requests a month
    assert pair.outcome == "above" and pair.monthly_requests == pytest.approx(833_333.33, rel=1e-8)
    # at the crossing both cost 300 + 12 x 833.33k x 0.01 / 1000 = $400 over the year
    assert tuned.marginal_total(pair.monthly_requests, 12) == pytest.approx(400.0)
    assert prompt.marginal_total(pair.monthly_requests, 12) == pytest.approx(400.0)
    assert pair.extra_one_time_usd == 300.0 and pair.saving_per_1k_usd == pytest.approx(0.03)


def test_a_longer_horizon_pays_back_at_a_lower_volume():
    tuned, rag = arm("lora r8", 300.0, 0.01), arm("rag top-4", 60.0, 0.05)
    # (300 - 60) / (24 x 0.04 / 1000) = 250,000
    assert break_even(tuned, rag, months=24).monthly_requests == pytest.approx(250_000)


def test_cheaper_up_front_and_per_request_is_always_cheaper():
    pair = break_even(arm("lora r8", 100.0, 0.01), arm("rag top-4", 960.0, 0.03), months=12)
    assert pair.outcome == "always" and pair.monthly_requests == 0


def test_dearer_up_front_and_per_request_never_pays_back():
    pair = break_even(arm("full all", 500.0, 0.02), arm("prompt 0-shot", 0.0, 0.02), months=12)
    assert pair.outcome == "never" and pair.monthly_requests is None


def test_cheaper_up_front_but_dearer_per_request_wins_only_below():
    pair = break_even(arm("lora r8", 100.0, 0.05), arm("rag top-4", 400.0, 0.03), months=10)
    # (100 - 400) / (10 x (0.03 - 0.05) / 1000) = 1,500,000
    assert pair.outcome == "below" and pair.monthly_requests == pytest.approx(1_500_000)


def test_from_costs_reads_the_priced_run():
    costs = RunCosts(train_usd=0.5, data_usd=960.0, serve_usd_per_1k=0.002, serve_requests_per_gpu_hour=505_000.0)
    economics = ArmEconomics.of(costs, "lora", "LoRA r8")
    assert economics.one_time_usd == 960.5
    # a replica-hour: 0.002 / 1000 x 505,000 = $1.01; a month of 730 h: $737.30
    assert economics.replica_month_usd == pytest.approx(737.30)
    assert economics.requests_per_replica_month == pytest.approx(505_000 * 730)
    assert ArmEconomics.of(RunCosts(serve_usd_per_1k=None), "prompt", "p") is None


def test_always_on_replicas_are_whole():
    economics = arm("lora r8", 100.0, 0.002, replica_month=730.0)  # one replica serves 365M requests a month
    assert economics.provisioned_total(1_000, 12) == pytest.approx(100 + 12 * 730)
    assert economics.provisioned_total(400_000_000, 12) == pytest.approx(100 + 12 * 2 * 730)


def test_volume_range_spans_the_crossings_and_the_task_volume():
    pair = break_even(arm("lora r8", 300.0, 0.01), arm("prompt 4-shot", 0.0, 0.04), months=12)
    low, high = volume_range([pair], 1_000_000)
    assert low <= 833_333 <= high and low <= 1_000_000 <= high
