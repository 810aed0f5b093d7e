"""The CUDA path, on a real GPU (skipped without one): bf16, VRAM counters, GPU facts, FSDP through accelerate.

Run on a GPU machine with ``python -m pytest -q -m gpu`` (scripts/gpu_validation.sh does).
"""

from __future__ import annotations

import json
import subprocess

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_compare_on_cuda_records_vram_precision_and_the_gpu(classification_task, tmp_path):
    from harness.compare import CompareOptions, run_compare

    results = run_compare(classification_task, CompareOptions(out_dir=tmp_path, device="cuda", only=["prompt", "lora"],
                                                              progress=False), log=lambda _: None)
    assert results["device"]["gpu"] and results["device"]["cuda_version"] and results["device"]["gpu_count"] >= 1
    for row in results["runs"]:
        assert row["status"] == "ok", row["error"]
        record = json.loads((tmp_path / row["record"]).read_text())
        memory = record["run_info"]["memory"]
        assert memory["peak_memory_kind"] == "cuda_max_allocated" and memory["reserved_memory_mb"] >= memory["peak_memory_mb"] > 0
        hardware = record["meta_info"]["hardware"]
        assert hardware["gpu"] == torch.cuda.get_device_name() and "driver" in hardware
        assert record["eval_info"]["latency_ms_p50"] > 0
    lora = json.loads((tmp_path / results["runs"][1]["record"]).read_text())["train_info"]
    assert lora["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert lora["train_reserved_memory_mb"] >= lora["train_peak_memory_mb"] > 0


def test_full_fine_tuning_under_fsdp_gathers_the_weights_for_evaluation(classification_task, tmp_path):
    """FSDP through accelerate launch (one process is enough to exercise wrapping, training and unsharding)."""
    from harness.runstore import read_json

    record_path = tmp_path / "runs" / "full-all-weights.json"
    job = {"task_path": str(classification_task), "strategy": "full", "variant": "all-weights", "device": "cuda",
           "seed": 0, "limit": None, "record_path": str(record_path), "progress": False, "sharding": "fsdp",
           "run_info": {"strategy": "full", "variant": "all-weights", "config_hash": "fsdp-test"}}
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(job))
    from harness.distributed import launch_command

    command = launch_command(job_path, 1, "cuda")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    record = read_json(record_path)
    assert record and record["status"] == "ok", (record or {}).get("error") or proc.stderr[-3000:]
    assert record["train_info"]["sharding"] == "fsdp" and record["train_info"]["num_processes"] == 1
    assert record["eval_info"]["n_examples"] > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_ddp_and_fsdp_train_like_one(tmp_path, tiny_model_dir):
    from tests.harness.test_distributed import records, tiny_task

    from harness.compare import CompareOptions, run_compare

    for name, batch, kw in (("one", 4, {}), ("ddp", 2, {"num_processes": 2, "sharding": "ddp"}),
                            ("fsdp", 2, {"num_processes": 2, "sharding": "fsdp"})):
        (tmp_path / name).mkdir()
        run_compare(tiny_task(tmp_path / name, tiny_model_dir, batch_size=batch),
                    CompareOptions(out_dir=tmp_path / name / "out", device="cuda", progress=False, only=["full"], **kw),
                    log=lambda _: None)
    curves = {name: records(tmp_path / name / "out")["full-all-weights"]["train_info"]["loss_curve"]
              for name in ("one", "ddp", "fsdp")}
    assert curves["ddp"] == pytest.approx(curves["one"], rel=2e-2)  # bf16: looser than the fp32 CPU test
    assert curves["fsdp"] == pytest.approx(curves["one"], rel=2e-2)
