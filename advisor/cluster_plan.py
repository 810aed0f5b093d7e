"""``advisor plan``: a whole compare on a GPU cluster, before running it - every run it would make, what each needs
and takes, and when each would run on M nodes x N GPUs.

1. Expand: the runs exactly as compare plans them (``harness.compare.plan``, ``harness.tuning.plan_arms``): each
   arm's trials on the validation split when it is tuned, then its final runs (the chosen setting - here the first
   candidate stands for it - at each data fraction with each seed); endpoint arms (``strategy@endpoint``) too. The
   splits are the task's real ones (its data loaded, validation carved as compare carves it).
2. Estimate each run on the task's model shape (its catalog entry or local config.json) with the estimator's own
   functions (``advisor.run_estimate``): GPUs, the FLOP part, the fixed part per job, evaluation.
3. Schedule them on the cluster (``advisor.cluster_schedule``): a tuned arm's finals after its trials; an arm that
   trains and serves with retrieval (lora+rag, full+rag) after the rag arm's trials (it uses rag's chosen
   retrieval); endpoint runs hold no GPU.

Money: a run's USD is its GPU-hours x the GPU's catalog $/h (an endpoint run: its tokens at the endpoint's price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from advisor.cluster_schedule import Job, ScheduleError, schedule
from advisor.comparison_cost import RunKind
from advisor.costs.job_overhead import assumption_lines as job_overhead_lines
from advisor.costs.memory import default_precision
from advisor.costs.shapes import param_counts
from advisor.run_estimate import ENDPOINT_SECONDS_PER_REQUEST, Estimate, RunEstimator
from advisor.wording import strategy_name
from harness import catalog
from harness.compare import plan as plan_variants
from harness.corpus import read_corpus
from harness.errors import UserError
from harness.shapes import ModelShape
from harness.spec import Task, carve_validation
from harness.strategies import Variant, traits
from harness.strategies.tuned_rag import fill_retrieval
from harness.task import load_examples
from harness.tuning import ArmPlan, plan_arms


@dataclass(frozen=True)
class Cluster:
    """M nodes of N identical GPUs (a catalog device)."""

    gpu: str
    gpus_per_node: int
    nodes: int = 1

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass
class PlannedRun:
    """One run of the compare, estimated and scheduled."""

    id: int
    arm: str  # "LoRA", "Prompting on openai": as the report names arms (advisor.comparison_cost.arm_name)
    strategy: str
    variant: str
    kind: RunKind
    seed: int
    endpoint: str | None
    estimate: Estimate
    depends_on: tuple[int, ...] = ()
    start_h: float = 0.0
    end_h: float = 0.0
    nodes: tuple[int, ...] = ()  # the node(s) it holds GPUs on

    @property
    def gpus(self) -> int:
        return self.estimate.gpus

    @property
    def gpu_hours(self) -> float:
        # every GPU it holds, for its whole wall time: gpus x (end - start)
        return self.estimate.gpus * self.estimate.hours

    @property
    def usd(self) -> float:
        return self.gpu_hours * self.estimate.usd_per_gpu_hour + (self.estimate.api_usd or 0.0)

    def as_dict(self) -> dict[str, Any]:
        e = self.estimate
        return {
            "arm": self.arm,
            "strategy": self.strategy,
            "variant": self.variant,
            "kind": self.kind.value,
            "seed": self.seed,
            "endpoint": self.endpoint,
            "gpus": self.gpus,
            "nodes": list(self.nodes),
            "start_h": self.start_h,
            "end_h": self.end_h,
            "gpu_hours": self.gpu_hours,
            "usd": self.usd,
            "train_hours": e.train_hours,
            "fixed_hours": e.fixed_hours,
            "examples": e.examples,
            "requests": e.requests,
            "serves_trial": e.serves_trial,
            "depends_on": list(self.depends_on),
            "notes": list(e.notes),
        }


@dataclass
class EndpointSpend:
    """What an endpoint arm's requests cost, per token (None: no price is known, or it is self-hosted)."""

    name: str
    strategy: str
    requests: int
    input_tokens: int
    output_tokens: int
    usd: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ClusterPlan:
    task: str
    model: str
    model_params: int
    cluster: Cluster
    usd_per_gpu_hour: float
    splits: dict[str, int]  # train / validation / test examples
    runs: list[PlannedRun]
    endpoints: list[EndpointSpend]
    assumptions: list[str] = field(default_factory=list)

    @property
    def wall_hours(self) -> float:
        return max((run.end_h for run in self.runs), default=0.0)

    @property
    def gpu_hours(self) -> float:
        return sum(run.gpu_hours for run in self.runs)

    @property
    def gpu_usd(self) -> float:
        return sum(run.gpu_hours * run.estimate.usd_per_gpu_hour for run in self.runs)

    @property
    def api_usd(self) -> float:
        return sum(run.estimate.api_usd or 0.0 for run in self.runs)

    @property
    def usd(self) -> float:
        return sum(run.usd for run in self.runs)

    @property
    def busy_share(self) -> float:
        """GPU-hours / (wall hours x the cluster's GPUs): how full the schedule keeps the cluster."""
        capacity = self.wall_hours * self.cluster.gpus
        return self.gpu_hours / capacity if capacity else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "gpu": self.cluster.gpu,
            "gpus_per_node": self.cluster.gpus_per_node,
            "nodes": self.cluster.nodes,
            "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "splits": self.splits,
            "runs": [run.as_dict() for run in self.runs],
            "wall_hours": self.wall_hours,
            "gpu_hours": self.gpu_hours,
            "gpu_usd": self.gpu_usd,
            "api_usd": self.api_usd,
            "usd": self.usd,
            "endpoints": [e.as_dict() for e in self.endpoints],
            "assumptions": self.assumptions,
        }


