"""bench/serving.py's helpers on made-up levels: pooling rounds, splitting requests into rounds, the generate side's
batches, the tables and the ratios. No server, no model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from harness.record import LoadLevel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_serving", ROOT / "bench" / "serving.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def make_level(concurrency: int, rps: float, tps: float, p50: float | None, p95: float | None) -> LoadLevel:
    return LoadLevel(
        concurrency=concurrency,
        requests=24,
        requests_per_s=rps,
        output_tokens_per_s=tps,
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        ttft_ms_p50=None,
        errors=0,
    )


def test_module_loads_no_torch(bench):
    assert bench.LEVELS == (1, 4) and bench.MODEL == "smollm2-135m-instruct"
    assert bench.TASK.is_file()


@pytest.mark.parametrize(
    ("requests", "rounds", "concurrency", "sizes"),
    [(24, 3, 1, [8, 8, 8]), (24, 3, 4, [8, 8, 8]), (10, 3, 4, [4, 4, 2]), (16, 3, 4, [8, 4, 4]), (1, 3, 4, [1])],
)
def test_round_sizes_whole_batches(bench, requests, rounds, concurrency, sizes):
    got = bench.round_sizes(requests, rounds, concurrency)
    assert got == sizes and sum(got) == requests
    assert all(size % concurrency == 0 for size in got[:-1])


def test_generate_round_times_each_request_as_its_batch(bench):
    calls = []

    def send_batch(group):
        calls.append(len(group))
        return [("billing", 3)] * len(group)

    samples = bench.Samples()
    chats = [[{"role": "user", "content": str(i)}] for i in range(10)]
    bench.generate_round(send_batch, chats, 4, samples)
    assert calls == [4, 4, 2]
    assert len(samples.latencies_ms) == 10 and samples.tokens == [3] * 10
    assert len(set(samples.latencies_ms[:4])) == 1  # one batch, one latency
    assert samples.wall_s >= sum(samples.latencies_ms[i] for i in (0, 4, 8)) / 1000


def test_summarise_pools_rounds(bench):
    samples = bench.Samples(
        latencies_ms=[100.0, 200.0, 300.0, 400.0], ttfts_ms=[10.0, 30.0], tokens=[4, 4, 6, 6], wall_s=2.0, errors=1
    )
    row = bench.summarise("server", 4, samples, "stream chunks")
    lv = row.level
    assert (lv.concurrency, lv.requests, lv.errors) == (4, 5, 1)
    assert lv.requests_per_s == 2.0 and lv.output_tokens_per_s == 10.0
    assert (lv.latency_ms_p50, lv.latency_ms_p95, lv.ttft_ms_p50) == (250.0, 385.0, 20.0)
    assert row.tokens_per_request == 5.0 and lv.output_tokens_from == "stream chunks"
    empty = bench.summarise("generate", 1, bench.Samples(), "generate")
    assert empty.level.requests_per_s == 0.0 and empty.level.latency_ms_p50 is None and empty.tokens_per_request == 0


def test_ratio(bench):
    assert bench.ratio(3.0, 1.5) == "2.00"
    assert bench.ratio(None, 1.0) == bench.ratio(1.0, None) == bench.ratio(1.0, 0) == "-"


def test_tables(bench):
    server = [
        bench.Row("server", make_level(1, 3.0, 45.0, 330.0, 400.0), 15.0),
        bench.Row("server", make_level(4, 3.3, 49.5, 1200.0, 1300.0), 15.0),
    ]
    generate = [
        bench.Row("generate", make_level(1, 1.0, 15.0, 1000.0, 1100.0), 15.0),
        bench.Row("generate", make_level(4, 2.0, 30.0, 2000.0, None), 15.0),
    ]
    sides = bench.side_table(server + generate).splitlines()
    assert sides[0].split()[:3] == ["side", "conc", "requests"]
    assert sides[1].split() == ["server", "1", "24", "0", "3.00", "45.0", "15.00", "330", "400", "-"]
    assert sides[4].split()[-2:] == ["-", "-"]  # a missing p95 and no TTFT

    ratios = bench.ratio_table(server, generate).splitlines()
    assert ratios[2].split() == ["1", "3.00", "3.00", "0.33", "0.36"]
    assert ratios[3].split() == ["4", "1.65", "1.65", "0.60", "-"]
    scaling = ratios[ratios.index("each side at concurrency c / at its lowest concurrency") :]
    assert scaling[2].split() == ["server", "4", "1.10", "3.64"]
    assert scaling[3].split() == ["generate", "4", "2.00", "2.00"]
    # a level only one side measured has no ratio line (and a side with one level no scaling line)
    assert len(bench.ratio_table(server, generate[:1]).splitlines()) == len(ratios) - 2


def test_common_prefix(bench):
    assert bench.common_prefix([1, 2, 3, 4], [1, 2, 5]) == 2
    assert bench.common_prefix([1, 2], [1, 2, 3]) == 2
    assert bench.common_prefix([], [1]) == 0
