"""report.html from the priced runs; data cannot become markup; `advisor report` re-renders from the records."""

import json
import re
import subprocess
import sys
import time

import pytest

from advisor.recommend import analyse
from advisor.report import render, republish
from advisor.wording import usd
from harness.record import Prediction
from harness.runstore import RESULTS_SCHEMA
from harness.typedjson import to_jsonable
from tests.advisor.factories import (
    learning_curve_rows,
    make_comparison,
    make_record,
    make_results,
    make_row,
    save_comparison,
)

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def page(name="demo", **run) -> str:
    settings = {"strategy": "prompt", "variant": "0-shot", "quality": 0.5, "p95": 12.0, **run}
    return render(
        analyse(
            make_results(
                [make_row(settings.pop("strategy"), settings.pop("variant"), settings.pop("quality"), **settings)],
                name=name,
            )
        )
    )


def test_table_shows_measured_numbers():
    html = page()
    assert "demo" in html and "0.500" in html and "0-shot" in html


def test_multi_process_runs_say_how_they_trained():
    html = page(strategy="full", variant="all-weights", train_usd=1.0, num_processes=4, sharding="fsdp")
    assert "× 4 processes, fsdp" in html
    assert "processes" not in page(strategy="full", variant="all-weights", train_usd=1.0)


def test_failed_runs_show_their_error():
    html = page(status="failed", error="out of memory: 2 GiB", quality=None)
    assert "failed: out of memory: 2 GiB" in html


def test_strings_from_data_are_escaped():
    html = page(name=EVIL, variant=EVIL, status="failed", error=EVIL)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


# --- the decision report: verdict first, charts inline, worst errors from the run records ---


def decision_runs(predictions=None):
    runs = [
        make_row("prompt", "4-shot", 0.15, data_usd=10.0, per_1k=0.02, prompt_tokens=240),
        make_row("rag", "top-4", 0.55, data_usd=960.0, per_1k=0.03, prompt_tokens=300),
        *learning_curve_rows(),
        make_row("full", "all-weights", None, status="failed", error="worker process killed by SIGKILL"),
    ]
    chosen = runs[4].record  # lora r8
    chosen.predictions = predictions or []
    chosen.meta_info.packages.update(torch="2.13.0+cpu")
    return runs


def decision_report(predictions=None, runs=None) -> str:
    return render(analyse(make_results(runs or decision_runs(predictions))))


def test_verdict_comes_first_then_charts_and_table():
    html = decision_report()
    verdict = html.index('id="verdict"')
    assert verdict < html.index('id="chart-quality-cost"') < html.index('id="runs"')
    assert "No measured run meets the goals. Closest: LoRA r8 at 0.720 accuracy" in html
    assert "What would meet the goals (estimated, not measured)" in html
    assert html.count("<svg") == 4  # quality vs cost, latency, break-even, one learning curve
    for header in ("p50 ms", "p95 ms", "memory growth MiB", "train s", "serve $ / 1k req", "data $", "total $ / 12 mo"):
        assert header in html
    assert "failed: worker process killed by SIGKILL" in html


def test_report_is_self_contained():
    html = decision_report()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # only the SVG namespaces name a URL


def test_assumptions_and_environment():
    html = decision_report()
    assert "NVIDIA A10G 24GB (AWS G5) at $1.01/h (AWS on-demand, 2026-05-01)" in html
    assert "Projected: every dollar figure" in html and "Estimated, not measured" in html
    assert "measured on <b>a 2-core CPU (AMD EPYC)</b>" in html
    assert "torch 2.13.0+cpu" in html


def test_worst_errors_of_the_recommended_run_are_escaped():
    predictions = [
        Prediction(
            id=f"te-{i}",
            input=EVIL,
            target="billing",
            prediction="refund" if i % 2 else None,
            output="<b>refund?</b>",
            score=0.0,
            prompt_tokens=9,
            output_tokens=3,
        )
        for i in range(4)
    ]
    predictions.append(
        Prediction(
            id="te-ok",
            input="fine",
            target="billing",
            prediction="billing",
            output="billing",
            score=1.0,
            prompt_tokens=9,
            output_tokens=1,
        )
    )
    html = decision_report(predictions)
    assert "Worst errors of LoRA r8" in html and "te-3" in html and "te-ok" not in html
    assert "<b>refund?</b>" not in html and "&lt;b&gt;refund?&lt;/b&gt;" in html
    assert "<b>billing</b> → <b>refund</b> ×2" in html  # the confusions line
    assert "<script" not in html and "<img" not in html


