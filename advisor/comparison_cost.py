"""What the comparison itself cost: every run it made - each tuned arm's trials, the seed repeats, the
learning-curve runs and the final runs - on this machine and projected on the deployment GPU.

Tuning and seeds multiply runs, so each of them is priced, by ``advisor.pricing.price`` (one pricing path: a trial
or a repeat is priced exactly as a row is):

- on this machine: each record's wall-clock seconds (and its training seconds), summed;
- projected on the deployment GPU: a run that trains, its ``train_usd`` (the FLOPs at the calibrated or default
  utilisation + the fixed part per job, whose evaluation item is the run's own measured evaluation, validation
  included). A tuned fine-tuning arm's final run serves its chosen trial's weights instead of training again: its
  training is the trial's, already counted, so only its fixed part per job is. A run that trains nothing: the
  requests it answered (validation, test and the timed latency requests) at the serving model's price per 1,000 on
  that GPU - a trial's at its arm's chosen run's price (a validation pass does not record tokens per request);
- endpoints: what their live requests cost (measured), beside the GPU figures.

A failed run is priced at nothing on the GPU (it has no measured work to project); its machine time counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from advisor.pricing import PricedRun, Pricing
from advisor.wording import strategy_name, usd

SECONDS_PER_HOUR = 3600.0


class RunKind(StrEnum):
    FINAL = "final"  # the chosen setting on all of train, scored on test (the row the recommendation weighs)
    CURVE = "learning curve"  # the chosen setting on a fraction of train (data_fractions)
    TRIAL = "trial"  # a grid point, scored on validation only
    SEED = "seed"  # a final or learning-curve run repeated with another seed (--seeds)


@dataclass
class RunCharge:
    """One run of the comparison and what it cost."""

    record: str  # its record's path in the output folder
    arm: str
    strategy: str
    variant: str
    kind: RunKind
    seed: int
    ok: bool
    wall_seconds: float  # on this machine
    train_seconds: float  # on this machine; 0 for a final run that served its trial's weights
    gpu_hours: float  # projected on the deployment GPU
    gpu_usd: float
    api_usd: float  # an endpoint's live requests (measured)
    priced: bool  # False: nothing to project (a failed run, or no price for the GPU)
    served_trial: bool = False  # a tuned arm's final run that loaded its chosen trial's weights

    @property
    def usd(self) -> float:
        return self.gpu_usd + self.api_usd


@dataclass
class ArmCost:
    """The runs of one arm (a strategy on the local model, or on one endpoint) summed; also the total."""

    arm: str
    runs: int = 0
    finals: int = 0
    curve_runs: int = 0
    trials: int = 0
    seed_runs: int = 0
    unpriced: int = 0  # runs with nothing to project on the GPU (failed): their machine time is counted
    machine_hours: float = 0.0  # wall clock on this machine
    train_hours: float = 0.0  # of which training
    gpu_hours: float = 0.0  # projected on the deployment GPU
    gpu_usd: float = 0.0
    api_usd: float = 0.0
    usd: float = 0.0  # gpu_usd + api_usd
    tuning_and_seeds_usd: float = 0.0  # the trials' and seed repeats' part of usd
    tuning_and_seeds_machine_hours: float = 0.0  # and of machine_hours
    # their share of usd (of machine_hours when nothing was priced); None: nothing to share
    tuning_and_seeds_share: float | None = None

    def add(self, charge: RunCharge) -> None:
        self.runs += 1
        self.finals += charge.kind is RunKind.FINAL
        self.curve_runs += charge.kind is RunKind.CURVE
        self.trials += charge.kind is RunKind.TRIAL
        self.seed_runs += charge.kind is RunKind.SEED
        self.unpriced += not charge.priced
        self.machine_hours += charge.wall_seconds / SECONDS_PER_HOUR
        self.train_hours += charge.train_seconds / SECONDS_PER_HOUR
        self.gpu_hours += charge.gpu_hours
        self.gpu_usd += charge.gpu_usd
        self.api_usd += charge.api_usd
        self.usd += charge.usd
        if charge.kind in (RunKind.TRIAL, RunKind.SEED):
            self.tuning_and_seeds_usd += charge.usd
            self.tuning_and_seeds_machine_hours += charge.wall_seconds / SECONDS_PER_HOUR
        if self.usd > 0:
            self.tuning_and_seeds_share = self.tuning_and_seeds_usd / self.usd
        elif self.machine_hours > 0:
            self.tuning_and_seeds_share = self.tuning_and_seeds_machine_hours / self.machine_hours


@dataclass
class ComparisonCost:
    """Every run of the comparison priced (results.json: ``costs.comparison``; the report: "What this comparison
    cost"). ``arms`` and ``total`` are sums of ``runs``."""

    gpu: str | None  # the deployment GPU the projection is on; None: not priced
    runs: list[RunCharge]
    arms: list[ArmCost]
    total: ArmCost
    summary: str  # how much tuning and seeds added, in a sentence
    notes: list[str] = field(default_factory=list)


def arm_name(run: PricedRun) -> str:
    row = run.row
    return strategy_name(row.strategy) + (f" on {row.endpoint}" if row.endpoint else "")


def _served_trial(run: PricedRun, trials: list[PricedRun]) -> bool:
    """A tuned fine-tuning arm's final run that loaded its chosen trial's weights (``harness.checkpoints.load``):
    its validation score names that trial (``ValidationInfo.from_trial``) and its training record is the trial's.
    A final run that trained again (its trial's weights were gone) has its own training record."""
    validation, train = run.record.validation, run.record.train_info
    if validation is None or validation.from_trial is None or train is None:
        return False
    return any(t.stored.path == validation.from_trial and t.record.train_info == train for t in trials)


def _requests(run: PricedRun) -> int:
    """Requests a run answered: the validation split, the test set and the latency requests timed one at a time."""
    record = run.record
    validation = record.validation.n_examples if record.validation and not record.validation.from_trial else 0
    ev = record.eval_info
    return validation + ((ev.n_examples + ev.latency_requests) if ev else 0)


def charge(run: PricedRun, kind: RunKind, arm: str, *, served_trial: bool = False, serving: PricedRun) -> RunCharge:
    """What ``run`` cost (``serving``: the run whose serving price per 1,000 requests a non-training run's requests
    are priced at: its own, or for a trial its arm's chosen run's)."""
    record, costs = run.record, run.costs
    info, train = record.run_info, record.train_info
    spent = record.endpoint.usd_spent if record.endpoint else None
    gpu_hours = gpu_usd = 0.0
    priced = spent is not None
    if costs.train_usd is not None:  # a run that trained, priced on the deployment GPU (advisor.pricing)
        priced = True
        if served_trial:  # its training is the trial's, counted there: only this job's fixed part
            gpu_hours, gpu_usd = costs.train_fixed_gpu_hours or 0.0, costs.train_fixed_usd or 0.0
        else:
            gpu_hours = (costs.train_gpu_hours or 0.0) + (costs.train_fixed_gpu_hours or 0.0)
            gpu_usd = costs.train_usd
    elif record.ok and train is None and spent is None:  # serving on the GPU (a self-hosted endpoint too)
        per_1k, per_gpu_hour = serving.costs.serve_usd_per_1k, serving.costs.serve_requests_per_gpu_hour
        if per_1k is not None:
            priced = True
            requests = _requests(run)
            gpu_usd = requests * per_1k / 1000
            gpu_hours = requests / per_gpu_hour if per_gpu_hour else 0.0
    return RunCharge(
        record=run.stored.path,
        arm=arm,
        strategy=info.strategy,
        variant=info.variant,
        kind=kind,
        seed=info.seed,
        ok=record.ok,
        wall_seconds=info.wall_seconds or 0.0,
        train_seconds=0.0 if served_trial or train is None else train.train_seconds,
        gpu_hours=gpu_hours,
        gpu_usd=gpu_usd,
        api_usd=spent or 0.0,
        priced=priced,
        served_trial=served_trial,
    )


def _charges(row: PricedRun) -> list[RunCharge]:
    """A row's runs: itself, its seed repeats and its trials."""
    arm = arm_name(row)
    fraction = row.row.data_fraction
    if row.record.run_info.role == "trial":  # every trial of the arm failed: its row is the first failure
        kind = RunKind.TRIAL
    else:
        kind = RunKind.CURVE if fraction is not None and fraction < 1 else RunKind.FINAL
    served = _served_trial(row, row.trials)
    return [
        charge(row, kind, arm, served_trial=served, serving=row),
        *(charge(r, RunKind.SEED, arm, serving=r) for r in row.repeats),
        *(charge(t, RunKind.TRIAL, arm, serving=row) for t in row.trials),
    ]


def comparison_cost(pricing: Pricing) -> ComparisonCost:
    """Every run of ``pricing``'s comparison priced, per arm and in total, with how much tuning and seeds added."""
    runs = [c for row in pricing.runs for c in _charges(row)]
    arms: dict[str, ArmCost] = {}
    total = ArmCost("all arms")
    for c in runs:
        arms.setdefault(c.arm, ArmCost(c.arm)).add(c)
        total.add(c)
    gpu = pricing.assumptions.gpu if pricing.assumptions else None
    return ComparisonCost(
        gpu=gpu,
        runs=runs,
        arms=list(arms.values()),
        total=total,
        summary=summary(total, gpu),
        notes=[
            "machine hours: each record's wall-clock time on the machine the compare ran on (model loads, training, "
            "evaluation), summed; train hours: of which training",
            f"projected on {gpu or 'the deployment GPU'}: a run that trains, its train_usd (FLOPs + fixed part per "
            "job, evaluation included); a tuned fine-tuning arm's final run that served its chosen trial's weights, "
            "its fixed part only; a run that trains nothing, the requests it answered (validation, test, latency) at "
            "the serving price per 1,000 requests (a trial: its arm's chosen run's); endpoints: what their live "
            "requests cost",
            "failed runs are not projected (nothing measured to project): their machine time is counted",
        ],
    )


def summary(total: ArmCost, gpu: str | None) -> str:
    """How much of the comparison's compute the trials and seed repeats were."""
    extra = total.trials + total.seed_runs
    share = total.tuning_and_seeds_share
    if not extra or share is None:
        return (
            f"The comparison made {total.runs} run{'s' if total.runs != 1 else ''}, no tuning trials or seed repeats: "
            f"{total.machine_hours:,.2f} hours on this machine"
            + (f", {usd(total.usd)} projected on {gpu}." if gpu and total.usd else ".")
        )
    what = " and ".join(
        part
        for part in (
            f"{total.trials} trial{'s' if total.trials != 1 else ''}" if total.trials else "",
            f"{total.seed_runs} seed repeat{'s' if total.seed_runs != 1 else ''}" if total.seed_runs else "",
        )
        if part
    )
    machine = f"{total.tuning_and_seeds_machine_hours:,.2f} of {total.machine_hours:,.2f} hours on this machine"
    basis = f"{usd(total.tuning_and_seeds_usd)} of the {usd(total.usd)} projected on {gpu}; {machine}"
    return (
        f"Tuning and seeds were {share:.0%} of the compute: {what}, {extra} of the comparison's {total.runs} runs, "
        f"{basis if total.usd > 0 and gpu else machine}."
    )
