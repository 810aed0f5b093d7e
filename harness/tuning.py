"""How a compare's runs are planned into arms: each arm's grid of trials, its choice on the validation split, and
its final runs (the chosen setting on test, at each data fraction, with each seed).

An arm is one strategy on the local model, or on one endpoint. Its grid is the strategy's variants in priority
order (``harness.strategies.base.grid``): a fine-tuning arm tries the first ``tuning.trials`` of them, prompting
and RAG all of theirs. With more than one candidate each is a *trial*, trained on train and scored on the
validation split only; the best is chosen (ties: the earlier, nearer the defaults) and only it is scored on test.
With one candidate - no grid, ``--limit``, or no validation split - there are no trials: the final run scores
the validation split beside test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.record import RunRecord
from harness.runstore import run_id
from harness.spec import Task
from harness.strategies import Variant, traits
from harness.strategies.base import fraction_variant


@dataclass(frozen=True)
class FinalRun:
    """One run scored on test: the chosen setting at one data fraction with one seed."""

    variant: Variant
    seed: int
    first_seed: bool  # the arm's base seed: its record is the row's; the others repeat it


@dataclass
class ArmPlan:
    strategy: str
    endpoint: str | None
    candidates: list[Variant]  # in priority order; more than one: trials on the validation split
    fractions: list[float]  # fine-tuning arms: 1.0 and the learning-curve fractions
    seeds: list[int]  # the first is the task's seed

    @property
    def tuned(self) -> bool:
        return len(self.candidates) > 1

    @property
    def trains(self) -> bool:
        return traits(self.strategy).trains

    def finals(self, chosen: Variant) -> list[FinalRun]:
        """All of train first (it may serve the chosen trial's weights), then the learning-curve fractions."""
        order = sorted(self.fractions, key=lambda f: (f != 1.0, f))
        return [
            FinalRun(fraction_variant(chosen, f), seed, seed == self.seeds[0]) for f in order for seed in self.seeds
        ]

    @property
    def run_count(self) -> int:
        return (len(self.candidates) if self.tuned else 0) + len(self.fractions) * len(self.seeds)


def plan_arms(
    task: Task, variants: list[Variant], *, seed: int, seeds: int, trials: int, has_validation: bool, quick: bool
) -> list[ArmPlan]:
    """The arms of ``variants`` (the planned grid points, in plan order). ``quick`` (``--limit``): one candidate,
    one seed, no learning-curve fractions."""
    groups: dict[tuple[str, str | None], list[Variant]] = {}
    for v in variants:
        groups.setdefault((v.strategy, v.params.get("endpoint")), []).append(v)
    arms = []
    for (strategy, endpoint), grid in groups.items():
        trains = traits(strategy).trains
        keep = 1 if quick or not has_validation else (trials if trains else len(grid))
        fractions = [1.0]
        if trains and not quick:
            fractions = sorted(set(getattr(task.strategy_configs[strategy], "data_fractions", [1.0])) | {1.0})
        arm_seeds = [seed + i for i in range(seeds if trains and not quick else 1)]
        arms.append(ArmPlan(strategy, endpoint, grid[:keep], fractions, arm_seeds))
    return arms


def choose(trials: list[tuple[Variant, RunRecord]]) -> tuple[Variant, RunRecord] | None:
    """The trial with the best validation quality (ties: the earlier in priority order); None when none
    finished."""
    scored = [(v, r) for v, r in trials if r.ok and r.validation is not None]
    if not scored:
        return None
    best = max(r.validation.quality for _, r in scored if r.validation)
    return next((v, r) for v, r in scored if r.validation and r.validation.quality == best)


def trial_path(out_dir: Path, variant: Variant) -> Path:
    return out_dir / "runs" / "trials" / f"{run_id(variant)}.json"


def final_path(out_dir: Path, run: FinalRun) -> Path:
    suffix = "" if run.first_seed else f"-seed{run.seed}"
    return out_dir / "runs" / f"{run_id(run.variant)}{suffix}.json"


def checkpoint_dir(out_dir: Path, variant: Variant) -> Path:
    return out_dir / "checkpoints" / run_id(variant)
