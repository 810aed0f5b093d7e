"""The Ray executor on a real local Ray cluster (num_cpus=2): the same records as the local executor for the same
seeds, a failing run recorded while the others finish, resume, and Ctrl-C leaving no worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.compare import run_compare
from harness.compare_options import CompareOptions
from harness.errors import UserError
from harness.task import load_task
from tests.conftest import write_classification_data, write_task

ray = pytest.importorskip("ray")

TRAIN = "epochs: 1, batch_size: 4, warmup_ratio: 0, min_optimizer_steps: 0"


def tiny_task(folder: Path, model: Path, lora: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_classification_data(folder)
    return write_task(
        folder,
        f"""
name: tiny-ray
kind: classification
model: {model}
data: {{train: train.jsonl, test: test.jsonl}}
labels: [billing, refund, account_access]
strategies:
  prompt: {{shots: [0, 1]}}
  lora: {{rank: 4, dropout: 0, {lora}, {TRAIN}}}
{extra}
evaluation: {{validation: 2, batch_size: 4, latency_requests: 1, max_new_tokens: 4}}
""",
    )


def records(out: Path) -> dict[str, dict]:
    return {str(p.relative_to(out)): json.loads(p.read_text()) for p in sorted((out / "runs").rglob("*.json"))}


def answers(record: dict) -> list[tuple[str, str]]:
    return [(p["id"], p["prediction"]) for p in record.get("predictions") or []]


def ray_processes() -> set[int]:
    """Processes of a Ray instance or of a run's worker, by their command line."""
    marks = ("ray::", "raylet", "gcs_server", "harness.worker", "ray/_private", "dashboard")
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if any(mark in line for mark in marks):
            found.add(proc.pid)
    return found


