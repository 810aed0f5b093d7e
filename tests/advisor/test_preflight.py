"""Before a fine-tuning run starts: will it fit, and on several GPUs, DDP or FSDP?"""

from __future__ import annotations

import dataclasses

import pytest

from advisor.preflight import memory_preflight, sharding_planner
from harness.record import Hardware
from harness.strategies import STRATEGIES
from harness.task import load_task
from tests.conftest import CLASSIFICATION_TEST, CLASSIFICATION_TRAIN, write_jsonl, write_task

H100 = Hardware(device="cuda", gpu="NVIDIA H100 80GB HBM3", gpu_memory_gib=79.2, bf16=True, gpu_count=8)


@pytest.fixture
def llama_8b_task(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": label} for t, label in CLASSIFICATION_TRAIN])
    write_jsonl(tmp_path / "test.jsonl", [{"text": t, "label": label} for t, label in CLASSIFICATION_TEST])
    return load_task(
        write_task(
            tmp_path,
            """
name: big
kind: classification
model: llama-3.1-8b
data: {train: train.jsonl, test: test.jsonl}
labels: [billing, refund, account_access]
strategies:
  lora: {batch_size: 8, max_seq_len: 640}
  full: {batch_size: 8, max_seq_len: 640}
""",
        )
    )


def variant(task, name):
    return STRATEGIES[name].variants(task.strategy_configs[name])[0]


def test_full_fine_tuning_of_8b_is_sharded_only_when_a_replica_does_not_fit(llama_8b_task):
    plan = sharding_planner(llama_8b_task)
    full = variant(llama_8b_task, "full")
    # 8B x 8 bytes (bf16 weights, gradients, Adam m and v) = 64 GB (60 GiB) before activations; with those of
    # 8 x 640 tokens the predicted peak is 85 GiB: no replica fits 79.2 GiB
    assert plan(full, H100, 8) == "fsdp"
    assert plan(full, dataclasses.replace(H100, gpu_memory_gib=1000), 8) == "ddp"


def test_compare_shards_only_full_fine_tuning_on_gpus(llama_8b_task):
    from harness.compare import _sharding

    full, lora = variant(llama_8b_task, "full"), variant(llama_8b_task, "lora")
    planner = sharding_planner(llama_8b_task)
    assert _sharding(full, "auto", H100, 8, planner) == "fsdp"
    assert _sharding(lora, "auto", H100, 8, planner) == "ddp"  # LoRA's trained state is small: replicas
    assert _sharding(full, "ddp", H100, 8, planner) == "ddp"  # asked for
    assert _sharding(full, "auto", Hardware(device="cpu", memory_gib=24), 2, planner) == "ddp"  # no CPU FSDP
    assert _sharding(full, "auto", H100, 8, None) == "ddp"  # no planner: DDP


def test_preflight_counts_the_shards_and_says_how_many_gpus_would_fit(llama_8b_task):
    check = memory_preflight(llama_8b_task)
    full = variant(llama_8b_task, "full")
    replica = check(full, H100, 8, "ddp")
    assert replica.startswith("out of memory (predicted before training): full of llama-3.1-8b")
    assert "--num-processes" in replica and "FSDP over" in replica
    assert check(full, H100, 8, "fsdp") is None
    one_gpu = check(full, dataclasses.replace(H100, gpu_count=1), 1, "none")
    assert "this machine has 1" in one_gpu
    assert check(variant(llama_8b_task, "lora"), H100, 1, "none") is None


def test_processes_on_one_cpu_machine_share_its_memory(llama_8b_task):
    check = memory_preflight(llama_8b_task)
    lora = variant(llama_8b_task, "lora")
    roomy = Hardware(device="cpu", memory_gib=200)
    assert check(lora, roomy, 1, "none") is None
    assert check(lora, roomy, 4, "ddp").startswith("out of memory")  # 50 GiB each: too little in fp32
