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


def test_multi_process_runs_say_how_they_trained():
    html = render(results(strategy="full", variant="all-weights", num_processes=4, sharding="fsdp", train_seconds=9.0))
    assert "× 4 processes, fsdp" in html
    assert "processes" not in render(results(strategy="full", variant="all-weights", num_processes=1, sharding="none"))


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


# --- the decision report: verdict first, charts inline, worst errors from the run records ---

import re  # noqa: E402
import time  # noqa: E402

from tests.advisor.test_recommend import learning_curve_rows, make_results, make_row  # noqa: E402


def decision_results():
    runs = [make_row("prompt", "4-shot", 0.15, data_usd=10.0, per_1k=0.02, prompt_tokens=240),
            make_row("rag", "top-4", 0.55, data_usd=960.0, per_1k=0.03, prompt_tokens=300), *learning_curve_rows(),
            make_row("full", "all-weights", None, status="failed", error="worker process killed by SIGKILL")]
    return make_results(runs)


def write_decision_report(folder, results=None, predictions=None):
    results = results or decision_results()
    (folder / "runs").mkdir(exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    record = {"predictions": predictions or [], "meta_info": {"packages": {"python": "3.11.7", "torch": "2.13.0+cpu"}}}
    (folder / "runs" / "lora-r8.json").write_text(json.dumps(record))
    return write_report(folder)


def test_verdict_comes_first_then_charts_and_table(tmp_path):
    html = write_decision_report(tmp_path).read_text()
    verdict = html.index('id="verdict"')
    assert verdict < html.index('id="chart-quality-cost"') < html.index('id="runs"')
    assert "No measured run meets the goals. Closest: LoRA r8 at 0.720 accuracy" in html
    assert "What would meet the goals (estimated, not measured)" in html
    assert html.count("<svg") == 4  # quality vs cost, latency, break-even, one learning curve
    for header in ("p50 ms", "p95 ms", "peak memory MB", "train s", "serve $ / 1k req", "data $", "total $ / 12 mo"):
        assert header in html
    assert "failed: worker process killed by SIGKILL" in html


def test_report_is_self_contained(tmp_path):
    html = write_decision_report(tmp_path).read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # only the SVG namespaces name a URL


def test_assumptions_and_environment(tmp_path):
    html = write_decision_report(tmp_path).read_text()
    assert "NVIDIA A10G 24GB (AWS G5) at $1.01/h (AWS on-demand, 2026-05-01)" in html
    assert "Projected: every dollar figure" in html and "Estimated, not measured" in html
    assert "measured on <b>a 2-core CPU (AMD EPYC)</b>" in html
    assert "torch 2.13.0+cpu" in html


def test_worst_errors_of_the_recommended_run_are_escaped(tmp_path):
    predictions = [{"id": f"te-{i}", "input": EVIL, "target": "billing", "prediction": "refund" if i % 2 else None,
                    "output": "<b>refund?</b>", "score": 0.0} for i in range(4)]
    predictions.append({"id": "te-ok", "input": "fine", "target": "billing", "prediction": "billing", "score": 1.0})
    html = write_decision_report(tmp_path, predictions=predictions).read_text()
    assert "Worst errors of LoRA r8" in html and "te-3" in html and "te-ok" not in html
    assert "<b>refund?</b>" not in html and "&lt;b&gt;refund?&lt;/b&gt;" in html
    assert "<b>billing</b> → <b>refund</b> ×2" in html  # the confusions line
    assert "<script" not in html and "<img" not in html


def test_missing_run_record_is_said_not_fatal(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(decision_results()))
    html = write_report(tmp_path).read_text()
    assert "is not beside results.json" in html


def test_evil_labels_stay_text_in_table_and_charts(tmp_path):
    results = decision_results()
    results["runs"][0]["variant"] = EVIL
    html = write_decision_report(tmp_path, results).read_text()
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;") >= 3  # the table, the reasons and the SVG text


def test_rerendering_takes_under_five_seconds(tmp_path):
    write_decision_report(tmp_path)
    start = time.perf_counter()
    write_report(tmp_path)
    assert time.perf_counter() - start < 5


def test_advisor_report_stores_the_recommendation_and_rerenders(tmp_path):
    import subprocess
    import sys

    (tmp_path / "results.json").write_text(json.dumps(decision_results()))
    proc = subprocess.run([sys.executable, "-m", "advisor.cli", "report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    stored = json.loads((tmp_path / "results.json").read_text())["recommendation"]
    assert (stored["strategy"], stored["variant"], stored["meets_goals"]) == ("lora", "r8", False)
    assert stored["verdict"] in (tmp_path / "report.html").read_text()


def test_report_and_recommendation_never_import_torch():
    import subprocess
    import sys

    code = ("import sys, advisor.report, advisor.recommend, advisor.charts, advisor.breakeven, advisor.learning_curve; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
