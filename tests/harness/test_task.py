"""The task loader: valid files load with defaults; every bad input is one clear UserError."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.task import load_examples, load_task
from tests.conftest import ROOT, write_jsonl

VALID = """
name: t
kind: classification
data: {train: train.jsonl, test: test.jsonl}
labels: [a, b]
"""


def load(folder: Path, body: str):
    path = folder / "task.yaml"
    path.write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
    task = load_task(path)
    return task, load_examples(task)


def error_of(folder: Path, body) -> str:
    with pytest.raises(UserError) as info:
        load(folder, body)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_fill_in(folder):
    task, data = load(folder, VALID)
    assert task.metric == "accuracy"
    assert list(task.strategy_configs) == ["prompt", "rag", "lora", "full"]
    assert task.strategy_configs["prompt"].shots == [0, 4]
    assert task.strategy_configs["lora"].rank == [8, 16]
    assert task.model_ref.name == "smollm2-135m-instruct" and task.model_ref.source == "package"
    assert [ex.target for ex in data.train] == ["a", "b"]
    assert data.train[0].id == "train:1"


def test_labels_derived_from_train_when_absent(folder):
    _, data = load(folder, VALID.replace("labels: [a, b]\n", ""))
    assert data.labels == ["a", "b"]


def test_strategy_overrides_keep_other_defaults(folder):
    task, _ = load(folder, VALID + "strategies: {lora: {rank: 16}, prompt: {shots: [2]}}\n")
    assert list(task.strategy_configs) == ["lora", "prompt"]
    assert task.strategy_configs["lora"].rank == 16 and task.strategy_configs["lora"].epochs == 2.0


def test_every_shipped_task_validates():
    tasks = sorted((ROOT / "data" / "tasks").glob("*.yaml"))
    assert len(tasks) >= 2
    for path in tasks:
        task = load_task(path)
        data = load_examples(task)
        assert data.train and data.test, path


def test_shipped_tasks_meet_the_size_requirements():
    intents = load_examples(load_task(ROOT / "data/tasks/support-intents.yaml"))
    assert len(intents.labels) >= 6 and len(intents.train) >= 300 and len(intents.test) >= 100
    handbook = load_task(ROOT / "data/tasks/quillfeather-handbook.yaml")
    qa = load_examples(handbook)
    assert len(qa.train) + len(qa.test) >= 100
    assert len(list(handbook.knowledge_path.glob("*.md"))) >= 20


@pytest.mark.parametrize(
    "body, expected",
    [
        (VALID + "metrik: accuracy\n", ["metrik", "did you mean 'metric'"]),
        ("kind: classification\ndata: {train: train.jsonl, test: test.jsonl}\n", ["name", "required key is missing"]),
        (VALID.replace("labels: [a, b]", "labels: 7"), ["labels", "expected a list of strings"]),
        (VALID + "strategies: {lora: {rank: 0}}\n", ["strategies.lora.rank", "minimum 1"]),
        (VALID + "strategies: {lora: {epochs: -1}}\n", ["strategies.lora.epochs", "greater than 0"]),
        (VALID + "strategies: {rag: {top_k: 0}}\n", ["strategies.rag.top_k"]),
        (VALID + "strategies: {lorra: {}}\n", ["strategies.lorra", "did you mean 'lora'"]),
        (VALID + "strategies: {lora: {rnak: 4}}\n", ["strategies.lora.rnak", "did you mean 'rank'"]),
        (VALID + "goals: {quality: 1.5}\n", ["goals.quality", "maximum 1"]),
        (VALID + "metric: f1\n", ["metric", "choose one of"]),
        (VALID.replace("kind: classification", "kind: summarise"), ["kind", "classification, qa, extraction"]),
        (VALID + "model: no-such-model\n", ["model", "unknown model 'no-such-model'", "smollm2-135m-instruct"]),
        (VALID + "deployment: {gpu: a100}\n", ["deployment.gpu", "unknown GPU 'a100'", "a100-80gb"]),
        (VALID.replace("train.jsonl", "missing.jsonl"), ["data.train", "does not exist"]),
        (VALID + "knowledge: nowhere/\n", ["knowledge", "does not exist"]),
        (VALID.replace("name: t", "name: ../../etc"), ["name", "not a safe name"]),
        ("name: t\nkind: [unclosed\n", ["task.yaml:3", "YAML syntax error", "started at line 2"]),
        ("- just\n- a list\n", ["top level", "expected a mapping"]),
        (b"name: caf\xe9\n", ["not UTF-8"]),
    ],
)
def test_bad_task_files(folder, body, expected):
    message = error_of(folder, body)
    assert "task.yaml" in message
    for part in expected:
        assert part in message, message


def test_bad_datasets(folder):
    (folder / "train.jsonl").write_text('{"text": "ok", "label": "a"}\n{"text": broken\n', encoding="utf-8")
    assert "train.jsonl:2: malformed JSON" in error_of(folder, VALID)
    (folder / "train.jsonl").write_text("", encoding="utf-8")
    assert "empty" in error_of(folder, VALID)
    write_jsonl(folder / "train.jsonl", [{"txt": "oops", "label": "a"}])
    assert "train.jsonl:1: field 'text'" in error_of(folder, VALID)
    write_jsonl(folder / "train.jsonl", [{"text": "fine", "label": "a"}])
    write_jsonl(folder / "test.jsonl", [{"text": "fine", "label": "c"}])
    message = error_of(folder, VALID)
    assert "label 'c' is not in labels" in message and "test.jsonl" in message
