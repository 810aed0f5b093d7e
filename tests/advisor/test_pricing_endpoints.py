"""Endpoint arms in the advisor: per-token and measured-capacity pricing, the hosted break-even (checked by brute
force), and what the recommendation does with an endpoint arm."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from advisor.breakeven import ArmEconomics, hosted_break_even
from advisor.costs.data_cost import DataCostConfig
from advisor.costs.serving import HOURS_PER_MONTH
from advisor.pricing import Pricing, RunCosts, measured_capacity, price
from advisor.recommend import analyse
from harness import catalog
from harness.catalog import TokenPrice
from harness.record import EndpointUse, LoadLevel
from harness.runstore import EndpointSummary, StoredRun
from harness.spec import SelfHostedSpec
from tests.advisor.factories import A10G, make_comparison, make_record

GPT = EndpointSummary("gpt-4o-mini", "https://api.openai.com/v1", TokenPrice(0.15, 0.60))
UNPRICED = EndpointSummary("mystery-model", "https://llm.example.com/v1", None)


def self_hosted(replicas: int = 1, model: str = "smollm2-135m-instruct") -> EndpointSummary:
    return EndpointSummary(model, "http://127.0.0.1:8000/v1", None, SelfHostedSpec(gpu="a10g", replicas=replicas))


def load_level(concurrency: int, rps: float, p95: float, errors: int = 0) -> LoadLevel:
    return LoadLevel(
        concurrency=concurrency,
        requests=64,
        requests_per_s=rps,
        output_tokens_per_s=rps * 5,
        latency_ms_p50=p95 * 0.7,
        latency_ms_p95=p95,
        ttft_ms_p50=p95 * 0.2,
        errors=errors,
    )


LEVELS = [
    load_level(1, 2.0, 400.0),
    load_level(4, 6.0, 900.0),
    load_level(8, 9.0, 950.0, errors=2),  # faster, but some requests failed
    load_level(16, 12.0, 1500.0),  # fastest, but over a 1,000 ms goal
]


def endpoint_run(
    variant: str,
    quality: float,
    endpoint: str,
    summary: EndpointSummary,
    *,
    strategy: str = "prompt",
    p95: float = 500.0,
    prompt_tokens: float = 120.0,
    output_tokens: float = 5.0,
    load_test: list[LoadLevel] | None = None,
    params: dict[str, Any] | None = None,
) -> StoredRun:
    """A record as an endpoint variant writes it: the endpoint's use, its tokens from usage, its load test."""
    record = make_record(
        strategy,
        variant,
        quality,
        p95=p95,
        prompt_tokens=prompt_tokens,
        params={**(params if params is not None else {"shots": 4}), "endpoint": endpoint},
    )
    assert record.eval_info is not None
    record.eval_info = replace(record.eval_info, output_tokens_mean=output_tokens)
    record.endpoint = EndpointUse(
        name=endpoint,
        model=summary.model,
        base_url=summary.base_url,
        requests=200,
        cache_hits=0,
        retries=1,
        errors=0,
        input_tokens=int(prompt_tokens * 200),
        output_tokens=int(output_tokens * 200),
        usd_spent=summary.price.usd(prompt_tokens * 200, output_tokens * 200) if summary.price else None,
    )
    record.load_test = load_test
    return StoredRun(record, f"runs/{strategy}-{variant}.json")


def local_run(strategy: str, variant: str, quality: float, **record: Any) -> StoredRun:
    return StoredRun(make_record(strategy, variant, quality, **record), f"runs/{strategy}-{variant}.json")


def priced(runs: list[StoredRun], endpoints: dict[str, EndpointSummary], **settings: Any) -> Pricing:
    comparison = make_comparison(runs, **settings)
    comparison.task.endpoints = endpoints
    return price(comparison, DataCostConfig())


def costs_of(pricing: Pricing, variant: str) -> RunCosts:
    return next(run.costs for run in pricing.runs if run.row.variant == variant)


