"""The recommendation: which arm to use, and why, in sentences tied to the measured numbers.

Measured numbers decide; the decision ladder (fresh or private facts -> RAG; format and behaviour ->
fine-tune; cutting long prompts -> fine-tune; a new capability -> a bigger model) only explains.

1. An arm is adequate when it finished, reaches goals.quality, keeps its training compute within
   goals.training_budget_usd (data is priced separately) and - only when latency was measured on the
   deployment hardware - keeps p95 within goals.p95_latency_ms. Latency measured elsewhere (usually a
   CPU) is compared across arms and stated with its hardware, never held against a goal meant for
   another device.
2. Among adequate arms the lowest total over the horizon wins: training + data + serving per month x
   months, serving being advisor.pricing's monthly cost at goals.monthly_requests (whole always-on
   replicas). Within NEAR_TIE of the cheapest the simpler arm (lower ladder rank) wins: the dollars are
   projections, and an arm without a training pipeline or an index has fewer parts to keep running.
3. When no arm is adequate: the closest one (highest quality within latency and budget), and estimates of
   what would meet the goals - more examples (learning curve x data cost), a bigger model, a relaxed
   latency goal or a larger training budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from advisor.breakeven import ArmEconomics, BreakEven, break_even, dedicated_gpu_caveat, hosted_break_even
from advisor.costs import ModelShape, RequestShape, estimate_serving, param_counts
from advisor.costs.compute import catalog_gpu_for
from advisor.learning_curve import LearningCurve, learning_curves, quality_interval
from advisor.pricing import PricedRun, Pricing
from advisor.wording import hardware_name, strategy_name, usd
from harness import catalog
from harness.endpoints import plain_http_remote
from harness.spec import Goals
from harness.strategies import StrategyTraits
from harness.strategies.base import Rung

NEAR_TIE = 0.05


@dataclass
class Arm:
    """One finished run, priced over the horizon and checked against the goals."""

    run: PricedRun
    months: float
    shortfalls: dict[str, str] = field(default_factory=dict)  # goal ("quality", "budget", "latency") -> why

    def __post_init__(self) -> None:
        if self.run.row.quality is None:
            raise ValueError(f"{self.run.row.record}: an arm is a finished run with a quality")

    @property
    def strategy(self) -> str:
        return self.run.row.strategy

    @property
    def endpoint(self) -> str | None:
        return self.run.row.endpoint

    @property
    def group(self) -> str:
        """The strategy, on the local model or on one endpoint: best arms are picked per group."""
        return f"{self.strategy}@{self.endpoint}" if self.endpoint else self.strategy

    @property
    def hosted(self) -> bool:
        """Served per token by someone else (an endpoint that is not self-hosted)."""
        return self.run.costs.serve_basis == "per token"

    @property
    def variant(self) -> str:
        return self.run.row.variant

    @property
    def traits(self) -> StrategyTraits:
        return self.run.traits

    @property
    def label(self) -> str:
        return f"{strategy_name(self.strategy)} {self.variant}"

    @property
    def quality(self) -> float:
        return self.run.row.quality or 0.0

    @property
    def n_examples(self) -> int:
        return self.run.row.n_examples or 0

    @property
    def latency_ms_p50(self) -> float | None:
        return self.run.row.latency_ms_p50

    @property
    def latency_ms_p95(self) -> float | None:
        return self.run.row.latency_ms_p95

    @property
    def prompt_tokens_mean(self) -> float | None:
        return self.run.row.input_tokens_mean

    @property
    def train_usd(self) -> float | None:
        return self.run.costs.train_usd

    @property
    def interval(self) -> tuple[float, float]:
        return quality_interval(self.quality, self.n_examples)

    @property
    def one_time_usd(self) -> float:
        return (self.run.costs.train_usd or 0.0) + (self.run.costs.data_usd or 0.0)

    @property
    def total_usd(self) -> float | None:
        serve = self.run.costs.serve_usd_per_month
        return None if serve is None else self.one_time_usd + self.months * serve

    def cost_sentence(self) -> str:
        if self.total_usd is None:
            return "a cost not priced"
        costs = self.run.costs
        parts = [f"{usd(costs.train_usd)} training"] if costs.train_usd else []
        parts += [f"{usd(costs.data_usd or 0)} data", f"{usd(costs.serve_usd_per_month)}/month serving"]
        return f"{usd(self.total_usd)} over {self.months:g} months ({' + '.join(parts)})"


@dataclass
class ArmVerdict:
    """One arm in results.json's recommendation."""

    strategy: str
    variant: str
    total_usd: float | None
    quality_interval: tuple[float, float]
    misses: list[str]  # the goals it misses
    shortfalls: list[str]  # why, one sentence each


