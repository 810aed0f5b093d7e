"""report.html from results.json only; data cannot become markup."""

import json

from advisor.report import render, write_report

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def results(**run):
    base = {"strategy": "prompt", "variant": "0-shot", "status": "ok", "quality": 0.5, "metric": "accuracy",
            "latency_ms_p50": 10.0, "latency_ms_p95": 12.0, "peak_memory_mb": 100.0, "train_seconds": None,
            "eval_batch_size": 16}
    base.update(run)
    return {"task": {"name": "demo", "kind": "classification", "metric": "accuracy", "n_train": 10, "n_test": 5,
                     "model": {"name": "m", "source": "local"}, "path": "t.yaml"},
            "device": {"device": "cpu", "cpu": "x86", "cpu_count": 2, "memory_gb": 24, "platform": "linux"},
            "options": {"seed": 0, "limit": None}, "runs": [base]}


def test_table_shows_measured_numbers():
    html = render(results())
    assert "demo" in html and "0.500" in html and "0-shot" in html


def test_failed_runs_show_their_error():
    html = render(results(status="failed", error="out of memory: 2 GiB", quality=None))
    assert "failed: out of memory: 2 GiB" in html


def test_strings_from_data_are_escaped(tmp_path):
    data = results(variant=EVIL, status="failed", error=EVIL)
    data["task"]["name"] = EVIL
    (tmp_path / "results.json").write_text(json.dumps(data))
    html = write_report(tmp_path).read_text()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