def resolve_gpu(name: str, *, where: str = "--gpu") -> str:
    """A catalog GPU by its name, or by the one name it begins (h100 -> h100-sxm); else the catalog's error."""
    table = catalog.gpus()
    if name in table:
        return name
    prefixed = [key for key in table if key.startswith(f"{name}-")]
    if len(prefixed) == 1:
        return prefixed[0]
    catalog.check_gpu(name, where=where)  # raises: unknown, with the names
    raise AssertionError("unreachable")


def model_shape(task: Task) -> ModelShape:
    """The task's model shape, without loading it: its catalog entry or its local folder's config.json."""
    shape = ModelShape.of_model(task.model_ref)
    if shape is None:
        raise UserError(
            f"{task.path}: model: {task.model_ref.name} is neither in data/catalog/models.yaml nor a local folder "
            f"with a config.json, so its shape is unknown; add it to the catalog or point model at a local folder"
        )
    return shape


def plan_compare(
    task: Task,
    cluster: Cluster,
    *,
    seed: int | None = None,
    seeds: int | None = None,
    trials: int | None = None,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    limit: int | None = None,
    mean_seq_len: int | None = None,
) -> ClusterPlan:
    """Every run ``advisor compare`` would make of ``task`` (its options as arguments), estimated and scheduled on
    ``cluster``. Raises UserError for a run that cannot fit the cluster or cannot run on its GPU."""
    device = catalog.check_gpu(cluster.gpu)
    if cluster.gpus_per_node < 1 or cluster.nodes < 1:
        raise UserError("--gpus and --nodes: a cluster needs at least one node of at least one GPU")
    shape = model_shape(task)
    data = load_examples(task)
    seed = task.spec.seed if seed is None else seed
    limited_train, test = data.limited(limit, seed)
    train, validation = carve_validation(limited_train, task.spec.evaluation.validation, seed)
    variants = plan_variants(task, only, limit, skip)
    kind = "cuda" if device["kind"] == "gpu" else "cpu"
    for name in dict.fromkeys(v.strategy for v in variants):
        if kind not in traits(name).devices:
            raise UserError(
                f"strategies.{name}: {strategy_name(name)} cannot run on {cluster.gpu} ({traits(name).device_reason}"
                f"); plan it on a GPU, or leave it out with --skip {name}"
            )
    arms = plan_arms(
        task,
        variants,
        seed=seed,
        seeds=seeds or task.spec.evaluation.seeds,
        trials=trials or task.spec.tuning.trials,
        has_validation=bool(validation),
        quick=bool(limit),
    )
    corpus_docs = len(read_corpus(task.knowledge_path)) if task.kind == "qa" and task.knowledge_path else 0
    estimator = RunEstimator(
        task=task,
        shape=shape,
        gpu=cluster.gpu,
        precision=default_precision(device),
        n_train=len(train),
        n_validation=len(validation),
        n_test=len(test),
        gpus_per_node=cluster.gpus_per_node,
        nodes=cluster.nodes,
        corpus_docs=corpus_docs,
        mean_seq_len=mean_seq_len,
    )
    runs = _expand(task, arms, estimator)
    try:
        slots = schedule(
            [Job(r.id, r.gpus, r.estimate.hours, r.depends_on) for r in runs],
            gpus_per_node=cluster.gpus_per_node,
            nodes=cluster.nodes,
        )
    except ScheduleError as err:  # the estimator refused what cannot fit: anything left is said in one line
        raise UserError(f"plan: {err}") from err
    for run in runs:
        slot = slots[run.id]
        run.start_h, run.end_h, run.nodes = slot.start_h, slot.end_h, slot.nodes
    return ClusterPlan(
        task=task.name,
        model=shape.name,
        model_params=param_counts(shape).total,
        cluster=cluster,
        usd_per_gpu_hour=float(device["usd_per_hour"]),
        splits={"train": len(train), "validation": len(validation), "test": len(test)},
        runs=runs,
        endpoints=_endpoint_spend(runs),
        assumptions=_assumptions(cluster, estimator, corpus_docs),
    )


