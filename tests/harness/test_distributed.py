"""Several processes per fine-tuning run (accelerate launch, gloo on CPU): same arithmetic as one process."""

from __future__ import annotations

import json

import pytest

from harness import distributed
from harness.compare import run_compare
from harness.compare_options import CompareOptions
from harness.errors import UserError
from harness.task import load_task
from tests.conftest import CLASSIFICATION_TEST, write_classification_data, write_task


def tiny_task(folder, tiny_model_dir, batch_size: int, accumulation: int = 1):
    write_classification_data(folder)
    train = f"epochs: 2, batch_size: {batch_size}, gradient_accumulation: {accumulation}, warmup_ratio: 0, "
    train += "min_optimizer_steps: 0"  # the minimum would lower each process's batch: not the same global batch
    return write_task(
        folder,
        f"""
name: tiny-ddp
kind: classification
model: {tiny_model_dir}
data: {{train: train.jsonl, test: test.jsonl}}
labels: [billing, refund, account_access]
strategies:
  lora: {{rank: 4, learning_rate: 0.01, dropout: 0, {train}}}  # dropout draws differ per process
  full: {{learning_rate: 0.001, {train}}}
evaluation: {{validation: 0, batch_size: 4, latency_requests: 1, max_new_tokens: 4}}  # 12 = 3 whole batches
""",
    )


def compare(task, out, isolate=True, **kw) -> dict:
    """Compare, and results.json as it wrote it."""
    run_compare(
        load_task(task),
        CompareOptions(out_dir=out, progress=False, device="cpu", **kw),
        isolate=isolate,
        log=lambda _: None,
    )
    return json.loads((out / "results.json").read_text())


def records(out) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


def test_two_gloo_processes_train_like_one_process_with_the_same_global_batch(tmp_path, tiny_model_dir):
    """2 processes x batch 2 (accelerate launch, gloo) against 1 process x batch 4: the same examples per step,
    the same token-weighted loss, so the same loss curve; only the main process evaluates and records."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = compare(tiny_task(tmp_path / "one", tiny_model_dir, batch_size=4), tmp_path / "one/out", isolate=False)
    two = compare(tiny_task(tmp_path / "two", tiny_model_dir, batch_size=2), tmp_path / "two/out", num_processes=2)
    single, multi = records(tmp_path / "one/out"), records(tmp_path / "two/out")
    assert sorted(multi) == ["full-all-weights", "lora-r4"]  # one record per run, written once
    assert not list((tmp_path / "two/out/runs").glob(".*error"))
    for name in multi:
        a, b = single[name]["train_info"], multi[name]["train_info"]
        assert multi[name]["status"] == "ok", multi[name].get("error")
        assert (b["num_processes"], b["sharding"], b["global_batch_size"]) == (2, "ddp", 4)
        assert (a["num_processes"], a["global_batch_size"]) == (1, 4)
        assert multi[name]["run_info"]["num_processes"] == 2
        assert len(b["memory_per_process"]) == 2 and a["memory_per_process"] is None
        assert a["optimizer_steps"] == b["optimizer_steps"] == 6
        assert len(a["loss_curve"]) == len(b["loss_curve"]) == 6
        # the loss moved (training happened), and both runs moved it the same way
        assert a["loss_curve"][0] != a["loss_curve"][-1]
        assert b["loss_curve"] == pytest.approx(a["loss_curve"], rel=1e-4, abs=1e-4), name
        assert multi[name]["eval_info"]["n_examples"] == len(CLASSIFICATION_TEST)
    rows = {(r["strategy"], r["num_processes"]) for r in two["runs"]}
    assert rows == {("lora", 2), ("full", 2)}
    assert one["options"]["num_processes"] == 1 and two["options"]["num_processes"] == 2


def test_a_run_that_fails_in_every_process_is_recorded_once_and_nothing_hangs(tmp_path, tiny_model_dir):
    task = tiny_task(tmp_path, tiny_model_dir, batch_size=2)
    task.write_text(task.read_text().replace("lora: {rank: 4,", "lora: {rank: 4, target_modules: [no_such_proj],"))
    results = compare(task, tmp_path / "out", num_processes=2, only=["lora"])
    (row,) = results["runs"]
    assert row["status"] == "failed" and "no_such_proj" in row["error"], row["error"]
    assert not list((tmp_path / "out/runs").glob(".*error"))  # the other process's error file is cleaned up


def test_gradient_accumulation_weighs_every_answer_token_like_one_big_batch(tmp_path, tiny_model_dir):
    """batch 2 x 2 accumulated micro-batches against batch 4: answers of different token counts weigh the same."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    big = tiny_task(tmp_path / "a", tiny_model_dir, batch_size=4)
    accumulated = tiny_task(tmp_path / "b", tiny_model_dir, batch_size=2, accumulation=2)
    compare(big, tmp_path / "a/out", isolate=False, only=["full"])
    compare(accumulated, tmp_path / "b/out", isolate=False, only=["full"])
    a = records(tmp_path / "a/out")["full-all-weights"]["train_info"]
    b = records(tmp_path / "b/out")["full-all-weights"]["train_info"]
    assert b["global_batch_size"] == a["global_batch_size"] == 4
    assert b["loss_curve"] == pytest.approx(a["loss_curve"], rel=1e-4, abs=1e-4)


def test_process_count_is_checked_before_anything_runs(classification_task, tmp_path):
    with pytest.raises(UserError, match="--sharding fsdp: Accelerate runs FSDP on GPUs only"):
        compare(classification_task, tmp_path / "out", num_processes=2, sharding="fsdp")
    with pytest.raises(UserError, match="--num-processes 0"):
        distributed.check_processes(0, "cpu", "auto")
    assert not (tmp_path / "out").exists()


def test_compare_itself_under_a_launcher_says_how_to_start_it(classification_task, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(UserError, match="as a plain command with --num-processes 4"):
        compare(classification_task, tmp_path / "out")


def test_several_processes_change_the_config_hash_only_when_there_are_several():
    from harness.catalog import ModelRef
    from harness.runstore import config_hash
    from harness.strategies import Variant

    v = Variant("lora", "r8", {"rank": 8})
    kw = {"seed": 0, "limit": None, "device": "cpu", "model": ModelRef("m", "local", "/m")}
    assert config_hash({}, v, **kw) == config_hash({}, v, num_processes=1, **kw)
    assert config_hash({}, v, **kw) != config_hash({}, v, num_processes=2, **kw)


def test_launch_command_uses_accelerate_with_one_process_per_device(monkeypatch):
    cmd = distributed.launch_command("job.json", 4, "cuda")
    assert cmd[1:3] == ["-m", "harness.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4" and "--multi_gpu" in cmd
    assert cmd[-3:] == ["-m", "harness.worker", "job.json"]
    with_config = distributed.launch_command("job.json", 2, "cuda", config_file="fsdp.yaml")
    assert with_config[3:7] == ["--config_file", "fsdp.yaml", "--num_processes", "2"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    assert distributed.process_device("cuda") == "cuda:1" and distributed.process_device("cpu") == "cpu"
    assert not distributed.is_main_process()
