"""The CUDA path, on a real GPU (skipped without one): bf16, VRAM counters, GPU facts, FSDP through accelerate.

Run on a GPU machine with ``python -m pytest -q -m gpu`` (scripts/gpu_validation.sh does).
"""

from __future__ import annotations

import subprocess

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_compare_on_cuda_records_vram_precision_and_the_gpu(classification_task, tmp_path):
    from harness.compare import run_compare
    from harness.compare_options import CompareOptions
    from harness.record import MemoryKind
    from harness.task import load_task

    results = run_compare(
        load_task(classification_task),
        CompareOptions(out_dir=tmp_path, device="cuda", only=["prompt", "lora"], progress=False),
        log=lambda _: None,
    )
    assert results.device.gpu and results.device.cuda_version and results.device.gpu_count >= 1
    assert results.device.gpu_memory_gib > 1
    for run in results.runs:
        record = run.record
        assert record.ok, record.error
        memory = record.run_info.memory
        assert memory.kind is MemoryKind.CUDA_MAX_ALLOCATED
        assert memory.reserved_peak_mib >= memory.peak_mib >= memory.growth_mib > 0
        hardware = record.meta_info.hardware
        assert hardware.gpu == torch.cuda.get_device_name() and hardware.driver is not None
        assert record.eval_info.latency_ms_p50 > 0
    lora = results.runs[1].record.train_info
    assert lora.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert lora.memory.reserved_peak_mib >= lora.memory.peak_mib > 0


def test_full_fine_tuning_under_fsdp_gathers_the_weights_for_evaluation(classification_task, tmp_path):
    """FSDP through accelerate launch (one process is enough to exercise wrapping, training and unsharding)."""
    from harness.distributed import launch_command
    from harness.job import Job
    from harness.runstore import load_record
    from harness.strategies import STRATEGIES
    from harness.task import load_examples, load_task
    from tests.conftest import run_info

    task = load_task(classification_task)
    data = load_examples(task)
    variant = STRATEGIES["full"].variants(task.strategy_configs["full"])[0]
    info = run_info(task, variant, device="cuda")
    info.sharding = "fsdp"
    record_path = tmp_path / "runs" / "full-all-weights.json"
    job = Job(
        task=task,
        data=data,
        train=data.train,
        test=data.test,
        variant=variant,
        run_info=info,
        record_path=record_path,
        progress=False,
    )
    job_path = job.save()
    try:
        proc = subprocess.run(launch_command(job_path, 1, "cuda"), capture_output=True, text=True, timeout=600)
    finally:
        job_path.unlink(missing_ok=True)
    record = load_record(record_path)
    assert record and record.ok, (record.error if record else None) or proc.stderr[-3000:]
    assert record.train_info.sharding == "fsdp" and record.train_info.num_processes == 1
    assert record.eval_info.n_examples > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_ddp_and_fsdp_train_like_one(tmp_path, tiny_model_dir):
    from harness.compare import run_compare
    from harness.compare_options import CompareOptions
    from harness.task import load_task
    from tests.harness.test_distributed import records, tiny_task

    for name, batch, kw in (
        ("one", 4, {}),
        ("ddp", 2, {"num_processes": 2, "sharding": "ddp"}),
        ("fsdp", 2, {"num_processes": 2, "sharding": "fsdp"}),
    ):
        (tmp_path / name).mkdir()
        run_compare(
            load_task(tiny_task(tmp_path / name, tiny_model_dir, batch_size=batch)),
            CompareOptions(out_dir=tmp_path / name / "out", device="cuda", progress=False, only=["full"], **kw),
            log=lambda _: None,
        )
    curves = {
        name: records(tmp_path / name / "out")["full-all-weights"]["train_info"]["loss_curve"]
        for name in ("one", "ddp", "fsdp")
    }
    assert curves["ddp"] == pytest.approx(curves["one"], rel=2e-2)  # bf16: looser than the fp32 CPU test
    assert curves["fsdp"] == pytest.approx(curves["one"], rel=2e-2)