def test_ctrl_c_stops_every_ray_task_and_leaves_no_worker(tmp_path, tiny_model_dir):
    """`advisor compare --executor ray` (its own local Ray instance) interrupted while two long runs train: exit
    130 with one line, and neither a Ray process nor a run's worker process is left."""
    before = ray_processes()
    task = tiny_task(tmp_path / "task", tiny_model_dir, "learning_rate: [0.01, 0.001]").read_text()
    task = task.replace("epochs: 1", "epochs: 400")  # long enough to be interrupted mid-training
    (tmp_path / "task" / "task.yaml").write_text(task.replace("  prompt: {shots: [0, 1]}\n", ""))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "advisor.cli", "compare", str(tmp_path / "task" / "task.yaml")]
    command += ["--out", str(tmp_path / "out"), "--device", "cpu", "--executor", "ray", "--no-progress"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if line.count("running on cpu (ray)") or not line:
            break
    started = [line for line in lines if "running on cpu (ray)" in line]
    assert started, "".join(lines)
    time.sleep(15)  # the workers are training
    assert [p for p in ray_processes() - before if "harness.worker" in " ".join(psutil.Process(p).cmdline())]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "kept 0 finished run(s)" in err.strip().splitlines()[-1], err
    deadline = time.monotonic() + 30
    while (left := ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, [" ".join(psutil.Process(p).cmdline()) for p in left if psutil.pid_exists(p)]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance of 2 CPUs, as a user's laptop cluster; the executor joins it (and leaves it up)."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_runs_give_the_local_executors_records_and_record_where_they_ran(tmp_path, tiny_model_dir, local_ray):
    """Prompting's and LoRA's trials and final runs (the final LoRA run served from its trial's checkpoint) on Ray:
    the same predictions and validation scores as the local executor for the same seed; a run that fails (LoRA on
    layers the model lacks) is recorded as failed while the others finish; each record names its executor and
    node; running again reuses every finished record (and tries the failed run again, as the local executor does)."""
    failing = "  lora+rag: {rank: 4, target_modules: [no_such_layer], learning_rate: 0.01, " + TRAIN + "}"
    task = load_task(tiny_task(tmp_path / "task", tiny_model_dir, "learning_rate: [0.01, 0.001]", failing))
    options = {"progress": False, "device": "cpu"}
    run_compare(task, CompareOptions(out_dir=tmp_path / "local", **options), isolate=False, log=lambda _: None)
    lines: list[str] = []
    run_compare(task, CompareOptions(out_dir=tmp_path / "ray", executor="ray", **options), log=lines.append)

    local, remote = records(tmp_path / "local"), records(tmp_path / "ray")
    assert sorted(local) == sorted(remote)
    assert len(remote) == 7  # 2 + 2 trials, 3 final runs
    failed = [name for name, r in remote.items() if r["status"] != "ok"]
    assert failed == ["runs/lora+rag-r4.json"], failed
    assert "no_such_layer" in remote[failed[0]]["error"]
    for name, record in remote.items():
        if record["status"] != "ok":
            continue
        assert record["meta_info"]["executor"] == "ray" and record["meta_info"]["node"]
        assert local[name]["meta_info"]["executor"] == "local"
        assert answers(record) == answers(local[name]), name
        assert (record.get("validation") or {}).get("quality") == (local[name].get("validation") or {}).get("quality")
    served = remote["runs/lora-r4-lr0.01.json"]["validation"]["from_trial"] or ""
    assert served.startswith("runs/trials/lora-"), served  # the final LoRA run loaded its trial's weights
    results = json.loads((tmp_path / "ray/results.json").read_text())
    assert results["options"]["executor"] == "ray"
    assert {run["strategy"]: run["status"] for run in results["runs"]} == {
        "prompt": "ok",
        "lora": "ok",
        "lora+rag": "failed",
    }
    assert not (tmp_path / "ray/checkpoints").exists()  # each removed after its arm, then the empty folder

    again: list[str] = []
    run_compare(task, CompareOptions(out_dir=tmp_path / "ray", executor="ray", **options), log=again.append)
    assert sum("reusing finished run" in line for line in again) == 6, "\n".join(again)
    rerun = [line.split("] ", 1)[1] for line in again if "running on cpu (ray)" in line]
    assert rerun == ["lora+rag r4 (on test): running on cpu (ray) ..."], rerun


def test_ray_executor_errors_are_one_line(tmp_path, tiny_model_dir, local_ray):
    task = load_task(tiny_task(tmp_path / "task", tiny_model_dir, "learning_rate: 0.01"))
    with pytest.raises(UserError, match="--device cuda: the Ray cluster has no GPU"):
        run_compare(task, CompareOptions(out_dir=tmp_path / "o", executor="ray", device="cuda"), log=lambda _: None)
    with pytest.raises(UserError, match="no node of the Ray cluster has 4 CPUs"):
        run_compare(
            task,
            CompareOptions(out_dir=tmp_path / "o", executor="ray", device="cpu", num_processes=2, cpus_per_run=2),
            log=lambda _: None,
        )
    with pytest.raises(UserError, match="--ray-address: only with --executor ray"):
        run_compare(task, CompareOptions(out_dir=tmp_path / "o", ray_address="auto"), log=lambda _: None)


def test_a_node_without_the_output_folder_keeps_its_files_in_a_scratch_folder_named_after_it(tmp_path):
    """No shared storage: a node that does not see the driver's output folder writes a run's files under a
    node-local scratch folder, the same one for every run of the compare (so a final run finds its trial's
    checkpoint on the trial's node)."""
    from harness.ray_executor import node_folder

    out = tmp_path / "out"
    checkpoint = out / "checkpoints" / "lora-r8"
    assert node_folder(checkpoint, out).parts[-2:] == ("checkpoints", "lora-r8")
    assert node_folder(checkpoint, out) != checkpoint and "advisor-ray" in str(node_folder(checkpoint, out))
    assert node_folder(out / "runs" / "a.json", out).parent.parent == node_folder(checkpoint, out).parent.parent
    out.mkdir()
    assert node_folder(checkpoint, out) == checkpoint  # this node sees the folder: used as it is
    assert node_folder(None, out) is None


def test_a_two_process_run_holds_one_node_through_a_placement_group(tmp_path, tiny_model_dir, local_ray):
    """--num-processes 2 under Ray: the run's task holds a STRICT_PACK placement group of both processes' CPUs and
    starts accelerate launch inside it (gloo on CPU); its record is the main process's, with both processes."""
    task = tiny_task(tmp_path / "task", tiny_model_dir, "learning_rate: 0.01")
    text = task.read_text().replace("  prompt: {shots: [0, 1]}\n", "").replace("validation: 2", "validation: 0")
    task.write_text(text)
    options = CompareOptions(
        out_dir=tmp_path / "out", executor="ray", device="cpu", num_processes=2, progress=False, sharding="ddp"
    )
    run_compare(load_task(task), options, log=lambda _: None)
    (record,) = records(tmp_path / "out").values()
    assert record["status"] == "ok", record.get("error")
    assert record["train_info"]["num_processes"] == 2 and record["meta_info"]["executor"] == "ray"
    assert ray.util.placement_group_table() and all(
        group["state"] == "REMOVED" for group in ray.util.placement_group_table().values()
    )
