"""The task file's JSON Schema (``advisor schema --format json``, committed as docs/task-schema.json): generated from
the same dataclasses as the checks and the Markdown reference, so it accepts the shipped tasks and rejects what
``load_task`` rejects; every shipped task file names it for editors."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from advisor.cli import main
from advisor.schema_doc import task_json_schema, task_json_schema_text
from tests.conftest import ROOT

SCHEMA_FILE = ROOT / "docs" / "task-schema.json"
SHIPPED = sorted(
    [*(ROOT / "data" / "tasks").glob("*.yaml"), *(ROOT / "docs" / "examples").glob("*.yaml")]
    + [*(ROOT / "tests" / "data" / "tasks").glob("*.yaml")]
)
LINE = "# yaml-language-server: $schema="


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = task_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(validator: Draft202012Validator, task: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or 'top level'}: {e.message}" for e in validator.iter_errors(task)]


def test_the_committed_schema_is_up_to_date():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == task_json_schema_text(), (
        "run: advisor schema --format json > docs/task-schema.json"
    )


def test_the_command_prints_it_and_markdown_stays_the_default():
    runner = CliRunner()
    as_json = runner.invoke(main, ["schema", "--format", "json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output) == task_json_schema()
    default = runner.invoke(main, ["schema"])
    assert default.output == (ROOT / "docs" / "task-schema.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_task_names_the_schema_and_is_valid(path: Path, validator):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(LINE), f"{path}: start it with {LINE}<relative path to docs/task-schema.json>"
    assert (path.parent / first.removeprefix(LINE)).resolve() == SCHEMA_FILE
    assert errors(validator, yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def _task() -> dict:
    return yaml.safe_load((ROOT / "data" / "tasks" / "support-intents.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "change, where",
    [
        ({"strategies": {"lora": {"rnak": 8}}}, "strategies.lora: Additional properties are not allowed ('rnak'"),
        ({"strategis": {"lora": {}}}, "top level: Additional properties are not allowed ('strategis'"),
        ({"strategies": {"lorra": {}}}, "strategies: Additional properties are not allowed ('lorra'"),
        ({"kind": "poetry"}, "kind: 'poetry' is not one of"),
        ({"goals": {"quality": 2}}, "goals.quality: 2 is greater than the maximum of 1"),
        ({"strategies": {"lora": {"learning_rate": 0}}}, "strategies.lora.learning_rate"),
        ({"strategies": {"lora": {"rank": "eight"}}}, "strategies.lora.rank"),
        ({"strategies": {"qlora": {"quant_type": "nf8"}}}, "strategies.qlora.quant_type: 'nf8' is not one of"),
        ({"evaluation": {"load_test": {"concurency": [1]}}}, "evaluation.load_test: Additional properties"),
        ({"data_cost": {"minutes_per_exampel": 3}}, "data_cost: Additional properties are not allowed"),
        ({"endpoints": {"api": {"base_url": "https://x/v1"}}}, "endpoints.api: 'model' is a required property"),
        ({"endpoints": {"api": {"base_url": "https://x/v1", "model": "m", "prize": {}}}}, "endpoints.api: Additional"),
        ({"endpoints": {"a@b": {"base_url": "https://x/v1", "model": "m"}}}, "endpoints: 'a@b' does not match"),
        ({"data": {"train": "a.jsonl", "test": None}}, "data.test: None is not of type 'string'"),
    ],
)
def test_a_mistake_is_rejected_where_it_is(validator, change, where):
    task = _merge(_task(), change)
    found = errors(validator, task)
    assert any(e.startswith(where) for e in found), found


@pytest.mark.parametrize(
    "change",
    [
        {"strategies": {"lora": {"rank": [8, 16], "learning_rate": 0.001}}},  # tunable: a value or a list
        {"strategies": {"prompt": None, "rag": None}},  # `prompt:` with nothing after it: the defaults
        {"strategies": None},
        {"evaluation": {"load_test": None, "validation": None}},
        {"evaluation": {"load_test": {"concurrency": 4}}},  # a lone number for a list of numbers, as build takes
        {
            "endpoints": {
                "api": {
                    "base_url": "https://x/v1",
                    "model": "m",
                    "price": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2},
                }
            }
        },
        {"data_cost": {"minutes_per_example": 3}},
    ],
)
def test_what_load_task_accepts_the_schema_accepts(validator, change):
    assert errors(validator, _merge(_task(), change)) == []


def _merge(task: dict, change: dict) -> dict:
    merged = copy.deepcopy(task)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_fields_carry_their_docs_defaults_and_bounds():
    schema = task_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    lora = schema["properties"]["strategies"]["properties"]["lora"]
    rank = lora["properties"]["rank"]
    assert "LoRA rank" in rank["description"] and "Tunable" in rank["description"]
    assert rank["default"] == [8, 16] and {"type": "integer", "minimum": 1} in rank["anyOf"]
    assert schema["properties"]["kind"]["enum"] == ["classification", "qa", "extraction"]
    assert schema["required"] == ["name", "kind", "data"]
    assert schema["properties"]["data"]["required"] == ["train", "test"]
    assert os.path.basename(SCHEMA_FILE) == "task-schema.json"
