"""--mlflow: a comparison logged to a real local MLflow store and read back with MlflowClient; without MLflow, a
one-line error before anything runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.report import republish
from advisor.tracking import check_tracking, flatten, log_comparison, params_of
from harness.errors import UserError
from tests.advisor.factories import (
    learning_curve_rows,
    make_comparison,
    make_row,
    make_trial,
    save_comparison,
    with_runs,
)
from tests.conftest import ROOT

mlflow = pytest.importorskip("mlflow")

KEY = "sk-" + "a1B2" * 8  # shaped like an OpenAI key


def compare_folder(folder: Path) -> Path:
    """A finished compare as it leaves its folder: prompt, RAG (also on an endpoint), a LoRA learning curve whose
    full-data row was tuned over two trials and repeated with a second seed, and a failed run; priced and rendered
    by ``advisor report``'s code (no training)."""
    curve = learning_curve_rows()
    curve[2] = with_runs(
        curve[2],
        trials=[make_trial("lora", "r8", 0.71), make_trial("lora", "r16", 0.69, params={"rank": 16})],
        seed_qualities=(0.70,),
    )
    runs = [
        make_row("prompt", "4-shot", 0.15, params={"shots": 4, "instruction": None}),
        make_row(
            "rag",
            "top-4@hosted",
            0.55,
            params={"top_k": 4, "endpoint": "hosted", "retriever": {"model": "minilm", "api_key": KEY}},
        ),
        *curve,
        make_row("full", "all-weights", None, status="failed", error="worker process killed by SIGKILL"),
    ]
    save_comparison(folder, make_comparison([run.stored for run in runs]))
    return folder


def runs_of(client, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return client.search_runs([found.experiment_id], max_results=1000)


def test_comparison_logged_as_parent_and_nested_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the sqlite store keeps artifacts in ./mlruns
    out = compare_folder(tmp_path / "out")
    analysis, report = republish(out)  # priced first: the costs the runs are logged with
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logged = log_comparison(uri, out, analysis)
    assert logged.line().startswith(f"logged {logged.runs} runs to MLflow {uri}, experiment 'demo'")

    client = mlflow.tracking.MlflowClient(uri)
    runs = runs_of(client, "demo")
    by_id = {run.info.run_id: run for run in runs}
    parent = by_id[logged.parent_run_id]
    assert parent.data.tags["advisor.role"] == "comparison" and parent.info.status == "FINISHED"
    assert parent.data.params["task"] == "demo" and parent.data.params["deployment_gpu"] == "a10g"
    assert parent.data.tags["advisor.verdict"] == analysis.recommendation.verdict
    assert parent.data.metrics["comparison_usd"] > 0
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"report.html", "results.json"}
    downloaded = client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path / "dl"))
    assert Path(downloaded).read_bytes() == report.read_bytes()

    # one nested run per row of the comparison, learning-curve rows included
    rows = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(run.info.run_name for run in rows) == sorted(
        f"{p.row.strategy} {p.row.variant}" for p in analysis.pricing.runs
    )
    assert len(rows) == 6 and logged.runs == 1 + 6 + 3  # + two trials and one seed repeat
    named = {run.info.run_name: run for run in rows}
    priced = {f"{p.row.strategy} {p.row.variant}": p for p in analysis.pricing.runs}

    lora = named["lora r8"]
    assert lora.data.params["strategy"] == "lora" and lora.data.params["variant"] == "r8"
    assert lora.data.params["rank"] == str(priced["lora r8"].record.run_info.params["rank"])
    metrics = lora.data.metrics
    costs = priced["lora r8"].costs
    assert metrics["quality"] == pytest.approx(priced["lora r8"].row.quality)
    assert metrics["train_usd"] == pytest.approx(costs.train_usd) and costs.train_usd
    assert metrics["data_usd"] == pytest.approx(costs.data_usd)
    assert metrics["serve_usd_per_1k_requests"] == pytest.approx(costs.serve_usd_per_1k)
    for key in ("latency_p50_ms", "latency_p95_ms", "memory_peak_mib", "train_seconds"):
        assert key in metrics, key
    assert [a.path for a in client.list_artifacts(lora.info.run_id, "record")] == ["record/lora-r8.json"]
    assert named["lora r8-25pct"].data.params["data_fraction"] == "0.25"

    # the tuned row's trials and its second seed nested under it, tagged
    under_lora = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == lora.info.run_id]
    assert sorted((r.data.tags["advisor.role"], r.info.run_name) for r in under_lora) == [
        ("seed", "lora r8"),
        ("trial", "lora r16"),
        ("trial", "lora r8"),
    ]
    trial = next(r for r in under_lora if r.info.run_name == "lora r16")
    assert trial.data.params["rank"] == "16" and "validation_quality" in trial.data.metrics
    assert "quality" not in trial.data.metrics  # a trial is never scored on test

    failed = named["full all-weights"]
    assert failed.info.status == "FAILED" and failed.data.tags["advisor.error"] == "worker process killed by SIGKILL"

    # the endpoint row: where it ran, its nested settings flattened, never a key
    rag = named["rag top-4@hosted"]
    assert rag.data.params["endpoint"] == "hosted" and rag.data.params["retriever.model"] == "minilm"
    assert "retriever.api_key" not in rag.data.params
    assert all(KEY not in value for run in runs for value in run.data.params.values())


def test_a_folder_uri_is_mlflows_file_store(tmp_path, monkeypatch):
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set: a folder asked for by name works."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # restored (unset) after the test
    out = compare_folder(tmp_path / "out")
    analysis, _ = republish(out)
    store = tmp_path / "mlruns"
    logged = log_comparison(str(store), out, analysis)
    runs = runs_of(mlflow.tracking.MlflowClient(str(store)), "demo")
    assert len(runs) == logged.runs and store.is_dir()


def test_a_store_mlflow_cannot_use_is_one_line_before_any_run(tmp_path):
    with pytest.raises(UserError, match=r"^--mlflow nope://x: cannot use this tracking store: ") as err:
        check_tracking("nope://x")
    assert "\n" not in str(err.value)
    check_tracking(None)  # no tracking asked for: nothing checked


def test_a_tracking_server_that_does_not_answer_fails_in_seconds():
    start = time.monotonic()
    with pytest.raises(UserError, match=r"^--mlflow http://127.0.0.1:1: cannot use this tracking store: "):
        check_tracking("http://127.0.0.1:1")  # nothing listens on port 1: no minutes of MLflow's retries
    assert time.monotonic() - start < 30


def test_params_are_flat_strings_within_mlflows_limit():
    params = params_of({"a": {"b": [1, 2]}, "long": "x" * 7000, "none": None, "token": "t", "prompt": f"use {KEY}"})
    assert params["a.b"] == "[1, 2]" and params["none"] == "null"
    assert len(params["long"]) == 6000
    assert "token" not in params and "prompt" not in params
    assert dict(flatten({"x": {}})) == {"x": {}}


@pytest.mark.parametrize("command", ["compare", "report"])
def test_mlflow_missing_is_one_line_exit_2_before_anything_runs(tmp_path, command):
    out = tmp_path / "out"
    target = str(ROOT / "data" / "tasks" / "support-intents.yaml") if command == "compare" else str(out)
    args = [command, target, "--out", str(out), "--mlflow"] if command == "compare" else [command, target, "--mlflow"]
    code = f"import sys; sys.modules['mlflow'] = None; from advisor.cli import main; main({args!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0] == "advisor: error: --mlflow: MLflow is not installed; install it with pip install -e '.[mlflow]'"
    assert not out.exists()  # checked before the compare ran: nothing written, nothing lost