def _expand(task: Task, arms: list[ArmPlan], estimator: RunEstimator) -> list[PlannedRun]:
    """The runs of ``arms`` in compare's order, with their dependencies."""
    runs: list[PlannedRun] = []
    rag_trials: tuple[int, ...] = ()  # the local rag arm's trials: the +rag arms wait for its choice

    def add(variant: Variant, kind: RunKind, seed: int, estimate: Estimate, after: tuple[int, ...]) -> int:
        endpoint = variant.params.get("endpoint")
        arm = strategy_name(variant.strategy) + (f" on {endpoint}" if endpoint else "")
        runs.append(PlannedRun(len(runs), arm, variant.strategy, variant.name, kind, seed, endpoint, estimate, after))
        return len(runs) - 1

    for arm in arms:
        # the +rag arms' retrieval settings: the rag arm's first grid point stands for its choice
        candidates = [fill_retrieval(v, None, task) for v in arm.candidates]
        waits = rag_trials if arm.trains and traits(arm.strategy).serving_method == "rag" else ()
        trials = tuple(
            add(v, RunKind.TRIAL, arm.seeds[0], estimator.run(v, role="trial"), waits)
            for v in (candidates if arm.tuned else [])
        )
        if arm.strategy == "rag" and arm.endpoint is None:
            rag_trials = trials
        chosen = candidates[0]
        for final in arm.finals(chosen):
            fraction = final.variant.params.get("data_fraction", 1.0)
            kind = RunKind.SEED if not final.first_seed else RunKind.CURVE if fraction < 1 else RunKind.FINAL
            first = final.variant == chosen and final.first_seed
            estimate = estimator.run(
                final.variant,
                role="final",
                serves_trial=arm.tuned and arm.trains and first,  # compare's rule (harness.compare)
                with_validation=not arm.tuned and first,  # no trials: the one run scores validation too
            )
            add(final.variant, kind, final.seed, estimate, trials + waits)
    return runs


def _endpoint_spend(runs: list[PlannedRun]) -> list[EndpointSpend]:
    spends: dict[tuple[str, str], EndpointSpend] = {}
    for run in runs:
        if run.endpoint is None:
            continue
        e = run.estimate
        spend = spends.setdefault(
            (run.endpoint, run.strategy),
            EndpointSpend(run.endpoint, run.strategy, 0, 0, 0, None if e.api_usd is None else 0.0),
        )
        spend.requests += e.requests
        spend.input_tokens += e.input_tokens
        spend.output_tokens += e.output_tokens
        if e.api_usd is not None and spend.usd is not None:
            spend.usd += e.api_usd
    return list(spends.values())


