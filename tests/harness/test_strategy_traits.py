"""Every registered strategy declares all its traits, the cost models and the catalogs know the keys it names,
and no module outside the registry keeps its own table keyed by strategy name."""

from __future__ import annotations

import ast
import dataclasses
import re

import pytest

from advisor.costs.memory import MEMORY_METHODS
from advisor.costs.serving import SERVING_METHODS
from harness import catalog
from harness.strategies import STRATEGIES, StrategyTraits, check_device, traits
from harness.strategies.base import LabelledExamples, Rung
from tests.conftest import ROOT

# Collections that may list strategy names without being a table about strategies: the cost models' own
# vocabularies, which the strategies' traits map onto (memory: full = every weight trained, lora = adapters on a
# 16-bit base, qlora = adapters on a 4-bit base; serving: prompt, rag, fine-tuned).
VOCABULARIES = {("advisor/costs/memory.py", "MEMORY_METHODS"), ("advisor/costs/serving.py", "SERVING_METHODS")}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_declares_every_trait(name):
    strategy = STRATEGIES[name]
    assert strategy.name == name
    t = strategy.traits
    assert isinstance(t, StrategyTraits)
    for f in dataclasses.fields(StrategyTraits):
        if f.name not in ("device_reason", "packages"):  # only strategies that need more than the core
            assert getattr(t, f.name) not in (None, "", ()) or (
                not t.trains and f.name in ("memory_method", "utilisation_key")
            ), f.name
    assert t.display_name and isinstance(t.ladder_rank, Rung) and isinstance(t.labelled_examples, LabelledExamples)
    assert re.fullmatch(r"#[0-9a-f]{6}", t.colour)
    assert t.serving_method in SERVING_METHODS
    assert set(t.devices) <= {"cpu", "cuda"} and t.devices
    if t.trains:
        assert t.memory_method in MEMORY_METHODS
        assert t.labelled_examples is LabelledExamples.TRAINING_SET
    else:
        assert t.memory_method is None and t.utilisation_key is None and not t.shardable


@pytest.mark.parametrize("name", [n for n, s in STRATEGIES.items() if s.traits.trains])
def test_the_utilisation_catalog_has_every_training_strategys_default(name):
    entry = catalog.utilisation()["training"].get(traits(name).utilisation_key)
    assert entry, f"data/catalog/utilisation.yaml: training.{traits(name).utilisation_key} is missing"
    assert 0 < float(entry["u_max"]) < 1 and entry["source"] and entry["date"]


def test_names_and_colours_tell_strategies_apart():
    for field in ("display_name", "colour"):
        values = [getattr(s.traits, field) for s in STRATEGIES.values()]
        assert len(values) == len(set(values)), field


def test_a_strategy_that_trains_has_its_memory_and_utilisation_keys():
    with pytest.raises(ValueError, match="memory method and a utilisation key"):
        dataclasses.replace(traits("lora"), utilisation_key=None)
    with pytest.raises(TypeError):
        StrategyTraits(display_name="X", ladder_rank=Rung.PROMPT, colour="#000000", trains=False)  # type: ignore


def test_device_requirements_come_from_the_traits():
    check_device("lora", "cpu")
    with pytest.raises(Exception, match="QLoRA needs a CUDA GPU"):
        check_device("qlora", "cpu")


def _collections_of_strategy_names(path):
    """(line, name) of every dict, list, tuple or set literal in ``path`` whose keys or items include two or more
    registered strategy names, with the name it is assigned to (if any)."""
    names = set(STRATEGIES)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assigned = {
        id(node.value): target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        items = (
            node.keys
            if isinstance(node, ast.Dict)
            else node.elts
            if isinstance(node, (ast.List, ast.Tuple, ast.Set))
            else []
        )
        literals = {item.value for item in items if isinstance(item, ast.Constant) and isinstance(item.value, str)}
        if len(literals & names) >= 2:
            found.append((node.lineno, assigned.get(id(node))))
    return found


def test_no_table_keyed_by_strategy_name_outside_the_registry():
    offenders = []
    for package in ("advisor", "harness"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative.startswith("harness/strategies/"):
                continue
            offenders += [
                f"{relative}:{line}"
                for line, name in _collections_of_strategy_names(path)
                if (relative, name) not in VOCABULARIES
            ]
    assert not offenders, (
        "what a strategy is belongs in its traits (harness/strategies/), not in a table here: " + ", ".join(offenders)
    )
