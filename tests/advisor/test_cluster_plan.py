"""``advisor.cluster_plan``: a compare's runs expanded as compare plans them, estimated, and scheduled on a cluster -
its sums add up, its schedule is feasible, and it follows compare's rules (trials before finals, served trials)."""

from __future__ import annotations

import math

import pytest

from advisor.cluster_plan import Cluster, ClusterPlan, check_invariants, plan_compare, resolve_gpu
from advisor.cluster_schedule import Job, ScheduleError, schedule
from advisor.comparison_cost import RunKind
from advisor.costs import estimate_training
from harness.errors import UserError
from harness.task import load_task
from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "data" / "tasks").glob("*.yaml"))
TASK_8B = ROOT / "tests" / "data" / "tasks" / "intents-8b.yaml"
TASK_70B = ROOT / "docs" / "examples" / "llama70b-support.yaml"


def planned(path, gpu="h100-sxm", gpus=8, nodes=1, **options) -> ClusterPlan:
    return plan_compare(load_task(path), Cluster(gpu, gpus, nodes), **options)


def assert_consistent(plan: ClusterPlan) -> None:
    assert check_invariants(plan) == []
    assert sum(r.gpu_hours for r in plan.runs) == pytest.approx(plan.gpu_hours)
    assert plan.wall_hours >= plan.gpu_hours / plan.cluster.gpus - 1e-9
    assert sum(r.usd for r in plan.runs) == pytest.approx(plan.usd)
    assert plan.gpu_usd == pytest.approx(plan.gpu_hours * plan.usd_per_gpu_hour)
    for run in plan.runs:
        assert run.end_h == pytest.approx(run.start_h + run.estimate.hours)
        assert run.gpu_hours == pytest.approx(run.gpus * (run.end_h - run.start_h))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
@pytest.mark.parametrize(("gpu", "gpus", "nodes"), [("a10g", 1, 1), ("a10g", 4, 2), ("h100-sxm", 8, 1)])
def test_shipped_tasks_plan_consistently(path, gpu, gpus, nodes):
    plan = planned(path, gpu, gpus, nodes)
    assert plan.runs
    assert_consistent(plan)


def test_the_8b_task_expands_like_compare():
    plan = planned(TASK_8B, seeds=None)
    kinds = {kind: sum(r.kind is kind for r in plan.runs) for kind in RunKind}
    # prompt 3 trials + 1 final, rag 2 + 1; lora 3 trials, finals at 3 fractions x 3 seeds; qlora 2 trials, 2 x 3;
    # full 2 trials (its grid has two points), 1 x 3; lora+rag 2 trials, 1 x 3
    assert kinds[RunKind.TRIAL] == 3 + 2 + 3 + 2 + 2 + 2
    assert kinds[RunKind.FINAL] == 6
    assert kinds[RunKind.CURVE] == 2 + 1
    assert kinds[RunKind.SEED] == 2 * (3 + 2 + 1 + 1)
    assert len(plan.runs) == 14 + 6 + 3 + 14
    assert plan.splits == {"train": 326, "validation": 58, "test": 128}
    assert plan.model == "llama-3.1-8b"
    assert_consistent(plan)


def test_finals_wait_for_their_trials_and_the_rag_arms_for_rags_choice():
    plan = planned(TASK_8B)
    by_id = {r.id: r for r in plan.runs}
    rag_trials = {r.id for r in plan.runs if r.strategy == "rag" and r.kind is RunKind.TRIAL}
    for run in plan.runs:
        trials = {r.id for r in plan.runs if r.arm == run.arm and r.kind is RunKind.TRIAL}
        if run.kind is not RunKind.TRIAL:
            assert trials <= set(run.depends_on)
            assert run.start_h >= max(by_id[t].end_h for t in trials) - 1e-9
        if run.strategy == "lora+rag":
            assert rag_trials <= set(run.depends_on)
    assert all(not r.depends_on for r in plan.runs if r.kind is RunKind.TRIAL and r.strategy != "lora+rag")


def test_a_served_trial_trains_nothing_and_the_other_finals_train():
    plan = planned(TASK_8B)
    lora = [r for r in plan.runs if r.strategy == "lora"]
    served = [r for r in lora if r.estimate.serves_trial]
    assert [r.kind for r in served] == [RunKind.FINAL]
    assert served[0].estimate.train_hours == 0
    seeds = [r for r in lora if r.kind is RunKind.SEED and r.variant == served[0].variant]
    assert seeds and all(r.estimate.train_hours > 0 for r in seeds)
    # a learning-curve run trains on ceil(fraction x train) examples
    quarter = next(r for r in lora if r.kind is RunKind.CURVE and r.variant.endswith("-25pct"))
    assert quarter.estimate.examples == math.ceil(0.25 * 326)


