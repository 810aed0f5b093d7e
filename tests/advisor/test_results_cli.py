"""results.csv and predictions.parquet beside results.json at the end, and ``advisor results DIR`` in each format."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from advisor.report import republish
from advisor.results_cli import results
from harness.record import Prediction
from tests.advisor.factories import make_comparison, make_row, save_comparison


def predictions(n: int, *, extraction: bool = False) -> list[Prediction]:
    return [
        Prediction(
            id=f"te-{i}",
            input=f"message {i}",
            target={"name": "Ann"} if extraction else "a",
            prediction=None if i == 0 else ({"name": "Ann"} if extraction else "a"),
            output="…",
            score=float(i > 0),
            prompt_tokens=12,
            output_tokens=3,
        )
        for i in range(n)
    ]


N_TEST = 3


@pytest.fixture
def folder(tmp_path):
    """A finished compare's folder: two runs with N_TEST predictions each and a failed run without any."""
    runs = [
        make_row("prompt", "4-shot", 0.5, data_usd=10.0, per_1k=0.02),
        make_row("lora", "r8", 0.8, train_usd=0.12, data_usd=960.0, per_1k=0.008, predictions=predictions(N_TEST)),
        make_row("full", "all-weights", None, status="failed", error="worker process killed by SIGKILL"),
    ]
    runs[0].record.predictions = predictions(N_TEST, extraction=True)
    save_comparison(tmp_path, make_comparison([run.stored for run in runs]))
    republish(tmp_path)  # as `advisor report DIR` (and the end of a compare) writes them
    return tmp_path


def test_results_csv_has_a_row_per_run_with_the_json_fields(folder):
    rows = json.loads((folder / "results.json").read_text())["runs"]
    table = pd.read_csv(folder / "results.csv")
    assert len(table) == len(rows) == 3
    assert list(table["strategy"]) == ["prompt", "lora", "full"]
    assert table.loc[1, "quality"] == pytest.approx(0.8)
    assert table.loc[1, "train_usd"] == pytest.approx(rows[1]["train_usd"]) and rows[1]["train_usd"] > 0
    # nested objects flattened to dotted columns, every top-level field of results.json kept
    assert any(c.startswith("self_check.") for c in table.columns)
    assert {k for k, v in rows[1].items() if not isinstance(v, dict)} <= set(table.columns)
    assert table.loc[2, "error"] == "worker process killed by SIGKILL"


def test_predictions_parquet_has_a_row_per_run_and_test_example(folder):
    table = pd.read_parquet(folder / "predictions.parquet")
    assert len(table) == 2 * N_TEST  # the failed run answered nothing
    assert set(table["run"]) == {"prompt-4-shot", "lora-r8"}
    lora = table[table["run"] == "lora-r8"].reset_index()
    assert list(lora["id"]) == ["te-0", "te-1", "te-2"] and pd.isna(lora.loc[0, "prediction"])
    assert list(lora["score"]) == [0.0, 1.0, 1.0] and set(lora["strategy"]) == {"lora"}
    prompt = table[table["run"] == "prompt-4-shot"].reset_index()
    assert json.loads(prompt.loc[1, "target"]) == {"name": "Ann"}  # an extraction object as JSON text


def invoke(*args: str):
    return CliRunner().invoke(results, list(args))


def test_table_and_markdown_show_the_main_columns(folder):
    table = invoke(str(folder))
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:4] == ["strategy", "variant", "status", "quality"] and len(lines) == 2 + 3
    assert "0.800" in lines[3] and "$" in lines[3] and "failed" in lines[4]
    markdown = invoke(str(folder), "--format", "markdown").output.splitlines()
    assert markdown[0].startswith("| strategy | variant |") and markdown[1].startswith("| --- |") and len(markdown) == 5


def test_csv_and_json_give_every_column(folder):
    as_csv = list(csv.DictReader(io.StringIO(invoke(str(folder), "--format", "csv").output)))
    written = pd.read_csv(folder / "results.csv")
    assert len(as_csv) == 3 and list(as_csv[0]) == list(written.columns)
    as_json = json.loads(invoke(str(folder), "--format", "json").output)
    assert [row["variant"] for row in as_json] == ["4-shot", "r8", "all-weights"]
    assert all(list(row) == list(written.columns) for row in as_json)
    assert "self_check" not in written.columns  # null for the failed run: only the others' dotted columns


def test_a_folder_without_results_is_one_line_and_exit_2(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        outcome = invoke(str(folder))
        assert outcome.exit_code == 2 and len(outcome.output.strip().splitlines()) == 1
    (tmp_path / "results.json").write_text(json.dumps({"schema": 4, "runs": []}))
    outcome = invoke(str(tmp_path))
    assert outcome.exit_code == 2 and "no runs yet" in outcome.output