def _assumptions(cluster: Cluster, estimator: RunEstimator, corpus_docs: int) -> list[str]:
    device = catalog.gpus()[cluster.gpu]
    return [
        f"cluster: {cluster.nodes} node(s) x {cluster.gpus_per_node} {device['display_name']} at "
        f"${device['usd_per_hour']}/h each ({device['price_source']}); a run's USD = its GPU-hours x that price",
        "runs as advisor compare plans them: each tuned arm's trials on validation, then its finals (the first "
        "candidate stands for the chosen one) at each data fraction with each seed",
        "GPUs per run: the fewest that hold it (advisor.costs.training.sharded_gpus: FSDP shards model states, "
        "gradients and optimizer temporaries); a run needing more than one node takes whole nodes; an evaluation "
        "run (and a final run that serves its trial's weights) the GPUs one serving replica needs",
        "time per run: FLOPs at the catalog's utilisation curve over its GPUs + the fixed part per job "
        "(start-up, model load, evaluation, checkpoint save, billing rounding), each job starting cold",
        "evaluation: the requests it answers (validation for a trial; test + the timed latency requests for a "
        "final; validation too for an arm without trials) / the serving model's requests per replica-hour on "
        f"{cluster.gpu} (as advisor.comparison_cost prices them); request tokens: the estimator's RequestShape with "
        "the run's shots or top_k",
        "a tuned fine-tuning arm's final run on all of train with the first seed serves its chosen trial's weights "
        "(harness.compare): its fixed part and evaluation only, no training",
        "training tokens: "
        + (
            f"{estimator.mean_seq_len} per example (--mean-seq-len)"
            if estimator.mean_seq_len
            else "every example at max_seq_len (an upper bound, as the preflight takes it; --mean-seq-len sets the "
            "mean)"
        )
        + (
            f"; plus the knowledge corpus's {corpus_docs} documents, one item each (a lower bound)"
            if corpus_docs
            else ""
        ),
        "schedule: list scheduling, largest GPU-hours first among ready runs; finals after their arm's trials; "
        "lora+rag / full+rag after the rag arm's trials",
        f"endpoint runs hold no GPU; their wall time: requests / the endpoint's max_concurrency x "
        f"{ENDPOINT_SECONDS_PER_REQUEST:g} s (an assumed round trip); the load test's requests are on each final "
        "run; self-hosted endpoints are priced per GPU-hour from a measured load test, so not here",
        # the catalog's evaluation seconds are replaced by each run's own evaluation (above)
        *(line for line in job_overhead_lines(cluster.gpu) if not line.startswith("evaluation ")),
    ]


def check_invariants(plan: ClusterPlan) -> list[str]:
    """What must hold of any plan, as sentences for each violation (tests assert there are none)."""
    problems = []
    total = plan.cluster.gpus
    if not math.isclose(sum(r.gpu_hours for r in plan.runs), plan.gpu_hours, rel_tol=1e-9, abs_tol=1e-12):
        problems.append("the runs' GPU-hours do not add up to the total")
    if plan.wall_hours + 1e-9 < plan.gpu_hours / total:
        problems.append(f"wall {plan.wall_hours} h is below GPU-hours / GPUs = {plan.gpu_hours / total} h")
    by_id = {r.id: r for r in plan.runs}
    for run in plan.runs:
        if any(by_id[d].end_h > run.start_h + 1e-9 for d in run.depends_on):
            problems.append(f"run {run.id} starts before a dependency ends")
    for node in range(plan.cluster.nodes):
        on = [r for r in plan.runs if node in r.nodes]
        for t in {r.start_h for r in on}:
            per_node = [r.gpus // len(r.nodes) for r in on if r.start_h <= t < r.end_h]
            if sum(per_node) > plan.cluster.gpus_per_node:
                problems.append(f"node {node} holds {sum(per_node)} GPUs at {t:.3f} h")
    return problems
