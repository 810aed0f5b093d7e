"""Before a fine-tuning run starts: will it fit, and on several GPUs, DDP or FSDP?"""

from __future__ import annotations

import pytest

from advisor.preflight import memory_preflight, sharding_planner
from harness.strategies import STRATEGIES
from harness.task import load_task
from tests.conftest import CLASSIFICATION_TEST, CLASSIFICATION_TRAIN, write_jsonl, write_task

H100 = {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "gpu_memory_gb": 79.2, "bf16": True, "gpu_count": 8}


@pytest.fixture
def llama_8b_task(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in CLASSIFICATION_TRAIN])
    write_jsonl(tmp_path / "test.jsonl", [{"text": t, "label": l} for t, l in CLASSIFICATION_TEST])
    return load_task(write_task(tmp_path, """
name: big
kind: classification
model: llama-3.1-8b
data: {train: train.jsonl, test: test.jsonl}
labels: [billing, refund, account_access]
strategies:
  lora: {batch_size: 8, max_seq_len: 512}
  full: {batch_size: 8, max_seq_len: 512}
"""))


def variant(task, name):
    return STRATEGIES[name].variants(task.strategy_configs[name])[0]


def test_full_fine_tuning_of_8b_is_sharded_only_when_a_replica_does_not_fit(llama_8b_task):
    plan = sharding_planner(llama_8b_task)
    full = variant(llama_8b_task, "full")
    eight = {**H100, "num_processes": 8}
    # 8B x 8 bytes (bf16 weights, gradients, Adam m and v) = 64 GB before activations: no replica fits 79 GB
    assert plan(full, eight) == "fsdp"
    assert plan(full, {**eight, "gpu_memory_gb": 1000}) == "ddp"


def test_compare_shards_only_full_fine_tuning_on_gpus(llama_8b_task):
    from harness.compare import CompareOptions, _sharding

    full, lora = variant(llama_8b_task, "full"), variant(llama_8b_task, "lora")
    eight = {**H100, "num_processes": 8}
    auto = CompareOptions(out_dir=".", plan_sharding=sharding_planner(llama_8b_task))
    assert _sharding(full, auto, eight) == "fsdp"
    assert _sharding(lora, auto, eight) == "ddp"  # LoRA's trained state is small: replicas
    assert _sharding(full, CompareOptions(out_dir=".", sharding="ddp"), eight) == "ddp"  # asked for
    assert _sharding(full, auto, {"device": "cpu", "memory_gb": 24, "num_processes": 2}) == "ddp"  # no CPU FSDP
    assert _sharding(full, CompareOptions(out_dir="."), eight) == "ddp"  # no planner: DDP


def test_preflight_counts_the_shards_and_says_how_many_gpus_would_fit(llama_8b_task):
    check = memory_preflight(llama_8b_task)
    full = variant(llama_8b_task, "full")
    replica = check(full, {**H100, "num_processes": 8, "sharding": "ddp"})
    assert replica.startswith("out of memory (predicted before training): full of llama-3.1-8b")
    assert "--num-processes" in replica and "FSDP over" in replica
    assert check(full, {**H100, "num_processes": 8, "sharding": "fsdp"}) is None
    one_gpu = check(full, {**H100, "gpu_count": 1, "num_processes": 1, "sharding": "none"})
    assert "this machine has 1" in one_gpu
    assert check(variant(llama_8b_task, "lora"), {**H100, "num_processes": 1}) is None


def test_processes_on_one_cpu_machine_share_its_memory(llama_8b_task):
    check = memory_preflight(llama_8b_task)
    lora = variant(llama_8b_task, "lora")
    roomy = {"device": "cpu", "memory_gb": 200}
    assert check(lora, {**roomy, "num_processes": 1}) is None
    assert check(lora, {**roomy, "num_processes": 4}).startswith("out of memory")  # 50 GB each: too little in fp32
