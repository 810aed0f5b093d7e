"""Dataset files in every format give the same examples as their JSONL equivalent; bad files are one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.datafiles import split_suffix
from harness.errors import UserError
from harness.task import load_examples, load_task
from tests.conftest import write_jsonl

TRAIN = [
    {"text": "x one", "label": "a", "key": "t1"},
    {"text": 'y, two "quoted"', "label": "b", "key": "t2"},
    {"text": "w four", "label": "a", "key": ""},
]
TEST = [{"text": "z three", "label": "b", "key": "s1"}]
EXTRACT = [
    {"text": "Ann, 30", "label": {"name": "Ann", "age": 30}},
    {"text": "Bo, 41", "label": {"name": "Bo", "age": 41}},
]


def task_file(folder: Path, train: str, test: str, kind: str = "classification", extra: str = "") -> Path:
    path = folder / "task.yaml"
    path.write_text(
        f"name: t\nkind: {kind}\ndata: {{train: '{train}', test: '{test}', id: key}}\nevaluation: {{validation: 0}}\n"
        + extra,
        encoding="utf-8",
    )
    return path


def examples(path: Path):
    data = load_examples(load_task(path))
    return data.train, data.test


def error_of(path: Path) -> str:
    with pytest.raises(UserError) as info:
        examples(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def write_frame(rows: list[dict], path: Path) -> None:
    frame = pd.DataFrame(rows)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")


@pytest.fixture
def jsonl_examples(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "test.jsonl", TEST)
    train, test = examples(task_file(tmp_path, "train.jsonl", "test.jsonl"))
    assert train[0].id == "t1" and train[2].id == "train:3"  # an empty id falls back to split:number
    return train, test


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_pandas_formats_give_the_jsonl_examples(tmp_path, jsonl_examples, suffix):
    write_frame(TRAIN, tmp_path / f"train{suffix}")
    write_frame(TEST, tmp_path / f"test{suffix}")
    assert examples(task_file(tmp_path, f"train{suffix}", f"test{suffix}")) == jsonl_examples


def test_a_csv_saved_by_excel_with_a_byte_order_mark(tmp_path, jsonl_examples):
    write_frame(TRAIN, tmp_path / "train.csv")
    (tmp_path / "train.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "train.csv").read_bytes())
    write_frame(TEST, tmp_path / "test.csv")
    assert examples(task_file(tmp_path, "train.csv", "test.csv")) == jsonl_examples


def test_a_csv_keeps_numbers_as_the_jsonl_text(tmp_path):
    rows = [{"text": "one", "label": 1, "key": 7}, {"text": "two", "label": 2, "key": 8}]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_frame(rows, tmp_path / "train.csv")
    write_frame(rows[:1], tmp_path / "test.csv")
    from_jsonl = examples(task_file(tmp_path, "train.jsonl", "test.csv"))[0]
    assert examples(task_file(tmp_path, "train.csv", "test.csv"))[0] == from_jsonl
    assert [(ex.id, ex.target) for ex in from_jsonl] == [("7", "1"), ("8", "2")]


def test_hf_dataset_folder_and_dataset_dict_splits(tmp_path, jsonl_examples):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(TRAIN).save_to_disk(str(tmp_path / "train_ds"))
    datasets.Dataset.from_list(TEST).save_to_disk(str(tmp_path / "test_ds"))
    assert examples(task_file(tmp_path, "train_ds", "test_ds")) == jsonl_examples
    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(TRAIN), "holdout": datasets.Dataset.from_list(TEST)}
    )
    both.save_to_disk(str(tmp_path / "dd"))
    # data.train takes the split named train by default; FOLDER:SPLIT names another
    assert examples(task_file(tmp_path, "dd", "dd:holdout")) == jsonl_examples
    message = error_of(task_file(tmp_path, "dd", "dd"))
    assert "splits train, holdout, not 'test'" in message and "dd:SPLIT" in message
    assert "holds one dataset" in error_of(task_file(tmp_path, "train_ds:train", "test_ds"))


def test_hf_folder_without_datasets_names_the_install(tmp_path, monkeypatch):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset_info.json").write_text("{}")
    write_jsonl(tmp_path / "test.jsonl", TEST)
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now fails as if not installed
    assert "pip install -e '.[hf]'" in error_of(task_file(tmp_path, "ds", "test.jsonl"))


def test_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "plain").mkdir()
    write_jsonl(tmp_path / "test.jsonl", TEST)
    assert "not a Hugging Face datasets folder" in error_of(task_file(tmp_path, "plain", "test.jsonl"))


def test_extraction_targets_as_json_in_a_csv_cell(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", EXTRACT)
    cells = [{"text": r["text"], "label": json.dumps(r["label"])} for r in EXTRACT]
    write_frame(cells, tmp_path / "train.csv")
    write_frame(cells[:1], tmp_path / "test.csv")
    from_csv = examples(task_file(tmp_path, "train.csv", "test.csv", kind="extraction"))
    assert from_csv[0] == examples(task_file(tmp_path, "train.jsonl", "test.csv", kind="extraction"))[0]
    assert from_csv[0][0].target == {"name": "Ann", "age": 30}
    write_frame([{"text": "Cy", "label": "not json"}], tmp_path / "test.csv")
    message = error_of(task_file(tmp_path, "train.csv", "test.csv", kind="extraction"))
    assert "test.csv: row 1: field 'label' must be a JSON object" in message


def test_parquet_struct_targets_for_extraction(tmp_path):
    write_frame(EXTRACT, tmp_path / "train.parquet")
    write_jsonl(tmp_path / "test.jsonl", EXTRACT[:1])
    train, _ = examples(task_file(tmp_path, "train.parquet", "test.jsonl", kind="extraction"))
    assert [ex.target for ex in train] == [r["label"] for r in EXTRACT]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_missing_column_names_the_columns_found(tmp_path, suffix):
    write_frame([{"text": "x", "intent": "a"}], tmp_path / f"train{suffix}")
    write_jsonl(tmp_path / "test.jsonl", TEST)
    message = error_of(task_file(tmp_path, f"train{suffix}", "test.jsonl"))
    assert f"train{suffix}: column 'label' (set by data.target in task.yaml) is missing" in message
    assert "columns here: text, intent" in message


def test_empty_files_say_so(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", TEST)
    (tmp_path / "train.csv").write_text("")
    assert "train dataset file is empty" in error_of(task_file(tmp_path, "train.csv", "test.jsonl"))
    (tmp_path / "train.csv").write_text("text,label\n")
    assert "is empty (columns: text, label)" in error_of(task_file(tmp_path, "train.csv", "test.jsonl"))
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}).to_parquet(
        tmp_path / "train.parquet"
    )
    assert "train dataset file is empty" in error_of(task_file(tmp_path, "train.parquet", "test.jsonl"))


def test_unreadable_files_name_the_file(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", TEST)
    (tmp_path / "train.parquet").write_bytes(b"not parquet at all")
    message = error_of(task_file(tmp_path, "train.parquet", "test.jsonl"))
    assert "train.parquet: cannot read it as Parquet" in message
    (tmp_path / "train.csv").write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    assert "train.csv: not UTF-8 text" in error_of(task_file(tmp_path, "train.csv", "test.jsonl"))
    (tmp_path / "train.csv").write_text('text,label\n"x,a\n')
    assert "train.csv: cannot read it as CSV" in error_of(task_file(tmp_path, "train.csv", "test.jsonl"))


def test_a_split_on_a_file_is_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "test.jsonl", TEST)
    assert "this is a file" in error_of(task_file(tmp_path, "train.jsonl:train", "test.jsonl"))


def test_split_suffix():
    assert split_suffix("data/dd:train") == ("data/dd", "train")
    assert split_suffix("train.jsonl") == ("train.jsonl", None)
    assert split_suffix("C:/data/train.csv") == ("C:/data/train.csv", None)