# --- hosted: per token -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tokens_in", "tokens_out", "monthly"), [(120.0, 5.0, 1_000_000), (2345.6, 78.9, 37_000)])
def test_a_hosted_arm_is_priced_per_token_with_no_gpu_floor(tokens_in, tokens_out, monthly):
    runs = [endpoint_run("4-shot@gpt", 0.9, "gpt", GPT, prompt_tokens=tokens_in, output_tokens=tokens_out)]
    costs = costs_of(priced(runs, {"gpt": GPT}, monthly_requests=monthly), "4-shot@gpt")
    per_1k = (tokens_in * 0.15 + tokens_out * 0.60) * 1000 / 1e6
    assert costs.serve_basis == "per token" and not costs.price_missing
    assert costs.serve_usd_per_1k == pytest.approx(per_1k, rel=1e-12)
    assert costs.serve_usd_per_month == pytest.approx(per_1k * monthly / 1000, rel=1e-12)
    assert costs.serve_requests_per_gpu_hour is None and costs.capacity_concurrency is None
    assert costs.labelled_examples == 4 and costs.data_usd is not None and costs.train_usd is None


def test_a_hosted_arm_without_a_price_is_missing_not_free():
    runs = [endpoint_run("4-shot@mystery", 0.9, "mystery", UNPRICED)]
    costs = costs_of(priced(runs, {"mystery": UNPRICED}), "4-shot@mystery")
    assert costs.price_missing and costs.serve_basis == "per token"
    assert costs.serve_usd_per_1k is None and costs.serve_usd_per_month is None


def test_local_arms_beside_an_endpoint_keep_the_serving_model():
    runs = [local_run("prompt", "4-shot", 0.8, params={"shots": 4}), endpoint_run("4-shot@gpt", 0.9, "gpt", GPT)]
    pricing = priced(runs, {"gpt": GPT})
    local = costs_of(pricing, "4-shot")
    assert local.serve_basis == "serving model" and local.serve_requests_per_gpu_hour
    assert pricing.assumptions is not None and any("endpoint rows" in n for n in pricing.assumptions.notes)


# --- self-hosted: measured capacity ----------------------------------------------------------------------------


def test_measured_capacity_is_the_fastest_level_within_the_goal_and_without_errors():
    assert measured_capacity(LEVELS, 1000.0) == LEVELS[1]
    assert measured_capacity(LEVELS, 900.0) == LEVELS[1]  # p95 equal to the goal meets it
    assert measured_capacity(LEVELS, 899.0) == LEVELS[0]
    assert measured_capacity(LEVELS, None) == LEVELS[3]  # no goal: the most requests/s without errors
    assert measured_capacity(LEVELS, 100.0) is None
    assert measured_capacity(None, 1000.0) is None and measured_capacity([], None) is None
    assert measured_capacity([load_level(1, 0.0, 10.0)], None) is None


@pytest.mark.parametrize(("replicas", "monthly"), [(1, 1_000_000), (2, 1_000_000), (1, 20_000_000), (3, 50_000_000)])
def test_a_self_hosted_arm_is_priced_from_its_measured_capacity(replicas, monthly):
    summary = self_hosted(replicas)
    runs = [endpoint_run("4-shot@box", 0.9, "box", summary, load_test=LEVELS)]
    costs = costs_of(priced(runs, {"box": summary}, monthly_requests=monthly, p95_latency_ms=1000.0), "4-shot@box")
    usd_per_hour = catalog.gpus()["a10g"]["usd_per_hour"]
    per_replica_hour = 6.0 * 3600 / replicas  # the concurrency-4 level: 6 requests/s over all replicas
    assert costs.serve_basis == "measured capacity" and costs.capacity_concurrency == 4
    assert costs.serve_requests_per_gpu_hour == pytest.approx(per_replica_hour)
    assert costs.serve_usd_per_1k == pytest.approx(1000 * usd_per_hour / per_replica_hour)
    replicas_needed = math.ceil(monthly / (per_replica_hour * HOURS_PER_MONTH))
    assert costs.serve_usd_per_month == pytest.approx(replicas_needed * HOURS_PER_MONTH * usd_per_hour)
    assert costs.serve_requests_per_gpu_hour_predicted is not None and costs.serve_requests_per_gpu_hour_predicted > 0
    assert not costs.price_missing


