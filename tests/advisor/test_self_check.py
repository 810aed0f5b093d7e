"""The self-check: the estimator's prediction for a run's own settings and hardware, beside what it measured."""

from __future__ import annotations

import dataclasses
import json

import pytest

from advisor.costs.compute import measured_training, peak_flops, training_utilisation
from advisor.costs.inference_memory import inference_memory
from advisor.costs.memory import training_memory
from advisor.recommend import analyse
from advisor.report import render, republish
from advisor.self_check import annotate, predict_run, ratio, self_checks
from harness import catalog
from harness.record import CheckedPhase, MemoryKind, MemoryUse, RunRecord, SelfCheck
from harness.runstore import StoredRun, load_comparison
from harness.shapes import ModelShape
from harness.units import MIB
from tests.advisor.factories import A10G, make_comparison, make_record, make_results, make_row, save_comparison

SHAPE = ModelShape.from_catalog("smollm2-135m-instruct")
LORA = {"rank": 8, "batch_size": 8, "max_seq_len": 128, "epochs": 2.0}


def trained(strategy: str = "lora", variant: str = "r8", *, params=None, seconds: float = 100.0, **train) -> RunRecord:
    """A finished fine-tuning run of SmolLM2 on the 2-core CPU, as the harness records one today."""
    record = make_record(strategy, variant, 0.8, trained=True, params=params or LORA)
    record.run_info.model_shape = SHAPE
    assert record.train_info
    settings = {"step_seconds_median": seconds / 12, "padded_len_max": 96, "logit_window_max": 7, **train}
    record.train_info = dataclasses.replace(record.train_info, train_seconds=seconds, **settings)
    return record


def test_memory_is_the_memory_model_at_the_runs_own_settings_and_the_ratio_is_measured_over_predicted():
    record = trained()
    check = predict_run(record)
    assert check is not None and check.phase is CheckedPhase.TRAINING
    expected = training_memory(
        SHAPE,
        "lora",
        batch_size=8,
        seq_len=96,  # the widest batch it recorded, not max_seq_len
        precision="fp32",
        rank=8,
        loss_tokens_per_sequence=7,
        gradient_checkpointing=False,
    )
    assert check.predicted_peak_memory_bytes == expected.peak
    assert check.peak_phase == expected.peak_phase
    # on a CPU: the growth of the run's resident memory (weights included), and it says so
    assert check.measured_peak_memory_bytes == 900.0 * MIB
    assert check.memory_ratio == pytest.approx(900.0 * MIB / expected.peak)
    assert check.memory_basis.startswith("cpu rss")


def test_cuda_runs_compare_the_training_peak_of_allocated_memory():
    record = trained()
    record.meta_info = dataclasses.replace(record.meta_info, hardware=A10G)
    cuda = MemoryUse(kind=MemoryKind.CUDA_MAX_ALLOCATED, peak_mib=3000.0, growth_mib=2500.0)
    record.train_info = dataclasses.replace(record.train_info, memory=cuda, precision="bf16")
    check = predict_run(record)
    assert check.memory_basis.startswith("cuda max allocated")
    assert check.measured_peak_memory_bytes == 3000.0 * MIB and check.precision == "bf16"
    assert check.catalog_device == "a10g"


def test_time_at_the_default_and_at_the_calibrated_utilisation():
    fast, slow = trained(variant="r8", seconds=100.0), trained(variant="r16", seconds=300.0)
    checks = self_checks([fast, slow])
    work = measured_training(fast)
    peak = peak_flops(catalog.gpus()["cpu-2core"], "fp32")
    default = training_utilisation("lora", work.tokens_per_step_per_gpu).value  # the catalog curve at its step
    check = checks[0]
    assert check.catalog_device == "cpu-2core" and check.utilisation_default == default
    assert check.predicted_train_seconds_default == pytest.approx(work.flops / (peak * default))
    assert check.time_ratio_default == pytest.approx(100.0 / check.predicted_train_seconds_default)
    # calibrated over both runs (same work, 400 s in all): each is predicted at 200 s
    assert check.calibration_runs == 2
    assert check.predicted_train_seconds_calibrated == pytest.approx(200.0)
    assert (check.time_ratio_calibrated, checks[1].time_ratio_calibrated) == pytest.approx((0.5, 1.5))
    assert check.predicted_step_seconds_default == pytest.approx(check.predicted_train_seconds_default / 10)
    assert check.step_ratio_default == pytest.approx((100.0 / 12) / check.predicted_step_seconds_default)


def test_one_run_of_a_kind_calibrates_on_itself_and_says_so():
    (check,) = self_checks([trained()])
    assert check.calibration_runs == 1 and check.time_ratio_calibrated == pytest.approx(1.0)
    assert any("this run alone" in note for note in check.notes)


