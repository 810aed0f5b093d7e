"""The report's "The plan beside what it took": what ``advisor plan`` says the comparison would take on the
deployment GPU (1 node x the compare's ``--num-processes`` GPUs), per arm, beside what its runs took -
``advisor.comparison_cost``'s GPU-hours and dollars projected on that GPU from the measured runs, and the measured
hours on the machine it ran on.

The plan is re-derived at report time from the task file the comparison names and the compare's settings (seed,
seeds, trials, --only/--skip, --limit); when that file is not reachable or no longer loads, the section says so
instead. It is a planning figure: the estimator's, on the task's model shape, before any run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.cluster_plan import Cluster, ClusterPlan, plan_compare
from advisor.comparison_cost import ComparisonCost
from harness.errors import UserError
from harness.runstore import Comparison
from harness.strategies import traits
from harness.task import load_task


@dataclass
class PlanArm:
    """One arm: the plan's figures beside the projection of its measured runs."""

    arm: str
    planned_runs: int
    planned_gpu_hours: float
    planned_usd: float
    runs: int | None = None  # what the comparison made; None: the arm is not among its runs
    projected_gpu_hours: float | None = None  # advisor.comparison_cost, on the same GPU
    projected_usd: float | None = None
    machine_hours: float | None = None  # measured, on the machine it ran on
    # the projection prices an evaluation-only arm's answered requests at serving rates, while the plan charges each
    # of its jobs a cold start (start-up, model load): their GPU-hours are not the same quantity, so no ratio
    comparable: bool = True

    @property
    def ratio(self) -> float | None:
        """planned / projected GPU-hours: above 1 the plan expected more work than the runs did."""
        if not self.projected_gpu_hours or not self.comparable:
            return None
        return self.planned_gpu_hours / self.projected_gpu_hours


@dataclass
class PlanBesideActual:
    gpu: str | None
    gpus: int
    wall_hours: float | None = None  # the plan's schedule on those GPUs
    arms: list[PlanArm] = field(default_factory=list)
    total: PlanArm | None = None
    note: str | None = None  # why there is no plan (the section then says only this)

    def totals(self) -> dict[str, Any] | None:
        """results.json's ``costs.plan``: the plan's totals and what they were planned on."""
        if self.total is None:
            return None
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "nodes": 1,
            "runs": self.total.planned_runs,
            "wall_hours": self.wall_hours,
            "gpu_hours": self.total.planned_gpu_hours,
            "usd": self.total.planned_usd,
            "projected_gpu_hours": self.total.projected_gpu_hours,
            "ratio": self.total.ratio,
        }


def plan_beside_actual(comparison: Comparison, cost: ComparisonCost | None) -> PlanBesideActual:
    """The section's figures, or a note saying why there are none."""
    task_summary, options = comparison.task, comparison.options
    gpu, gpus = task_summary.deployment.gpu, options.num_processes
    path = Path(task_summary.path)
    if not path.is_file():
        return PlanBesideActual(
            gpu, gpus, note=f"the task file {task_summary.path} is not reachable from here: no plan"
        )
    try:
        plan = plan_compare(
            load_task(path),
            Cluster(gpu, gpus, 1),
            seed=options.seed,
            seeds=options.seeds,
            trials=options.trials,
            only=options.only,
            skip=options.skip,
            limit=options.limit,
        )
    except UserError as err:
        return PlanBesideActual(gpu, gpus, note=f"no plan on {gpus} x {gpu}: {err}")
    return _beside(plan, cost)


def _beside(plan: ClusterPlan, cost: ComparisonCost | None) -> PlanBesideActual:
    arms: dict[str, PlanArm] = {}
    for run in plan.runs:
        arm = arms.setdefault(run.arm, PlanArm(run.arm, 0, 0.0, 0.0, comparable=traits(run.strategy).trains))
        arm.planned_runs += 1
        arm.planned_gpu_hours += run.gpu_hours
        arm.planned_usd += run.usd
    comparable = all(arm.comparable for arm in arms.values())
    total = PlanArm("all arms", len(plan.runs), plan.gpu_hours, plan.usd, comparable=comparable)
    measured = {a.arm: a for a in cost.arms} if cost else {}
    for arm in [*arms.values(), total]:
        actual = cost.total if cost and arm is total else measured.get(arm.arm)
        if actual is not None:
            arm.runs, arm.machine_hours = actual.runs, actual.machine_hours
            if cost and cost.gpu:
                arm.projected_gpu_hours, arm.projected_usd = actual.gpu_hours, actual.usd
    return PlanBesideActual(plan.cluster.gpu, plan.cluster.gpus, plan.wall_hours, list(arms.values()), total)