@dataclass
class Recommendation:
    """What results.json and the report's verdict say."""

    strategy: str | None
    variant: str | None
    label: str | None
    meets_goals: bool
    horizon_months: float
    verdict: str
    reasons: list[str]
    cautions: list[str]
    what_would_meet_goals: list[str]
    latency_goal_applied: bool
    arms: list[ArmVerdict]
    break_even: list[dict[str, Any]]  # BreakEven.as_dict
    break_even_basis: str | None
    learning_curves: list[dict[str, Any]]  # LearningCurve.as_dict


@dataclass
class Analysis:
    """Everything the report draws from: the recommendation (stored in results.json) and its inputs."""

    pricing: Pricing
    recommendation: Recommendation
    arms: list[Arm]
    chosen: Arm | None
    curves: list[LearningCurve]
    break_evens: list[BreakEven]
    economics: list[ArmEconomics]
    latency_gated: bool

    def arm_of(self, run: PricedRun) -> Arm | None:
        return next((arm for arm in self.arms if arm.run is run), None)


def latency_basis(pricing: Pricing) -> tuple[bool, str]:
    """Whether the p95 goal can be checked directly, and a sentence saying on what latency was measured."""
    device, task = pricing.comparison.device, pricing.comparison.task
    deployment = task.deployment.gpu
    hardware = hardware_name(device)
    if deployment and catalog_gpu_for(device) == deployment:
        return True, (
            f"Latency was measured on {hardware}, the deployment hardware ({deployment}): "
            f"the p95 goal is checked as is."
        )
    goal = task.goals.p95_latency_ms
    held = f"the {goal:,.0f} ms p95 goal is not applied" if goal else "there is no p95 goal"
    return False, (
        f"Latency was measured on {hardware}, not on the deployment "
        f"{deployment or 'hardware'}: {held}, and arms are compared with each other. Differences show "
        f"the direction (long prompts and retrieval cost time anywhere), not the size on a GPU."
    )


def _check(arm: Arm, goals: Goals, latency_gated: bool) -> dict[str, str]:
    shortfalls = {}
    if goals.quality is not None and arm.quality < goals.quality:
        low, high = arm.interval
        noise = (
            f", though within the test set's sampling error (95% interval {low:.2f}–{high:.2f})"
            if high >= goals.quality
            else ""
        )
        shortfalls["quality"] = f"{arm.quality:.3f} is below the {goals.quality:.2f} goal{noise}"
    budget = goals.training_budget_usd
    if budget is not None and (arm.train_usd or 0) > budget:
        shortfalls["budget"] = f"its training costs {usd(arm.train_usd)} against a {usd(budget)} budget"
    goal_p95 = goals.p95_latency_ms
    # an endpoint's latency is measured where it would run: its goal always applies
    if (latency_gated or arm.endpoint) and goal_p95 and (arm.latency_ms_p95 or 0) > goal_p95:
        shortfalls["latency"] = f"its p95 latency of {arm.latency_ms_p95:,.0f} ms exceeds the {goal_p95:,.0f} ms goal"
    return shortfalls


def _choose(adequate: list[Arm]) -> tuple[Arm, bool]:
    """Cheapest total; within NEAR_TIE of it, the simplest. Returns the arm and whether a near-tie decided."""
    priced = [a for a in adequate if a.total_usd is not None]
    if not priced:
        return min(adequate, key=lambda a: (a.traits.ladder_rank, -a.quality)), False
    cheapest = min(priced, key=lambda a: a.total_usd or 0.0)
    close = [a for a in priced if (a.total_usd or 0.0) <= (cheapest.total_usd or 0.0) * (1 + NEAR_TIE)]
    chosen = min(close, key=lambda a: (a.traits.ladder_rank, a.total_usd or 0.0))
    return chosen, chosen is not cheapest