def test_a_missing_run_record_is_a_one_line_error(tmp_path):
    comparison = make_comparison([run.stored for run in decision_runs()])
    save_comparison(tmp_path, comparison)
    (tmp_path / "runs" / "lora-r8.json").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "report", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "lora-r8.json is missing" in proc.stderr


def test_evil_labels_stay_text_in_table_and_charts():
    runs = decision_runs()
    runs[0] = make_row("prompt", EVIL, 0.15, data_usd=10.0, per_1k=0.02, prompt_tokens=240)
    html = decision_report(runs=runs)
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;") >= 3  # the table, the reasons and the SVG text


def test_rerendering_takes_under_five_seconds(tmp_path):
    save_comparison(tmp_path, make_comparison([run.stored for run in decision_runs()]))
    republish(tmp_path)
    start = time.perf_counter()
    republish(tmp_path)
    assert time.perf_counter() - start < 5


def test_advisor_report_reprices_from_the_records_and_rerenders(tmp_path):
    save_comparison(tmp_path, make_comparison([run.stored for run in decision_runs()]))
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "report", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    stored = json.loads((tmp_path / "results.json").read_text())
    assert (
        stored["recommendation"]["strategy"],
        stored["recommendation"]["variant"],
        stored["recommendation"]["meets_goals"],
    ) == ("lora", "r8", False)
    assert stored["recommendation"]["verdict"] in (tmp_path / "report.html").read_text()
    # priced from the records: the measured FLOPs on the task's GPU, the labelled examples each arm used
    lora = next(row for row in stored["runs"] if row["variant"] == "r8")
    assert lora["train_usd"] > 0 and lora["labelled_examples"] == 384 and stored["costs"]["gpu"] == "a10g"
    # training = compute + fixed per job, both shown, the fixed items and their sources among the assumptions
    assert lora["train_usd"] == pytest.approx(lora["train_flop_usd"] + lora["train_fixed_usd"])
    html = (tmp_path / "report.html").read_text()
    assert f"+ {usd(lora['train_fixed_usd'])} fixed" in html and "fixed s per job" in html
    assert "job_overheads.yaml" in html and "per-second-billing" in html


def test_version_1_folders_still_render(tmp_path):
    """results.json and records written before the typed record (schema 1) load and re-render."""
    record = make_record("prompt", "4-shot", 0.5, params={"shots": 4}).to_json()
    memory = record["run_info"].pop("memory")
    record.update(schema=1)
    record["run_info"]["memory"] = {
        "peak_memory_mb": memory["growth_mib"],
        "peak_memory_kind": "cpu_rss_growth",
        "baseline_memory_mb": 500.0,
        "reserved_memory_mb": None,
    }
    evaluation = record["eval_info"]
    evaluation.pop("memory")
    evaluation.update(eval_peak_memory_mb=12.0, eval_peak_memory_kind="cpu_rss_growth", eval_baseline_memory_mb=1.0)
    hardware = record["meta_info"]["hardware"]
    hardware["memory_gb"] = hardware.pop("memory_gib")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "prompt-4-shot.json").write_text(json.dumps(record))
    comparison = make_comparison([])
    results = {
        "schema": 1,
        "task": to_jsonable(comparison.task),
        "device": {"device": "cpu", "cpu": "x86", "cpu_count": 2, "memory_gb": 24.0},
        "options": {"seed": 0, "limit": None},
        "runs": [{"record": "runs/prompt-4-shot.json"}],
        "costs": {"data_cost": {"minutes_per_example": 2.0}},
    }
    del results["task"]["data_cost"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    analysis, report = republish(tmp_path)
    row = analysis.pricing.runs[0].row
    assert row.memory_growth_mib == memory["growth_mib"] and row.memory_peak_mib == memory["growth_mib"] + 500.0
    assert analysis.pricing.comparison.device.memory_gib == 24.0
    assert analysis.pricing.runs[0].costs.data_usd == 4 * 2.0 / 60 * 30  # 4 shots at the v1 data_cost settings
    assert "prompting 4-shot" in report.read_text()
    assert json.loads((tmp_path / "results.json").read_text())["schema"] == RESULTS_SCHEMA


def test_report_and_recommendation_never_import_torch():
    code = (
        "import sys, advisor.report, advisor.recommend, advisor.charts, advisor.breakeven, advisor.learning_curve; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
