"""Interrupted compares keep every finished run and resume; no orphan worker goes on training."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.advisor.test_cli import ADVISOR, run
from tests.conftest import run_info


def start_compare(task: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [*ADVISOR, "compare", str(task), "--out", str(out), "--only", "prompt,full", "--no-progress"]
    return subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def records(out: Path) -> list[str]:
    """Every record, trials included (``trials/prompt-0-shot.json``)."""
    return sorted(str(p.relative_to(out / "runs")) for p in (out / "runs").rglob("*.json"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_interrupt_keeps_finished_runs_and_resumes(classification_task, tmp_path, sig):
    out = tmp_path / "out"
    proc = start_compare(classification_task, out)
    wait_for(out / "runs" / "trials" / "prompt-0-shot.json", proc)  # the first run: a trial on validation
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("advisor: interrupted: kept ") and "run the same command again" in last
        assert "Traceback" not in stderr
    kept = records(out)
    assert "trials/prompt-0-shot.json" in kept
    time.sleep(3)  # the worker of the interrupted run stops with its parent: no record appears later
    assert records(out) == kept
    summary = out / "results.json"  # kill -9 can even land before the first summary is written
    results = json.loads(summary.read_text()) if summary.exists() else {"runs": []}
    assert all(r["status"] == "ok" for r in results["runs"])
    finals = [name for name in kept if not name.startswith("trials/")]  # results.json's rows: runs on test
    if sig == signal.SIGKILL:  # kill -9 may land between a record and the summary: the record is what resumes
        assert len(results["runs"]) <= len(finals)
    else:
        assert len(results["runs"]) == len(finals)

    again = run("compare", str(classification_task), "--out", str(out), "--only", "prompt,full", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reusing") == len(kept)
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 2  # prompting's chosen setting, full


def test_fine_tuning_is_reproducible_on_cpu(classification_task):
    from harness.runner import RunContext, run_variant
    from harness.strategies import STRATEGIES
    from harness.task import load_examples, load_task

    task = load_task(classification_task)
    data = load_examples(task)
    curves = []
    for _ in range(2):
        ctx = RunContext(
            task=task, data=data, train=data.train, test=data.test[:2], device="cpu", seed=3, progress=False
        )
        variant = STRATEGIES["lora"].variants(task.strategy_configs["lora"])[0]
        record = run_variant(ctx, variant, run_info(task, variant, seed=3))
        assert record.ok, record.error
        curves.append((record.train_info.loss_curve, [p.output for p in record.predictions]))
    assert curves[0] == curves[1]


def test_an_empty_knowledge_folder_fails_validation(qa_task, tmp_path):
    for f in (qa_task.parent / "kb").iterdir():
        f.unlink()
    proc = run("validate", str(qa_task))
    assert proc.returncode == 2 and "knowledge" in proc.stderr and "no non-empty" in proc.stderr


def test_a_run_that_cannot_fit_fails_before_training_and_the_others_run(classification_task, tmp_path):
    from advisor.preflight import memory_preflight
    from harness.compare import run_compare
    from harness.compare_options import CompareOptions
    from harness.task import load_task

    task = load_task(classification_task)
    check = memory_preflight(task)

    def tiny_machine(variant, device, processes, sharding):
        return check(variant, dataclasses.replace(device, memory_gib=0.001), processes, sharding)

    results = run_compare(
        task,
        CompareOptions(out_dir=tmp_path, only=["prompt", "full"], progress=False),
        preflight=tiny_machine,
        isolate=False,
        log=lambda _: None,
    )
    by_strategy = {run.record.run_info.strategy: run.record for run in results.runs}
    full = by_strategy["full"]
    assert not full.ok and full.train_info is None
    assert full.error.startswith("out of memory (predicted before training)") and "would fit" in full.error
    assert by_strategy["prompt"].ok
    assert (tmp_path / "runs" / "full-all-weights.json").exists()  # the failed record is kept like any other
    # with the real machine's memory the same check lets it run
    from harness.strategies import STRATEGIES

    variant = STRATEGIES["full"].variants(task.strategy_configs["full"])[0]
    assert check(variant, results.device, 1, "none") is None