def _best_per_group(arms: list[Arm]) -> dict[str, Arm]:
    """The best arm of each strategy on the local model, and of each strategy on each endpoint."""
    best: dict[str, Arm] = {}
    for arm in sorted(arms, key=lambda a: (-a.quality, a.total_usd if a.total_usd is not None else math.inf)):
        best.setdefault(arm.group, arm)
    return best


def _best_tuned(best: dict[str, Arm]) -> Arm | None:
    return max((a for a in best.values() if a.traits.trains), key=lambda a: a.quality, default=None)


def _break_evens(chosen: Arm, best: dict[str, Arm], months: float) -> tuple[list[BreakEven], list[ArmEconomics]]:
    """The fine-tuned arm of interest (the chosen one, else the best fine-tuned) against the best arm of each
    strategy that trains nothing (prompting, RAG): on marginal serving cost against the self-hosted ones, on whole
    GPU replicas against each hosted (per-token) endpoint."""
    tuned = chosen if chosen.traits.trains else _best_tuned(best)
    baselines = sorted((arm for arm in best.values() if not arm.traits.trains), key=lambda a: a.traits.ladder_rank)
    economics = {
        a.label: ArmEconomics.of(a.run.costs, a.strategy, a.label, a.endpoint)
        for a in [tuned, *baselines]
        if a is not None
    }
    priced = {label: e for label, e in economics.items() if e is not None}
    if tuned is None or tuned.label not in priced:
        return [], list(priced.values())
    pairs = [
        hosted_break_even(priced[tuned.label], priced[b.label], months)
        if b.hosted
        else break_even(priced[tuned.label], priced[b.label], months)
        for b in baselines
        if b.label in priced
    ]
    return pairs, list(priced.values())


def curve_sentence(curve: LearningCurve, pricing: Pricing, arms: list[Arm]) -> str:
    """The learning curve's estimate, priced with the task's data_cost and the largest run's training cost."""
    variant = max(curve.points, key=lambda p: p.examples).variant
    largest = next((a for a in arms if a.strategy == curve.strategy and a.variant == variant), None)
    config = pricing.assumptions.data_cost if pricing.assumptions else None
    return curve.sentence(
        pricing.comparison.task.n_train or curve.max_examples, config, largest.train_usd if largest else None
    )


def bigger_model_sentence(pricing: Pricing, arm: Arm) -> str | None:
    """The next catalog model with at least twice the parameters (same family first), priced: training as the
    measured run's FLOPs scaled by parameter count, serving with the measured tokens per request."""
    assumptions = pricing.assumptions
    if assumptions is None or assumptions.model_shape is None:
        return None
    current = assumptions.model_shape
    n_current = param_counts(current).total
    family = current.name.split("-")[0]
    larger = sorted(
        (not name.startswith(family), param_counts(ModelShape.from_catalog(name)).total, name)
        for name in catalog.models()
        if name != current.name
    )
    larger = [entry for entry in larger if entry[1] >= 2 * n_current]
    if not larger:
        return None
    _, n_big, name = larger[0]
    ratio = n_big / n_current
    # the measured tokens per request, as advisor.pricing prices each run (same family: same tokenizer)
    request = RequestShape.measured(arm.prompt_tokens_mean, arm.run.row.output_tokens_mean)
    serving = estimate_serving(
        name,
        arm.traits.serving_method,
        assumptions.gpu,
        pricing.comparison.task.goals.monthly_requests or 0,
        request=request,
    )
    training = f" ≈ {usd(arm.train_usd * ratio)} of training and" if arm.train_usd else ""
    return (
        f"A bigger base model (the ladder's answer when the task needs a capability the model lacks): {name} "
        f"has {ratio:.1f}x the parameters of {current.name}; as {strategy_name(arm.strategy)} "
        f"it would cost{training} ≈ {usd(serving.usd_per_month)}/month to serve on {assumptions.gpu} "
        f"({usd(serving.usd_per_1k_requests)} per 1k requests). Its quality is not measured: run advisor compare "
        f"with model: {name}."
    )