def test_a_self_hosted_model_outside_the_catalog_is_predicted_with_the_task_model():
    summary = self_hosted(model="my-org/custom-finetune")
    runs = [endpoint_run("4-shot@box", 0.9, "box", summary, load_test=LEVELS)]
    costs = costs_of(priced(runs, {"box": summary}), "4-shot@box")
    assert costs.serve_requests_per_gpu_hour_predicted is not None and costs.serve_usd_per_1k is not None


@pytest.mark.parametrize("levels", [None, [load_level(1, 3.0, 5000.0), load_level(4, 9.0, 400.0, errors=1)]])
def test_a_self_hosted_arm_without_a_qualifying_level_is_not_priced(levels):
    summary = self_hosted()
    runs = [endpoint_run("4-shot@box", 0.9, "box", summary, load_test=levels)]
    pricing = priced(runs, {"box": summary}, p95_latency_ms=1000.0)
    costs = costs_of(pricing, "4-shot@box")
    assert costs.serve_basis == "measured capacity" and costs.serve_usd_per_1k is None
    assert costs.serve_usd_per_month is None and costs.capacity_concurrency is None
    cautions = analyse(pricing).recommendation.cautions
    assert any("4-shot@box" in c and "capacity" in c and "unknown" in c for c in cautions)


# --- the hosted break-even, by brute force ---------------------------------------------------------------------


def economics(
    one_time: float, replica_month: float, capacity: float, hosted_per_request: float, hosted_one_time: float = 0.0
) -> tuple[ArmEconomics, ArmEconomics]:
    """A self-hosted arm whose replica serves ``capacity`` requests a month for ``replica_month`` dollars, and a
    hosted arm at ``hosted_per_request`` dollars a request."""
    tuned = ArmEconomics("LoRA r8", "lora", one_time, replica_month / capacity * 1000, replica_month)
    hosted = ArmEconomics("prompting 4-shot@gpt", "prompt", hosted_one_time, hosted_per_request * 1000, None, "gpt")
    assert tuned.requests_per_replica_month == pytest.approx(capacity)
    return tuned, hosted


def difference(tuned: ArmEconomics, hosted: ArmEconomics, volumes: np.ndarray, months: float) -> np.ndarray:
    """Self-hosted minus hosted total over the horizon: negative where self-hosting costs less."""
    return tuned.provisioned_total(volumes, months) - hosted.marginal_total(volumes, months)


ABOVE = [
    # one_time, replica $/month, capacity/month, hosted $/request, hosted one-time, months
    (500.0, 100.0, 1000.0, 0.15, 0.0, 12),  # crosses within the first replica
    (5000.0, 100.0, 1000.0, 0.15, 0.0, 6),  # crosses at the 17th replica
    (960.5, 737.3, 505_000 * 730, 1.74e-5, 10.0, 12),  # LoRA on an A10G against gpt-4o-mini
    (0.0, 100.0, 1000.0, 0.11, 0.0, 24),  # nothing up front: pays back once a replica is paid for
    (40_000.0, 2000.0, 50_000.0, 0.05, 2000.0, 3),  # many replicas before it pays back
]


@pytest.mark.parametrize(("one_time", "replica", "capacity", "per_request", "hosted_one_time", "months"), ABOVE)
def test_the_hosted_crossing_is_where_brute_force_finds_it(
    one_time, replica, capacity, per_request, hosted_one_time, months
):
    tuned, hosted = economics(one_time, replica, capacity, per_request, hosted_one_time)
    pair = hosted_break_even(tuned, hosted, months)
    assert pair.basis == "hosted" and pair.outcome == "above" and pair.monthly_requests is not None
    crossing = pair.monthly_requests
    volumes = np.linspace(0.0, max(3 * crossing, 3 * capacity), 600_001)[1:]
    step = volumes[1] - volumes[0]
    diff = difference(tuned, hosted, volumes, months)
    scale = max(1.0, float(np.abs(hosted.marginal_total(volumes, months)).max())) * 1e-9
    first = volumes[np.argmax(diff <= scale)]
    assert (diff <= scale).any() and first == pytest.approx(crossing, abs=2 * step)
    assert (diff[volumes < crossing * (1 - 1e-9)] > -scale).all()  # below it, hosting per token costs less
    # at the crossing they cost the same, and just above it self-hosting costs less
    at = np.array([crossing, crossing * (1 + 1e-9)])
    assert difference(tuned, hosted, at, months)[0] == pytest.approx(0.0, abs=scale * 1e3)
    assert difference(tuned, hosted, at, months)[1] <= scale * 1e3
    # above it, self-hosting costs less at the end of every replica's band (whole replicas, fully used)
    band_ends = np.arange(math.ceil(crossing / capacity), math.ceil(crossing / capacity) + 50) * capacity
    assert (difference(tuned, hosted, band_ends[band_ends >= crossing], months) <= scale * 1e3).all()
    assert pair.total_at_crossing() == pytest.approx(float(tuned.provisioned_total(crossing, months)), rel=1e-9)
    assert str(round(crossing))[:2] in pair.sentence(None).replace(",", "")