def test_tokens_are_the_estimators_count_against_the_tokens_trained():
    check = predict_run(trained())
    assert check.predicted_tokens == 384 * 128 * 2.0  # examples x max_seq_len x epochs
    assert check.measured_tokens == 100_000 and check.tokens_ratio == pytest.approx(100_000 / (384 * 128 * 2))


def test_records_without_the_batch_shape_are_predicted_at_max_seq_len():
    record = trained(padded_len_max=None, logit_window_max=None)
    check = predict_run(record)
    expected = training_memory(SHAPE, "lora", batch_size=8, seq_len=128, precision="fp32")  # fused AdamW: the default
    assert check.predicted_peak_memory_bytes == expected.peak
    assert any("max_seq_len" in note for note in check.notes)
    # the answer-window loss's positions, when recorded, give the mean window: 3,840 over 384 x 2 rows = 5
    record.train_info.lm_head_positions = 3_840
    windowed = training_memory(SHAPE, "lora", batch_size=8, seq_len=128, precision="fp32", loss_tokens_per_sequence=5)
    assert predict_run(record).predicted_peak_memory_bytes == windowed.peak


def test_fsdp_runs_are_predicted_per_device():
    params = {"batch_size": 8, "max_seq_len": 128, "epochs": 2.0}
    one = predict_run(trained("full", "all", params=params))
    four = predict_run(trained("full", "all", params=params, num_processes=4, sharding="fsdp"))
    assert four.predicted_peak_memory_bytes < one.predicted_peak_memory_bytes


def test_prompt_runs_get_an_inference_check_without_time():
    record = make_record("prompt", "0-shot", 0.5, prompt_tokens=100.0)
    record.run_info.model_shape = SHAPE
    check = predict_run(record)
    expected = inference_memory(SHAPE, batch_size=16, prompt_tokens=100, output_tokens=16, precision="fp32")
    assert check.phase is CheckedPhase.INFERENCE and check.predicted_peak_memory_bytes == expected.total
    assert check.predicted_train_seconds_default is None and check.predicted_tokens is None


def test_no_check_without_what_it_needs():
    assert predict_run(make_record("lora", "r8", None, status="failed", error="boom")) is None
    assert predict_run(make_record("prompt", "0-shot", 0.5)) is None  # no model shape recorded
    assert ratio(1.0, None) is None and ratio(None, 2.0) is None and ratio(1.0, 0.0) is None
    assert ratio(3.0, 2.0) == 1.5


def test_the_check_survives_json_and_old_records_load_without_it():
    record = trained()
    record.self_check = predict_run(record)
    again = RunRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again.self_check == record.self_check and isinstance(again.self_check, SelfCheck)
    old = record.to_json()
    del old["self_check"]
    for key in ("padded_len_max", "logit_window_max"):
        del old["train_info"][key]
    loaded = RunRecord.from_json(old)
    assert loaded.self_check is None and loaded.train_info.padded_len_max is None


def test_annotate_writes_the_checks_into_the_stored_records_and_results(tmp_path):
    runs = [
        StoredRun(trained(), "runs/lora-r8.json"),
        StoredRun(make_record("lora", "r4", None, status="failed"), "runs/lora-r4.json"),
    ]
    comparison = make_comparison(runs)
    save_comparison(tmp_path, comparison)
    annotate(tmp_path, comparison)
    stored = json.loads((tmp_path / "runs" / "lora-r8.json").read_text())
    assert stored["self_check"]["memory_ratio"] == pytest.approx(runs[0].record.self_check.memory_ratio)
    assert json.loads((tmp_path / "runs" / "lora-r4.json").read_text())["self_check"] is None
    # advisor report (and a resumed compare) goes through publish: the check reaches results.json and the report
    analysis, report = republish(tmp_path)
    rows = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert rows[0]["self_check"]["phase"] == "training"
    assert "Our model vs this run" in report.read_text()
    assert load_comparison(tmp_path).runs[0].record.self_check == runs[0].record.self_check


def test_report_table_shows_predicted_measured_and_ratios():
    row = make_row("lora", "r8", 0.8, train_usd=1.0, params=LORA)
    row.stored.record.run_info.model_shape = SHAPE
    row.stored.record.self_check = check = predict_run(row.stored.record)
    html = render(analyse(make_results([dataclasses.replace(row, row=type(row.row).of(row.stored))])))
    table = html[html.index('id="self-check"') : html.index("</table>", html.index('id="self-check"'))]
    assert f"{check.memory_ratio:,.2f}" in table and f"{check.time_ratio_default:,.2f}" in table
    # the memory basis and the notes are said once each, below the table, with the runs they apply to
    below = html[html.index('id="self-check-notes"') :]
    assert "measured memory: cpu rss" in below and "by construction <span" in below and "(every run)" in below
    assert "Our model vs this run" not in render(analyse(make_results([make_row("prompt", "0-shot", 0.5)])))
