"""The report's "plan beside what it took": advisor plan's figures per arm on the deployment GPU beside the
comparison's projected GPU-hours; re-derived from the task file, or a note when it is not reachable."""

from __future__ import annotations

import dataclasses

import pytest

from advisor.cluster_plan import Cluster, plan_compare
from advisor.plan_report import plan_beside_actual
from advisor.recommend import analyse
from advisor.report import render
from harness.runstore import CompareSettings
from harness.task import load_task
from tests.advisor.factories import make_results, make_row
from tests.conftest import ROOT

SUPPORT = ROOT / "data" / "tasks" / "support-intents.yaml"


def analysis(path: str, **options):
    pricing = make_results([make_row("prompt", "0-shot", 0.5), make_row("lora", "r8-lr0.001", 0.7, train_usd=0.02)])
    task = dataclasses.replace(pricing.comparison.task, path=path)
    settings = CompareSettings(only=["prompt", "lora"], seeds=1, trials=2, **options)
    pricing.comparison = dataclasses.replace(pricing.comparison, task=task, options=settings)
    return analyse(pricing)


def test_the_plan_sits_beside_the_projection_per_arm():
    result = analysis(str(SUPPORT))
    section = plan_beside_actual(result.pricing.comparison, result.cost)
    assert section.note is None and section.gpu == "a10g" and section.gpus == 1
    assert [a.arm for a in section.arms] == ["prompting", "LoRA"]
    direct = plan_compare(load_task(SUPPORT), Cluster("a10g", 1), seeds=1, trials=2, only=["prompt", "lora"])
    assert section.total is not None
    assert section.total.planned_gpu_hours == pytest.approx(direct.gpu_hours)
    assert section.total.planned_runs == len(direct.runs)
    assert section.wall_hours == pytest.approx(direct.wall_hours)  # one GPU: wall = GPU-hours
    assert section.wall_hours == pytest.approx(direct.gpu_hours)
    prompt, lora = section.arms
    # an evaluation-only arm: the projection prices requests at serving rates, the plan cold-starts each job
    assert prompt.runs == 1 and prompt.projected_gpu_hours and prompt.ratio is None
    assert lora.comparable and lora.planned_gpu_hours > 0
    assert section.total.ratio is None  # the total mixes both kinds
    totals = section.totals()
    assert totals is not None and totals["gpu_hours"] == pytest.approx(direct.gpu_hours) and totals["nodes"] == 1
    html = render(result)
    assert 'id="plan-table"' in html and "plan ÷ projected" in html


def test_an_unreachable_task_file_leaves_a_note():
    result = analysis("nowhere/demo.yaml")
    section = plan_beside_actual(result.pricing.comparison, result.cost)
    assert section.total is None and section.totals() is None and "not reachable" in (section.note or "")
    html = render(result)
    assert 'id="plan-note"' in html and 'id="plan-table"' not in html


def test_a_plan_that_cannot_fit_leaves_a_note():
    task = ROOT / "docs" / "examples" / "llama70b-support.yaml"
    result = analysis(str(task))
    section = plan_beside_actual(result.pricing.comparison, result.cost)
    assert section.total is None and "no plan on 1 x a10g" in (section.note or "")