def test_a_training_run_is_the_estimators_job():
    plan = planned(TASK_8B)
    trial = next(r for r in plan.runs if r.strategy == "full" and r.kind is RunKind.TRIAL)
    direct = estimate_training(
        "llama-3.1-8b",
        "full",
        "h100-sxm",
        326,
        384,
        2.0,
        4,
        eval_seconds=None,
        min_optimizer_steps=100,
        gradient_checkpointing=False,
    )
    assert trial.gpus == direct.gpus == 1
    assert trial.estimate.train_hours == pytest.approx(direct.gpu_hours)  # the FLOP part: the estimator's
    # the fixed part is the estimator's too, with its evaluation item replaced by the run's validation pass
    assert trial.estimate.fixed_hours * 3600 == pytest.approx(direct.fixed.seconds - direct.fixed.eval_s, abs=60)


def test_seeds_and_only_and_skip_follow_compare():
    five = planned(TASK_8B, seeds=5, only=["lora"])
    assert {r.strategy for r in five.runs} == {"lora"}
    assert sum(r.kind is RunKind.SEED for r in five.runs) == 4 * 3
    without = planned(TASK_8B, skip=["full", "qlora"])
    assert not {"full", "qlora"} & {r.strategy for r in without.runs}


def test_70b_full_fine_tuning_spans_two_nodes_and_does_not_fit_one():
    plan = planned(TASK_70B, gpus=8, nodes=2)
    assert_consistent(plan)
    full = [r for r in plan.runs if r.strategy == "full" and not r.estimate.serves_trial]
    assert full and all(r.gpus == 16 and len(r.nodes) == 2 for r in full)
    qlora = [r for r in plan.runs if r.strategy == "qlora" and not r.estimate.serves_trial]
    assert all(r.gpus == 1 for r in qlora)
    assert all(1 < r.gpus <= 8 and len(r.nodes) == 1 for r in plan.runs if r.strategy == "lora")
    # two 16-GPU runs never overlap: each holds the whole cluster
    spans = sorted((r.start_h, r.end_h) for r in full)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:], strict=False))
    with pytest.raises(UserError, match=r"needs 9 x h100-sxm.*1 x 8"):
        planned(TASK_70B, gpus=8, nodes=1)


def test_endpoint_arms_hold_no_gpu_and_are_priced_per_token():
    plan = planned(TASK_70B, gpus=8, nodes=2)
    on_endpoint = [r for r in plan.runs if r.endpoint]
    assert on_endpoint and all(r.gpus == 0 and r.gpu_hours == 0 for r in on_endpoint)
    assert {(e.name, e.strategy) for e in plan.endpoints} == {("together", "prompt"), ("together", "rag")}
    prompt = next(e for e in plan.endpoints if e.strategy == "prompt")
    # 2 trials on 58 validation examples; a final on 128 test + 20 latency requests + the load test's 3 x 64
    assert prompt.requests == 2 * 58 + 128 + 20 + 3 * 64
    assert prompt.usd == pytest.approx((prompt.input_tokens + prompt.output_tokens) * 0.88 / 1e6)
    assert plan.api_usd == pytest.approx(sum(e.usd or 0 for e in plan.endpoints))


def test_unknown_gpu_and_prefix():
    assert resolve_gpu("h100") == "h100-sxm"
    with pytest.raises(UserError, match="unknown GPU"):
        resolve_gpu("tpu-v9")


def test_a_cpu_cannot_plan_qlora():
    with pytest.raises(UserError, match="--skip qlora"):
        planned(TASK_8B, gpu="cpu-2core", gpus=2)


def test_the_scheduler_keeps_node_capacity_and_dependencies():
    jobs = [Job(0, 4, 1.0), Job(1, 4, 2.0), Job(2, 8, 1.0, (0,)), Job(3, 12, 0.5), Job(4, 0, 0.1, (3,)), Job(5, 1, 3.0)]
    slots = schedule(jobs, gpus_per_node=8, nodes=2)
    assert slots[2].start_h >= slots[0].end_h
    assert slots[4].start_h >= slots[3].end_h and slots[4].nodes == ()
    assert len(slots[3].nodes) == 2  # 12 GPUs: two whole nodes
    for t in {s.start_h for s in slots.values()}:
        for node in (0, 1):
            held = sum(
                (j.gpus if j.gpus <= 8 else 8)
                for j in jobs
                if node in slots[j.id].nodes and slots[j.id].start_h <= t < slots[j.id].end_h
            )
            assert held <= 8
    with pytest.raises(ScheduleError):
        schedule([Job(0, 17, 1.0)], gpus_per_node=8, nodes=2)
    with pytest.raises(ScheduleError):
        schedule([Job(0, 1, 1.0, (1,)), Job(1, 1, 1.0, (0,))], gpus_per_node=8, nodes=1)