def _best_on_rung(best: dict[str, Arm], rung: Rung) -> Arm | None:
    return max((a for a in best.values() if a.traits.ladder_rank == rung), key=lambda a: a.quality, default=None)


def ladder_sentences(pricing: Pricing, best: dict[str, Arm]) -> list[str]:
    """The decision ladder's reading of this task, each claim next to what was measured."""
    task = pricing.comparison.task
    tuned = _best_tuned(best)
    prompted, retrieved = _best_on_rung(best, Rung.PROMPT), _best_on_rung(best, Rung.RETRIEVAL)
    sentences = []
    if task.knowledge and retrieved:
        against = f" against {tuned.quality:.3f} for {tuned.label}" if tuned else ""
        sentences.append(
            f"The task brings a knowledge corpus (private facts), where the ladder points to RAG "
            f"(retrieval keeps facts fresh without retraining); measured, {retrieved.label} "
            f"reaches {retrieved.quality:.3f} {task.metric}{against}."
        )
    elif task.kind in ("classification", "extraction") and tuned and prompted:
        sentences.append(
            f"{task.kind.capitalize()} is format and behaviour, where the ladder expects "
            f"fine-tuning to help; measured, {tuned.label} reaches {tuned.quality:.3f} {task.metric} "
            f"against {prompted.quality:.3f} for {prompted.label}."
        )
    longest = max(
        # local arms only: an endpoint counts tokens with its own tokenizer
        (a for a in best.values() if not a.traits.trains and not a.endpoint),
        key=lambda a: a.prompt_tokens_mean or 0,
        default=None,
    )
    if (
        tuned
        and longest
        and tuned.prompt_tokens_mean
        and longest.prompt_tokens_mean
        and tuned.prompt_tokens_mean < 0.7 * longest.prompt_tokens_mean
    ):
        cut = 1 - tuned.prompt_tokens_mean / longest.prompt_tokens_mean
        sentences.append(
            f"Fine-tuning carries the instruction and examples in its weights: {tuned.label} sends "
            f"{tuned.prompt_tokens_mean:,.0f} prompt tokens per request against "
            f"{longest.prompt_tokens_mean:,.0f} for {longest.label} ({cut:.0%} fewer)."
        )
    return sentences


def _latency_sentence(chosen: Arm, arms: list[Arm], pricing: Pricing) -> str | None:
    timed = [a for a in arms if a.latency_ms_p95 and not a.endpoint]  # measured on this machine
    if chosen.endpoint or not chosen.latency_ms_p95 or len(timed) < 2:
        return None
    fastest = min(timed, key=lambda a: a.latency_ms_p95 or 0.0)
    where = hardware_name(pricing.comparison.device)
    if fastest is chosen:
        return f"On {where}, {chosen.label} is the fastest arm measured: p95 {chosen.latency_ms_p95:,.0f} ms."
    return (
        f"On {where}, {chosen.label} answers at p95 {chosen.latency_ms_p95:,.0f} ms, "
        f"{chosen.latency_ms_p95 / (fastest.latency_ms_p95 or 1.0):.1f}x the fastest arm ({fastest.label}, "
        f"{fastest.latency_ms_p95:,.0f} ms)."
    )


def _what_would(
    pricing: Pricing, arms: list[Arm], curves: list[LearningCurve], closest: Arm, best: dict[str, Arm]
) -> list[str]:
    """Estimates of what would meet the goals, when nothing measured does."""
    sentences = ["More examples — " + curve_sentence(curve, pricing, arms) for curve in curves]
    tuned = sorted((s for s, arm in best.items() if arm.traits.trains), key=lambda s: best[s].traits.ladder_rank)
    if not curves and tuned:
        others = " or ".join(f"{s}'s" for s in tuned[1:])
        keys = f"strategies.{tuned[0]}.data_fractions" + (f" (or {others})" if others else "")
        sentences.append(
            f"More examples: no learning curve was measured (each fine-tuning arm ran on one "
            f"training-set size); set {keys}, e.g. [0.25, 0.5, 1.0], to estimate how many would do."
        )
    within = [a for a in arms if set(a.shortfalls) == {"latency"}]
    if within:
        arm = min(within, key=lambda a: a.latency_ms_p95 or 0.0)
        p95 = arm.latency_ms_p95 or 0.0
        sentences.append(
            f"A relaxed latency goal: {arm.label} meets everything else at p95 "
            f"{p95:,.0f} ms; a goal of {math.ceil(p95):,} ms would let it through."
        )
    within = [a for a in arms if set(a.shortfalls) == {"budget"}]
    if within:
        arm = min(within, key=lambda a: a.train_usd or 0.0)
        sentences.append(f"A larger training budget: {usd(arm.train_usd)} would let {arm.label} through.")
    bigger = bigger_model_sentence(pricing, _best_tuned(best) or closest)
    if bigger:
        sentences.append(bigger)
    return sentences


