"""Endpoint arms against a real OpenAI-compatible server: ``advisor serve`` (llama.cpp) on the packaged model, on
127.0.0.1 with a canary API key (the ``llama_server`` fixture). Nothing here mocks HTTP."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.serve import free_port
from tests.conftest import ROOT, SERVER_KEY_ENV, compare_in_process

pytestmark = pytest.mark.integration

INTENTS = ROOT / "data" / "tasks" / "support-intents.yaml"
PRICE = {"input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.6}


def endpoint_task(folder: Path, server, *, model: str | None = None, **changes) -> Path:
    """The shipped support-intents task (its data by absolute path) with endpoints on ``server``."""
    spec = yaml.safe_load(INTENTS.read_text())
    spec["data"].update(
        train=str(INTENTS.parent / spec["data"]["train"]), test=str(INTENTS.parent / spec["data"]["test"])
    )
    if model:
        spec["model"] = model
    spec["endpoints"] = {
        "served": {"base_url": server.base_url, "model": server.model, "api_key_env": SERVER_KEY_ENV, "price": PRICE}
    }
    spec["evaluation"] = {"latency_requests": 2, "load_test": None}
    spec.update(changes)
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def advisor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True, env=env, timeout=900, cwd=ROOT
    )


def every_file_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_endpoint_arms_beside_local_ones_with_failures_and_no_key_anywhere(tmp_path, llama_server):
    """The default task's prompting arm on the local model and on the server (usage tokens, price, load test); a
    wrong key and a closed port fail their variants only; the canary keys are in no file and no log."""
    wrong_key = "sk-canary-wrong-" + secrets.token_hex(12)
    task = endpoint_task(
        tmp_path,
        llama_server,
        strategies={"prompt": {"shots": [0], "endpoints": ["served", "wrong-key", "closed"]}},
        evaluation={"latency_requests": 2, "load_test": {"concurrency": [1, 2], "requests": 3}},
    )
    spec = yaml.safe_load(task.read_text())
    spec["endpoints"]["wrong-key"] = {**spec["endpoints"]["served"], "api_key_env": "ADVISOR_TEST_WRONG_KEY"}
    spec["endpoints"]["closed"] = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "price": PRICE}
    task.write_text(yaml.safe_dump(spec))
    env = {**os.environ, SERVER_KEY_ENV: llama_server.api_key, "ADVISOR_TEST_WRONG_KEY": wrong_key}
    out = tmp_path / "out"

    done = advisor("compare", str(task), "--limit", "3", "--out", str(out), "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["variant"]: row for row in json.loads((out / "results.json").read_text())["runs"]}
    assert rows["0-shot"]["status"] == "ok" and rows["0-shot"]["endpoint"] is None

    served = rows["0-shot@served"]
    assert served["status"] == "ok" and served["endpoint"] == "served"
    record = json.loads((out / served["record"]).read_text())
    use, predictions = record["endpoint"], record["predictions"]
    # token counts are the server's usage: summed over the live requests, and each prediction's own
    assert use["requests"] >= 3 and use["cache_hits"] == 0 and use["errors"] == 0
    assert all(p["prompt_tokens"] > 0 and p["output_tokens"] > 0 for p in predictions)
    assert served["input_tokens_mean"] == pytest.approx(sum(p["prompt_tokens"] for p in predictions) / 3, abs=0.1)
    # the server and the harness tokenise the same model's chat template: the same prompt tokens
    assert served["input_tokens_mean"] == pytest.approx(rows["0-shot"]["input_tokens_mean"], rel=0.05)
    per_request = (served["input_tokens_mean"] * 0.15 + served["output_tokens_mean"] * 0.6) / 1e6
    assert served["serve_usd_per_1k"] == pytest.approx(per_request * 1000, rel=1e-6)
    monthly = yaml.safe_load(task.read_text())["goals"]["monthly_requests"]
    assert served["serve_usd_per_month"] == pytest.approx(per_request * monthly, rel=1e-6)
    assert served["serve_basis"] == "per token" and served["api_usd_spent"] > 0
    levels = served["load_test"]
    assert [level["concurrency"] for level in levels] == [1, 2]
    for level in levels:
        assert level["requests"] == 3 and level["errors"] == 0 and level["requests_per_s"] > 0
        assert level["latency_ms_p95"] >= level["latency_ms_p50"] > 0 and level["ttft_ms_p50"] > 0
        assert level["output_tokens_per_s"] > 0

    assert rows["0-shot@wrong-key"]["status"] == "failed"
    assert "refused the key (HTTP 401)" in rows["0-shot@wrong-key"]["error"]
    assert rows["0-shot@closed"]["status"] == "failed" and "cannot connect" in rows["0-shot@closed"]["error"]
    assert all("\n" not in rows[v]["error"] for v in ("0-shot@wrong-key", "0-shot@closed"))

    html = (out / "report.html").read_text()
    assert 'id="endpoints"' in html and 'id="load-test"' in html and "0-shot@served" in html
    for key in (llama_server.api_key, wrong_key):
        assert every_file_holding(out, key) == []
        assert key not in done.stdout and key not in done.stderr

    again = advisor("compare", str(task), "--limit", "3", "--out", str(out), "--no-progress", env=env)
    assert again.returncode == 0
    assert "0-shot@served: reusing finished run" in again.stderr  # nothing is asked twice
    # re-priced from the records alone (results.json's endpoint prices, typed), with no key in the environment
    plain = {k: v for k, v in os.environ.items() if k != SERVER_KEY_ENV}
    assert advisor("report", str(out), env=plain).returncode == 0
    rows = {row["variant"]: row for row in json.loads((out / "results.json").read_text())["runs"]}
    assert rows["0-shot@served"]["serve_usd_per_1k"] == pytest.approx(per_request * 1000, rel=1e-6)


def test_rag_on_an_endpoint_sends_the_retrieved_examples(tmp_path, llama_server, tiny_model_dir, monkeypatch):
    task = endpoint_task(
        tmp_path,
        llama_server,
        model=str(tiny_model_dir),
        strategies={"prompt": {"shots": [0], "endpoints": ["served"]}, "rag": {"top_k": 2, "endpoints": ["served"]}},
    )
    monkeypatch.setenv(SERVER_KEY_ENV, llama_server.api_key)
    results, _ = compare_in_process(task, tmp_path / "out", limit=3, only=["prompt", "rag"])
    rows = {(row["strategy"], row["variant"]): row for row in results["runs"]}
    assert set(rows) == {("prompt", "0-shot"), ("prompt", "0-shot@served"), ("rag", "top-2"), ("rag", "top-2@served")}
    assert all(row["status"] == "ok" for row in rows.values())
    # two retrieved worked examples ride along with every RAG request, on the endpoint as locally
    assert (
        rows[("rag", "top-2@served")]["input_tokens_mean"] > rows[("prompt", "0-shot@served")]["input_tokens_mean"] + 20
    )
    assert rows[("rag", "top-2@served")]["input_tokens_mean"] == pytest.approx(
        rows[("rag", "top-2")]["input_tokens_mean"], rel=0.05
    )


def test_budget_cap_stops_a_run_and_the_cache_pays_nothing_twice(tmp_path, llama_server, tiny_model_dir, monkeypatch):
    task = endpoint_task(
        tmp_path,
        llama_server,
        model=str(tiny_model_dir),
        strategies={"prompt": {"shots": [0], "endpoints": ["served"]}},
    )
    spec = yaml.safe_load(task.read_text())
    spec["evaluation"] = {**(spec.get("evaluation") or {}), "validation": 0}  # every request is a test request
    task.write_text(yaml.safe_dump(spec))
    monkeypatch.setenv(SERVER_KEY_ENV, llama_server.api_key)
    out = tmp_path / "out"
    # each request is bounded at ~$0.00007 before it is sent (UTF-8 bytes of its messages at the input price, plus
    # 16 output tokens): a $0.0002 cap lets two or three through, then stops the run before the cap could pass
    results, lines = compare_in_process(task, out, limit=6, max_api_usd=0.0002)
    rows = {row["variant"]: row for row in results["runs"]}
    stopped = rows["0-shot@served"]
    assert stopped["status"] == "stopped_budget" and "stopped for budget" in stopped["error"]
    assert 0 < stopped["api_usd_spent"] <= 0.0002
    record = json.loads((out / stopped["record"]).read_text())
    sent = record["endpoint"]["requests"]
    assert 0 < sent < 6 and record["endpoint"]["budget_usd"] == 0.0002
    assert rows["0-shot"]["status"] == "ok"  # the local arm is not capped
    assert any("STOPPED" in line for line in lines)

    # a bigger cap: the requests already answered come from the cache, only the rest are paid
    results, _ = compare_in_process(task, out, limit=6, max_api_usd=1.0)
    finished = {row["variant"]: row for row in results["runs"]}["0-shot@served"]
    record = json.loads((out / finished["record"]).read_text())
    assert finished["status"] == "ok"
    assert record["endpoint"]["cache_hits"] == sent and record["endpoint"]["requests"] == 6 - sent

    # the endpoint's own cap works the same way, and --fresh asks again instead of reading the cache
    spec = yaml.safe_load(task.read_text())
    spec["endpoints"]["served"]["max_usd"] = 0.0001
    task.write_text(yaml.safe_dump(spec))
    results, _ = compare_in_process(task, out, limit=6, fresh=True)
    capped = {row["variant"]: row for row in results["runs"]}["0-shot@served"]
    assert capped["status"] == "stopped_budget" and capped["api_usd_spent"] <= 0.0001


def test_an_unset_key_variable_stops_everything_before_it_runs(tmp_path, llama_server):
    task = endpoint_task(tmp_path, llama_server, strategies={"prompt": {"shots": [0], "endpoints": ["served"]}})
    env = {k: v for k, v in os.environ.items() if k != SERVER_KEY_ENV}
    for command in (["validate", str(task)], ["compare", str(task), "--out", str(tmp_path / "out")]):
        done = advisor(*command, env=env)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and SERVER_KEY_ENV in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
