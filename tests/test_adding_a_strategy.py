"""Adding a strategy is its file, its registry entry and (it trains) its utilisation default - nothing else.

Here "its file" is this test's ``RsLoraStrategy`` (rank-stabilised LoRA, delegating the training to LoRA's
``prepare``), "its registry entry" a monkeypatched line of ``STRATEGIES``, and its utilisation default one entry
added to a copy of data/catalog. Then everything downstream works unchanged: the task file accepts it, compare plans,
runs and records it, pricing, the recommendation and the report name, colour and price it, ``advisor estimate``
lists it, and the memory preflight predicts it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.costs.data_cost import DataCostConfig
from advisor.preflight import memory_preflight
from advisor.report import publish
from harness import catalog, strategies
from harness.compare import run_compare
from harness.compare_options import CompareOptions
from harness.record import Hardware
from harness.runner import RunContext
from harness.strategies.base import Prepared, Variant, training_variants
from harness.strategies.lora import LoraConfig, LoraStrategy, lora_name
from harness.task import load_task
from tests.conftest import ROOT


class RsLoraStrategy:
    """LoRA with rank-stabilised scaling (the test's stand-in for a new strategy)."""

    name = "rslora"
    config_type = LoraConfig
    traits = dataclasses.replace(LoraStrategy.traits, display_name="rsLoRA", colour="#17becf", utilisation_key="rslora")

    def variants(self, config: LoraConfig) -> list[Variant]:
        return training_variants(self.name, config, lora_name)

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        return LoraStrategy().prepare(ctx, variant)


@pytest.fixture
def registered(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data" / "catalog", data / "catalog")
    text = (data / "catalog" / "utilisation.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "training:\n", 'training:\n  rslora:\n    u_max: 0.2\n    source: "test entry"\n    date: "2026-12-01"\n', 1
    )
    (data / "catalog" / "utilisation.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(data))
    catalog._load.cache_clear()
    monkeypatch.setitem(strategies.STRATEGIES, "rslora", RsLoraStrategy())
    yield
    catalog._load.cache_clear()


def test_a_new_strategy_runs_end_to_end_from_its_own_file(registered, classification_task, tmp_path):
    body = classification_task.read_text().replace(
        "strategies:\n",
        "strategies:\n  rslora: {rank: 4, epochs: 1, batch_size: 4, learning_rate: 5.0e-4, min_optimizer_steps: 0}\n",
    )
    classification_task.write_text(body)
    task = load_task(classification_task)
    out = tmp_path / "out"
    comparison = run_compare(
        task, CompareOptions(out_dir=out, only=["prompt", "rslora"], progress=False), isolate=False, log=lambda _: None
    )
    (rslora,) = [run for run in comparison.runs if run.record.run_info.strategy == "rslora"]
    assert rslora.record.ok, rslora.record.error
    assert rslora.path == "runs/rslora-r4.json" and rslora.record.train_info.trainable_params > 0

    analysis, report = publish(out, comparison, DataCostConfig())
    priced = next(run for run in analysis.pricing.runs if run.row.strategy == "rslora")
    # its traits' rules: the 10 examples it trained on (2 of the 12 are the validation split, shared by every arm)
    assert priced.costs.train_usd > 0 and priced.costs.labelled_examples == 10
    assert analysis.pricing.assumptions.training_utilisation["rslora"].source.startswith("curve: 0.2 x")  # its entry
    html = report.read_text()
    assert "rsLoRA r4" in html and "#17becf" in html  # its display name, its colour in the charts
    assert "rslora" in {row["strategy"] for row in json.loads((out / "results.json").read_text())["runs"]}

    estimate = CliRunner().invoke(main, ["estimate", "--model", "llama-3.2-1b", "--gpu", "a10g", "--json"])
    assert estimate.exit_code == 0, estimate.output
    methods = json.loads(estimate.output)["methods"]
    assert methods["rslora"]["trainable_params"] == methods["lora"]["trainable_params"] > 0

    check = memory_preflight(task)
    variant = RsLoraStrategy().variants(task.strategy_configs["rslora"])[0]
    assert check(variant, Hardware(device="cpu", memory_gib=0.001), 1, "none").startswith("out of memory")