def _cautions(pricing: Pricing, latency_gated: bool, latency_note: str) -> list[str]:
    cautions = [
        f"{strategy_name(run.row.strategy)} {run.row.variant} failed and was not considered: {run.row.error}"
        for run in pricing.runs
        if not run.record.ok
    ]
    if not latency_gated:
        cautions.append(latency_note)
    if pricing.assumptions is None:
        cautions.append("The runs are not priced: the choice ignores cost.")
    cautions += endpoint_cautions(pricing)
    limit = pricing.comparison.options.limit
    if limit:
        cautions.append(f"A quick look (--limit {limit}): small subsets, not the full test set.")
    return cautions


def endpoint_cautions(pricing: Pricing) -> list[str]:
    """What the reader of an endpoint row must know: a missing price, capacity not measured, plain http."""
    cautions = []
    endpoints = pricing.comparison.task.endpoints
    for run in pricing.runs:
        name = run.row.endpoint
        if not name or not run.record.ok:
            continue
        label = f"{strategy_name(run.row.strategy)} {run.row.variant}"
        if run.costs.price_missing:
            cautions.append(
                f"{label}: no price is known for model {endpoints[name].model} (not in data/catalog/api_prices.yaml): "
                f"its serving is priced as missing, not 0, and it cannot win on cost; set endpoints.{name}.price."
            )
        elif run.costs.serve_basis == "measured capacity" and run.costs.serve_usd_per_1k is None:
            cautions.append(
                f"{label}: self-hosted, but no load-test level met the p95 goal without errors (or the load test "
                f"was off): its capacity, and so its cost, is unknown."
            )
    for name, endpoint in endpoints.items():
        if plain_http_remote(endpoint.base_url):
            cautions.append(
                f"Endpoint {name} is reached over plain http at a host other than this machine "
                f"({endpoint.base_url}): prompts, answers and the key cross the network unencrypted; use https."
            )
    return cautions


def _adequate_reasons(
    chosen: Arm, near_tie: bool, adequate: list[Arm], goals: Goals, metric: str, cautions: list[str]
) -> tuple[list[str], Arm | None]:
    """Why the chosen arm, and the next cheapest that also meets the goals (returned: the reasons name it)."""
    low, high = chosen.interval
    goal = goals.quality
    reasons = [
        f"{chosen.label} reaches {chosen.quality:.3f} {metric}"
        + (f" ≥ the {goal:.2f} goal" if goal is not None else "")
        + f" (95% interval {low:.2f}–{high:.2f} on {chosen.n_examples} test examples) at "
        f"{chosen.cost_sentence()}."
    ]
    runner_up = min(
        (a for a in adequate if a is not chosen and a.total_usd is not None),
        key=lambda a: a.total_usd or 0.0,
        default=None,
    )
    if runner_up is not None and runner_up.total_usd is not None and chosen.total_usd is not None:
        tie = (
            f" — within {NEAR_TIE:.0%} of each other, so the simpler arm wins"
            if near_tie and runner_up.total_usd < chosen.total_usd
            else ""
        )
        reasons.append(
            f"{runner_up.label} also meets the goals ({runner_up.quality:.3f}) at "
            f"{usd(runner_up.total_usd)} over {chosen.months:g} months{tie}."
        )
    if goal is not None and low < goal:
        cautions.append(
            f"{chosen.quality:.3f} is within the test set's sampling error of the {goal:.2f} goal "
            f"(95% interval {low:.2f}–{high:.2f}): confirm on more test data before relying on it."
        )
    return reasons, runner_up