@pytest.mark.parametrize(
    ("one_time", "replica", "capacity", "per_request"),
    [
        (500.0, 100.0, 1000.0, 0.09),  # a full replica carries $90 of hosted requests and costs $100
        (0.0, 100.0, 1000.0, 0.1),  # exactly as much: never less
        (960.5, 737.3, 505_000 * 730, 1e-6),  # a very cheap hosted model
        (100.0, 100.0, 1000.0, 0.0),  # a free hosted endpoint
    ],
)
def test_a_replica_dearer_than_the_hosted_requests_it_carries_never_pays_back(one_time, replica, capacity, per_request):
    tuned, hosted = economics(one_time, replica, capacity, per_request)
    pair = hosted_break_even(tuned, hosted, 12)
    assert pair.outcome == "never" and pair.monthly_requests is None and pair.basis == "hosted"
    volumes = np.linspace(0.0, 200 * capacity, 400_001)[1:]
    assert (difference(tuned, hosted, volumes, 12) >= -1e-9).all()
    assert "never costs less" in pair.sentence(1e6)


def test_cheaper_up_front_and_per_replica_is_always_cheaper():
    # 12 x $100 replica-months less up front than hosting: self-hosting costs less at any volume
    tuned, hosted = economics(0.0, 100.0, 1000.0, 0.15, hosted_one_time=1200.0)
    pair = hosted_break_even(tuned, hosted, 12)
    assert pair.outcome == "always" and pair.monthly_requests == 0.0
    volumes = np.linspace(0.0, 100_000.0, 200_001)
    assert (difference(tuned, hosted, volumes, 12) <= 1e-9).all()
    assert "costs less at every volume" in pair.sentence(None)


def test_an_unpriced_replica_never_breaks_even():
    tuned = ArmEconomics("LoRA r8", "lora", 10.0, 0.01, None)
    _, hosted = economics(0.0, 100.0, 1000.0, 0.15)
    assert hosted_break_even(tuned, hosted, 12).outcome == "never"


def test_never_means_self_hosting_costs_less_at_no_volume():
    # $600 less up front; a $100 replica carries $90 of hosted requests: cheaper from ~556 to 5,000 requests a month
    tuned, hosted = economics(200.0, 100.0, 1000.0, 0.09, hosted_one_time=800.0)
    pair = hosted_break_even(tuned, hosted, 12)
    volumes = np.linspace(0.0, 10_000.0, 100_001)[1:]
    cheaper = volumes[difference(tuned, hosted, volumes, 12) < -1e-9]
    assert pair.outcome != "never" or cheaper.size == 0


# --- the recommendation with endpoint arms ---------------------------------------------------------------------


def arms_by_variant(pricing: Pricing) -> dict[str, Any]:
    return {arm.variant: arm for arm in analyse(pricing).arms}


def test_an_endpoint_arm_is_held_to_the_latency_goal_when_local_arms_are_not():
    runs = [
        local_run("prompt", "4-shot", 0.9, p95=2500.0, params={"shots": 4}),
        endpoint_run("4-shot@gpt", 0.9, "gpt", GPT, p95=2500.0),
        endpoint_run("0-shot@gpt", 0.85, "gpt", GPT, p95=400.0, params={"shots": 0}),
    ]
    pricing = priced(runs, {"gpt": GPT}, p95_latency_ms=1000.0)  # measured on a CPU, deployed on an A10G
    analysis = analyse(pricing)
    assert not analysis.latency_gated and not analysis.recommendation.latency_goal_applied
    arms = {arm.variant: arm for arm in analysis.arms}
    assert "latency" not in arms["4-shot"].shortfalls  # measured here: not held against the GPU's goal
    assert "latency" in arms["4-shot@gpt"].shortfalls  # measured where it would serve
    assert "2,500 ms exceeds the 1,000 ms goal" in arms["4-shot@gpt"].shortfalls["latency"]
    assert "latency" not in arms["0-shot@gpt"].shortfalls
    verdicts = {v.variant: v for v in analysis.recommendation.arms}
    assert verdicts["4-shot@gpt"].misses == ["latency"] and verdicts["4-shot"].misses == []


