"""The advisor command line as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ADVISOR = [sys.executable, "-m", "advisor.cli"]


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([*ADVISOR, *args], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=600)


def test_validate_every_shipped_task():
    tasks = sorted(str(p) for p in (ROOT / "data" / "tasks").glob("*.yaml"))
    # the endpoints example reads its server's key from ADVISOR_SERVE_KEY: validate checks it is set
    proc = run("validate", *tasks, env={"ADVISOR_SERVE_KEY": "any"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok") == len(tasks)
    unset = run(
        "validate", str(ROOT / "data" / "tasks" / "support-intents-endpoints.yaml"), env={"ADVISOR_SERVE_KEY": ""}
    )
    assert unset.returncode == 2 and "ADVISOR_SERVE_KEY is not set" in unset.stderr


@pytest.mark.parametrize(
    "body, key",
    [
        ("name: t\nkind: classification\ndata: {train: a.jsonl, test: b.jsonl}\nmetrik: x\n", "metrik"),
        ("name: t\nkind: [\n", "YAML syntax error"),
        ("name: t\nkind: classification\ndata: {train: nope.jsonl, test: b.jsonl}\n", "data.train"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, body, key):
    task = tmp_path / "task.yaml"
    task.write_text(body)
    for command in (["validate", str(task)], ["compare", str(task), "--out", str(tmp_path / "out")]):
        proc = run(*command)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        assert str(task) in lines[0] and key in lines[0]
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_task_file(tmp_path):
    proc = run("validate", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "nope.yaml: file not found" in proc.stderr


def test_device_cuda_without_cuda_is_a_one_line_error(classification_task, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = run("compare", str(classification_task), "--device", "cuda", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "Traceback" not in proc.stderr


def test_compare_in_worker_processes_writes_results_and_report(classification_task, tmp_path):
    out = tmp_path / "out"
    proc = run(
        "compare", str(classification_task), "--out", str(out), "--only", "prompt,lora", "--limit", "2", "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert [(r["strategy"], r["variant"], r["status"]) for r in results["runs"]] == [
        ("prompt", "0-shot", "ok"),  # a quick look: each arm's first setting, no tuning trials
        ("lora", "r4", "ok"),
    ]
    assert all(r["n_examples"] == 2 for r in results["runs"])
    lora = json.loads((out / results["runs"][1]["record"]).read_text())
    assert lora["train_info"]["examples"] == 8  # --limit 2: 5*2 training examples, 2 of them the validation split
    # a fresh worker process per run: its peak includes loading the weights
    assert lora["run_info"]["memory"]["growth_mib"] > 1
    # the estimator against the run, stored in its record: same settings, same hardware
    check = lora["self_check"]
    assert check["phase"] == "training" and check["memory_basis"].startswith("cpu rss")
    assert lora["train_info"]["padded_len_max"] > 0 and check["time_ratio_calibrated"] == pytest.approx(1.0)
    # the 2-layer model's few MiB of tensors sit under the code a fresh process pages in (2.8 on the dev machine)
    assert 0.3 < check["memory_ratio"] < 10
    assert results["runs"][1]["self_check"] == check  # results.json's row too
    html = (out / "report.html").read_text()
    assert "tiny-intents" in html and "lora" in html and "<script" not in html

    again = run(
        "compare", str(classification_task), "--out", str(out), "--only", "prompt", "--limit", "2", "--no-progress"
    )
    assert again.returncode == 0 and again.stderr.count("reusing") == 1
    reused = json.loads((out / "results.json").read_text())["runs"]
    assert all(row["self_check"]["phase"] == "inference" for row in reused)  # reused records keep their check

    rerender = run("report", str(out))
    assert rerender.returncode == 0 and (out / "report.html").exists()


def test_only_must_name_a_listed_strategy(extraction_task, tmp_path):
    proc = run("compare", str(extraction_task), "--only", "rag", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "--only" in proc.stderr and "not in" in proc.stderr


def test_schema_doc_is_up_to_date():
    from advisor.schema_doc import task_schema_markdown

    committed = (ROOT / "docs" / "task-schema.md").read_text(encoding="utf-8")
    assert committed == task_schema_markdown(), "run: advisor schema > docs/task-schema.md"