def analyse(pricing: Pricing) -> Analysis:
    """The recommendation and everything the report draws, from the priced runs (computed once per render)."""
    task = pricing.comparison.task
    goals, metric = task.goals, task.metric
    months = goals.horizon_months
    latency_gated, latency_note = latency_basis(pricing)
    arms = [Arm(run, months) for run in pricing.runs if run.record.ok and run.row.quality is not None]
    for arm in arms:
        arm.shortfalls = _check(arm, goals, latency_gated)
    curves = learning_curves([run.row for run in pricing.runs], goals.quality)
    cautions = _cautions(pricing, latency_gated, latency_note)
    recommendation = Recommendation(
        strategy=None,
        variant=None,
        label=None,
        meets_goals=False,
        horizon_months=months,
        verdict="No run finished: nothing to recommend.",
        reasons=[],
        cautions=cautions,
        what_would_meet_goals=[],
        latency_goal_applied=latency_gated,
        arms=[],
        break_even=[],
        break_even_basis=None,
        learning_curves=[c.as_dict() for c in curves],
    )
    if not arms:
        return Analysis(pricing, recommendation, [], None, curves, [], [], latency_gated)

    best = _best_per_group(arms)
    adequate = [a for a in arms if not a.shortfalls]
    what_would: list[str] = []
    if adequate:
        chosen, near_tie = _choose(adequate)
        verdict = f"Use {chosen.label}: it meets the goals at the lowest cost."
        reasons, runner_up = _adequate_reasons(chosen, near_tie, adequate, goals, metric, cautions)
    else:
        # the closest: the best quality among arms that miss nothing but quality
        chosen = max([a for a in arms if set(a.shortfalls) <= {"quality"}] or arms, key=lambda a: a.quality)
        verdict = f"No measured run meets the goals. Closest: {chosen.label} at {chosen.quality:.3f} {metric}" + (
            f" against a {goals.quality:.2f} goal." if goals.quality is not None else "."
        )
        reasons, runner_up = [], None
        what_would = _what_would(pricing, arms, curves, chosen, best)
    top = max(arms, key=lambda a: a.quality)
    if (
        top not in (chosen, runner_up)
        and top.quality > chosen.quality
        and top.total_usd is not None
        and chosen.total_usd is not None
    ):
        reasons.append(
            f"The highest {metric}, {top.quality:.3f}, is {top.label}'s, at {usd(top.total_usd)} over "
            f"{months:g} months ({usd(top.total_usd - chosen.total_usd)} more)."
        )
    reasons += [
        f"{arm.label} (best {strategy_name(arm.strategy)} run{' on ' + arm.endpoint if arm.endpoint else ''}) falls "
        f"short: {'; '.join(arm.shortfalls.values())}."
        for arm in best.values()
        if arm.shortfalls and arm is not chosen
    ]
    pairs, economics = _break_evens(chosen, best, months)
    reasons += [p.sentence(goals.monthly_requests) for p in pairs]
    reasons += ladder_sentences(pricing, best)
    reasons += [s for s in [_latency_sentence(chosen, arms, pricing)] if s]
    if adequate and chosen.traits.trains:
        reasons += [curve_sentence(c, pricing, arms) for c in curves if c.strategy == chosen.strategy]
    recommendation.strategy, recommendation.variant, recommendation.label = (
        chosen.strategy,
        chosen.variant,
        chosen.label,
    )
    recommendation.meets_goals, recommendation.verdict = bool(adequate), verdict
    recommendation.reasons, recommendation.what_would_meet_goals = reasons, what_would
    recommendation.arms = [
        ArmVerdict(a.strategy, a.variant, a.total_usd, a.interval, list(a.shortfalls), list(a.shortfalls.values()))
        for a in arms
    ]
    recommendation.break_even = [p.as_dict(goals.monthly_requests) for p in pairs]
    recommendation.break_even_basis = (
        dedicated_gpu_caveat(pairs[0].tuned, pricing.assumptions.gpu if pricing.assumptions else None)
        if pairs
        else None
    )
    return Analysis(pricing, recommendation, arms, chosen, curves, pairs, economics, latency_gated)
