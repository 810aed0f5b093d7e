"""``--set KEY=VALUE``: merged into the task file before it is checked, so an override is checked as the file is,
and what is built from the task (fingerprint, config hashes) holds the merged values."""

from __future__ import annotations

import pytest

from harness.errors import UserError
from harness.overrides import apply_overrides, parse_override
from harness.runstore import config_hash
from harness.strategies import STRATEGIES
from harness.task import load_task
from tests.conftest import ROOT

TASK = ROOT / "data" / "tasks" / "support-intents.yaml"


def test_values_are_yaml_and_missing_mappings_are_created():
    raw = {"name": "t", "strategies": {"prompt": None, "lora": {"rank": 8}}}
    merged = apply_overrides(
        raw,
        [
            "strategies.lora.rank=16",
            "strategies.prompt.shots=[0, 2]",
            "goals.quality=0.9",
            "instruction=Answer yes or no",
            'metric="accuracy"',  # YAML quoting: a colon in a value needs it
            "strategies.rag.top_k=4",
            "knowledge=null",
            "goals.quality=0.8",  # a later one wins
        ],
    )
    assert merged == {
        "name": "t",
        "strategies": {"prompt": {"shots": [0, 2]}, "lora": {"rank": 16}, "rag": {"top_k": 4}},
        "goals": {"quality": 0.8},
        "instruction": "Answer yes or no",
        "metric": "accuracy",
        "knowledge": None,
    }
    assert raw == {"name": "t", "strategies": {"prompt": None, "lora": {"rank": 8}}}  # the parsed file is kept


@pytest.mark.parametrize(
    "text, said",
    [
        ("strategies.lora.rank", "expected KEY=VALUE"),
        ("=3", "the key is empty"),
        ("goals..quality=3", "empty part"),
        ("goals.quality=[1", "not valid YAML"),
    ],
)
def test_a_malformed_override_is_one_line(text, said):
    with pytest.raises(UserError) as err:
        parse_override(text)
    assert said in str(err.value) and "\n" not in str(err.value) and str(err.value).startswith("--set ")


def test_a_key_under_a_value_that_is_not_a_mapping():
    with pytest.raises(UserError, match=r"--set name.x: name is 't' in the task file, not a mapping"):
        apply_overrides({"name": "t"}, ["name.x=1"])


def test_overrides_are_checked_like_the_file_and_name_the_set():
    for override, said in [
        ("strategies.lora.rnak=16", "strategies.lora.rnak: unknown key (did you mean 'rank'?)"),
        ("strategies.lorra.rank=16", "strategies.lorra: unknown strategy (did you mean 'lora'?)"),
        ("goals.quality=2", "goals.quality: 2.0 is above the maximum 1"),
        ("strategies.lora.rank=[8, x]", "strategies.lora.rank"),
        ("kind=poetry", "kind: unknown value 'poetry'"),
    ]:
        with pytest.raises(UserError) as err:
            load_task(TASK, [override])
        message = str(err.value)
        assert message.startswith(f"{TASK}: ") and said in message, message
        assert message.endswith(f"(from --set {override})") and "\n" not in message
    # an error the overrides did not cause names none of them
    with pytest.raises(UserError) as err:
        load_task(TASK, ["goals.quality=0.9", "data.train=missing.jsonl"])
    assert "(from --set data.train=missing.jsonl)" in str(err.value)


def test_the_task_holds_the_merged_values_and_so_do_its_hashes():
    plain = load_task(TASK)
    merged = load_task(TASK, ["strategies.lora.rank=16", "goals.quality=0.9", "evaluation.batch_size=4"])
    assert merged.strategy_configs["lora"].rank == 16 and plain.strategy_configs["lora"].rank == 8
    assert merged.spec.goals.quality == 0.9
    assert merged.fingerprint()["spec"]["evaluation"]["batch_size"] == 4
    assert merged.fingerprint() != plain.fingerprint()

    def lora_hash(task):
        variant = STRATEGIES["lora"].variants(task.strategy_configs["lora"])[0]
        assert variant.params["rank"] == task.strategy_configs["lora"].rank
        return config_hash(task.fingerprint(), variant, seed=0, limit=None, device="cpu", model=task.model_ref)

    assert lora_hash(merged) != lora_hash(plain)
    # no override: the very same task as before
    assert load_task(TASK, []).fingerprint() == plain.fingerprint()
