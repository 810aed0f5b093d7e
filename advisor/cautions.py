"""What the reader must know before trusting the numbers: failed runs, latency measured on other hardware, a
quick look, unpriced runs, and endpoint rows' missing prices, unknown capacity and plain http."""

from __future__ import annotations

from advisor.costs.compute import catalog_gpu_for
from advisor.pricing import Pricing, ServeBasis
from advisor.wording import hardware_name, strategy_name
from harness.endpoint_checks import plain_http_remote


def latency_basis(pricing: Pricing) -> tuple[bool, str]:
    """Whether the p95 goal can be checked directly, and a sentence saying on what latency was measured."""
    device, task = pricing.comparison.device, pricing.comparison.task
    deployment = task.deployment.gpu
    hardware = hardware_name(device)
    if deployment and catalog_gpu_for(device) == deployment:
        return True, (
            f"Latency was measured on {hardware}, the deployment hardware ({deployment}): "
            f"the p95 goal is checked as is."
        )
    goal = task.goals.p95_latency_ms
    held = f"the {goal:,.0f} ms p95 goal is not applied" if goal else "there is no p95 goal"
    return False, (
        f"Latency was measured on {hardware}, not on the deployment "
        f"{deployment or 'hardware'}: {held}, and arms are compared with each other. Differences show "
        f"the direction (long prompts and retrieval cost time anywhere), not the size on a GPU."
    )


def run_cautions(pricing: Pricing, latency_gated: bool, latency_note: str) -> list[str]:
    cautions = [
        f"{strategy_name(run.row.strategy)} {run.row.variant} failed and was not considered: {run.row.error}"
        for run in pricing.runs
        if not run.record.ok
    ]
    if not latency_gated:
        cautions.append(latency_note)
    if pricing.assumptions is None:
        cautions.append("The runs are not priced: the choice ignores cost.")
    cautions += endpoint_cautions(pricing)
    limit = pricing.comparison.options.limit
    if limit:
        cautions.append(f"A quick look (--limit {limit}): small subsets, not the full test set.")
    return cautions


def endpoint_cautions(pricing: Pricing) -> list[str]:
    """What the reader of an endpoint row must know: a missing price, capacity not measured, plain http."""
    cautions = []
    endpoints = pricing.comparison.task.endpoints
    for run in pricing.runs:
        name = run.row.endpoint
        if not name or not run.record.ok:
            continue
        label = f"{strategy_name(run.row.strategy)} {run.row.variant}"
        if run.costs.price_missing:
            cautions.append(
                f"{label}: no price is known for model {endpoints[name].model} (not in data/catalog/api_prices.yaml): "
                f"its serving is priced as missing, not 0, and it cannot win on cost; set endpoints.{name}.price."
            )
        elif run.costs.serve_basis is ServeBasis.MEASURED_CAPACITY and run.costs.serve_usd_per_1k is None:
            cautions.append(
                f"{label}: self-hosted, but no load-test level met the p95 goal without errors (or the load test "
                f"was off): its capacity, and so its cost, is unknown."
            )
    for name, endpoint in endpoints.items():
        if plain_http_remote(endpoint.base_url):
            cautions.append(
                f"Endpoint {name} is reached over plain http at a host other than this machine "
                f"({endpoint.base_url}): prompts, answers and the key cross the network unencrypted; use https."
            )
    return cautions
