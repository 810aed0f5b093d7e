"""The load test of an endpoint variant: the same prompts, streamed, at several numbers of requests in flight.

At each concurrency level ``requests`` requests (the run's test prompts, cycled) go through a pool of that many
threads, each streaming its answer; the level's wall time gives requests/s and output tokens/s, each request's
send-to-last-token time the p50/p95 latency, its first streamed token the time to first token. A request still
failing after the client's retries counts as an error. Requests are live (never cached) and count against the
run's budget: a load test measures the endpoint, not the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from harness.endpoints import Completion, EndpointClient
from harness.meters import percentile
from harness.record import LoadLevel
from harness.spec import LoadTest

Messages = list[dict[str, str]]
Streamed = tuple[Completion, float | None, bool]  # completion, ms to first token, output tokens from usage


def level(send: Callable[[Messages], Streamed], prompts: list[Messages], concurrency: int, requests: int) -> LoadLevel:
    """One level: ``requests`` prompts (cycled) with ``concurrency`` in flight at once."""
    batch = [prompts[i % len(prompts)] for i in range(requests)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(send, batch))
    wall_s = time.perf_counter() - start
    answered = [r for r in results if not r[0].failed]
    latencies = [c.latency_ms for c, _, _ in answered]
    first_tokens = [t for _, t, _ in answered if t is not None]
    output_tokens = sum(c.output_tokens for c, _, _ in answered)
    p50, p95, ttft = percentile(latencies, 50), percentile(latencies, 95), percentile(first_tokens, 50)
    return LoadLevel(
        concurrency=concurrency,
        requests=requests,
        requests_per_s=round(len(answered) / wall_s, 3),
        output_tokens_per_s=round(output_tokens / wall_s, 2),
        latency_ms_p50=round(p50, 1) if p50 is not None else None,
        latency_ms_p95=round(p95, 1) if p95 is not None else None,
        ttft_ms_p50=round(ttft, 1) if ttft is not None else None,
        errors=len(results) - len(answered),
        output_tokens_from="usage" if answered and all(u for _, _, u in answered) else "stream chunks",
    )


def run_load_test(client: EndpointClient, prompts: list[Messages], settings: LoadTest) -> list[LoadLevel]:
    """Every level of ``settings``, lowest concurrency first."""
    return [level(client.stream, prompts, c, settings.requests) for c in sorted(set(settings.concurrency))]
