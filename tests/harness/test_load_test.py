"""One load-test level: requests cycled over the prompts, at most ``concurrency`` in flight, failures counted apart."""

from __future__ import annotations

import threading
import time

import pytest

from harness.endpoints import Completion
from harness.load_test import Messages, Streamed, level, run_load_test
from harness.meters import percentile
from harness.spec import LoadTest

PROMPTS = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]


class FakeEndpoint:
    """``send`` as EndpointClient.stream behaves: one answer per prompt, after ``delay_s``; tracks what is in flight."""

    def __init__(self, delay_s: float = 0.02, *, fail: set[str] = frozenset(), from_usage: bool = True):
        self.delay_s, self.fail, self.from_usage = delay_s, fail, from_usage
        self.sent: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def stream(self, messages: Messages) -> Streamed:
        prompt = messages[-1]["content"]
        with self.lock:
            self.sent.append(prompt)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            latency = 100.0 + 10 * len(self.sent)  # distinct, known latencies
        time.sleep(self.delay_s)
        with self.lock:
            self.in_flight -= 1
        if prompt in self.fail:
            return Completion("", 0, 0, 0.0, failed=True), None, False
        return Completion("ok", 10, 5, latency), latency / 4, self.from_usage


def test_a_level_cycles_the_prompts_and_keeps_concurrency_in_flight():
    fake = FakeEndpoint(delay_s=0.03)
    result = level(fake.stream, PROMPTS, concurrency=4, requests=8)
    assert sorted(fake.sent) == sorted(["q0", "q1", "q2"] * 2 + ["q0", "q1"])
    assert fake.most_in_flight == 4
    assert (result.concurrency, result.requests, result.errors) == (4, 8, 0)
    # 8 requests of 30 ms, 4 at a time: at least 60 ms of wall time, so at most ~133 requests/s
    assert 10 < result.requests_per_s <= 8 / 0.06
    assert result.output_tokens_per_s == pytest.approx(result.requests_per_s * 5, rel=0.01)
    latencies = [100.0 + 10 * n for n in range(1, 9)]
    assert result.latency_ms_p50 == pytest.approx(percentile(latencies, 50), abs=0.05)
    assert result.latency_ms_p95 == pytest.approx(percentile(latencies, 95), abs=0.05)
    assert result.ttft_ms_p50 == pytest.approx(percentile([x / 4 for x in latencies], 50), abs=0.05)
    assert result.output_tokens_from == "usage"


def test_concurrency_one_sends_one_at_a_time():
    fake = FakeEndpoint(delay_s=0.01)
    result = level(fake.stream, PROMPTS, concurrency=1, requests=5)
    assert fake.sent == ["q0", "q1", "q2", "q0", "q1"] and fake.most_in_flight == 1
    assert result.requests_per_s <= 1 / 0.01


def test_failed_requests_are_errors_left_out_of_throughput_and_latency():
    fake = FakeEndpoint(delay_s=0.005, fail={"q1"})
    result = level(fake.stream, PROMPTS, concurrency=2, requests=6)
    assert result.errors == 2 and result.requests == 6
    answered = [100.0 + 10 * (i + 1) for i, p in enumerate(fake.sent) if p != "q1"]
    assert len(answered) == 4
    assert result.latency_ms_p95 == pytest.approx(percentile(answered, 95), abs=0.05)
    all_failed = level(FakeEndpoint(delay_s=0.0, fail={"q0", "q1", "q2"}).stream, PROMPTS, 2, 4)
    assert all_failed.errors == 4 and all_failed.requests_per_s == 0 and all_failed.output_tokens_per_s == 0
    assert all_failed.latency_ms_p50 is None and all_failed.latency_ms_p95 is None and all_failed.ttft_ms_p50 is None


def test_output_tokens_from_stream_chunks_when_any_answer_lacked_usage():
    result = level(FakeEndpoint(delay_s=0.0, from_usage=False).stream, PROMPTS, 2, 3)
    assert result.output_tokens_from == "stream chunks"


def test_run_load_test_runs_each_distinct_level_lowest_first():
    fake = FakeEndpoint(delay_s=0.0)
    levels = run_load_test(fake, PROMPTS, LoadTest(concurrency=[8, 2, 2, 1], requests=4))
    assert [lv.concurrency for lv in levels] == [1, 2, 8]
    assert len(fake.sent) == 12 and all(lv.requests == 4 for lv in levels)