def test_on_the_deployment_gpu_both_are_held_to_the_goal():
    runs = [
        local_run("prompt", "4-shot", 0.9, p95=2500.0, params={"shots": 4}),
        endpoint_run("4-shot@gpt", 0.9, "gpt", GPT, p95=2500.0),
    ]
    arms = arms_by_variant(priced(runs, {"gpt": GPT}, device=A10G, p95_latency_ms=1000.0))
    assert "latency" in arms["4-shot"].shortfalls and "latency" in arms["4-shot@gpt"].shortfalls


def test_a_price_missing_endpoint_arm_is_cautioned_and_cannot_win_on_cost():
    runs = [
        local_run("prompt", "4-shot", 0.85, p95=300.0, params={"shots": 4}),
        endpoint_run("4-shot@mystery", 0.95, "mystery", UNPRICED),
    ]
    analysis = analyse(priced(runs, {"mystery": UNPRICED}))
    cautions = [c for c in analysis.recommendation.cautions if "4-shot@mystery" in c]
    assert len(cautions) == 1
    assert "price" in cautions[0] and "mystery-model" in cautions[0] and "endpoints.mystery.price" in cautions[0]
    assert analysis.chosen is not None and analysis.chosen.variant == "4-shot"  # the priced arm, though lower
    assert {arm.variant: arm.total_usd for arm in analysis.arms}["4-shot@mystery"] is None


@pytest.mark.parametrize(
    ("base_url", "cautioned"),
    [
        ("http://10.0.0.7:8000/v1", True),
        ("http://gpu-box.internal:8000/v1", True),
        ("http://127.0.0.1:8000/v1", False),
        ("http://localhost:8000/v1", False),
        ("https://10.0.0.7/v1", False),
    ],
)
def test_plain_http_to_another_host_is_cautioned(base_url, cautioned):
    summary = EndpointSummary("gpt-4o-mini", base_url, TokenPrice(0.15, 0.60))
    runs = [endpoint_run("4-shot@lan", 0.9, "lan", summary)]
    cautions = analyse(priced(runs, {"lan": summary})).recommendation.cautions
    plain = [c for c in cautions if "plain http" in c]
    assert bool(plain) is cautioned
    if cautioned:
        assert "lan" in plain[0] and base_url in plain[0] and "https" in plain[0]


def test_a_hosted_arm_against_a_fine_tuned_arm_gets_a_hosted_break_even():
    runs = [
        local_run("lora", "r8", 0.92, trained=True, p95=300.0, prompt_tokens=40.0),
        local_run("prompt", "4-shot", 0.7, params={"shots": 4}),
        endpoint_run("4-shot@gpt", 0.9, "gpt", GPT),
    ]
    pricing = priced(runs, {"gpt": GPT})
    analysis = analyse(pricing)
    entries = {(e["tuned"], e["baseline"]): e for e in analysis.recommendation.break_even}
    hosted = entries[("LoRA r8", "prompting 4-shot@gpt")]
    assert hosted["basis"] == "hosted"
    assert entries[("LoRA r8", "prompting 4-shot")]["basis"] == "marginal"
    pair = next(p for p in analysis.break_evens if p.basis == "hosted")
    assert pair.baseline.endpoint == "gpt" and pair.tuned.replica_month_usd is not None
    expected = hosted_break_even(pair.tuned, pair.baseline, analysis.recommendation.horizon_months)
    assert (hosted["outcome"], hosted["monthly_requests"]) == (expected.outcome, expected.monthly_requests)
    assert hosted["sentence"] in analysis.recommendation.reasons
