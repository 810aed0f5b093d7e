"""Serving cost: tokens per request per approach, GPU time per request, GPUs and dollars per month."""

from __future__ import annotations

import pytest

from advisor.costs import RequestShape, estimate_serving
from advisor.costs.serving import HOURS_PER_MONTH
from harness import catalog
from harness.errors import UserError
from harness.strategies import STRATEGIES

# each strategy's serving method (its traits)
METHODS = {name: strategy.traits.serving_method for name, strategy in STRATEGIES.items()}


def test_prompting_and_rag_pay_for_context_a_fine_tuned_model_does_not():
    request = RequestShape()
    tokens = {name: request.prompt_tokens(method) for name, method in METHODS.items()}
    assert tokens["lora"] == tokens["qlora"] == tokens["full"] == request.template_tokens + request.input_tokens
    assert tokens["prompt"] == tokens["lora"] + request.instruction_tokens + request.shots * request.shot_tokens
    assert tokens["rag"] == tokens["lora"] + request.instruction_tokens + request.rag_chunks * request.chunk_tokens


def test_longer_prompts_cost_more_per_request():
    costs = {
        name: estimate_serving("llama-3.1-8b", method, "a10g", 1_000_000).usd_per_1k_requests
        for name, method in METHODS.items()
    }
    assert costs["rag"] > costs["prompt"] > costs["lora"] == costs["full"]


def test_monthly_cost_is_whole_gpus_for_730_hours():
    estimate = estimate_serving("llama-3.1-8b", "prompt", "a10g", 50_000_000)
    a10g = catalog.gpus()["a10g"]
    capacity = estimate.requests_per_replica_hour * HOURS_PER_MONTH
    assert estimate.replicas == -(-50_000_000 // capacity)
    assert estimate.usd_per_month == pytest.approx(estimate.gpus * HOURS_PER_MONTH * a10g["usd_per_hour"])
    assert estimate_serving("llama-3.1-8b", "prompt", "a10g", 0).usd_per_month == 0


def test_small_batch_decode_is_bandwidth_bound():
    # one request: every output token reads all 141 GB of bf16 weights (+ a little KV cache)
    request = RequestShape(shots=0, output_tokens=100)
    estimate = estimate_serving("llama-3.1-70b", "prompt", "h100-sxm", 1, request=request)
    assert estimate.decode_bound == "memory bandwidth"
    assert estimate.gpus_per_replica == 2 and not estimate.fits  # 141 GB of weights: two 80 GB H100s


def test_rag_includes_the_query_embedding():
    estimate = estimate_serving("smollm2-135m-instruct", "rag", "l4", 1000)
    embedder = catalog.embedders()["all-minilm-l6-v2"]["params"]
    query = RequestShape().input_tokens
    assert estimate.prefill_flops == 2 * 134_515_008 * estimate.prompt_tokens + 2 * embedder * query


def test_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="choose one of: prompt, rag, fine-tuned"):
        estimate_serving("llama-3.1-8b", "dpo", "a10g", 10)
