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
   latency goal or a larger training budget. Arms that a paired test on the test examples cannot tell apart
   from the highest (advisor.significance) are as close: among them cost, then simplicity, decides as in 2.
4. Quality above the goal buys nothing in 2, so the test only explains there: when a better arm that also meets
   the goals is not recommended, a sentence says whether the test can tell the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from advisor.arms import Arm, best_per_group, best_tuned
from advisor.breakeven import ArmEconomics, BreakEven, break_even, dedicated_gpu_caveat, hosted_break_even
from advisor.cautions import latency_basis, run_cautions
from advisor.comparison_cost import ComparisonCost, comparison_cost
from advisor.ladder import curve_sentence, ladder_sentences, what_would_meet_goals
from advisor.learning_curve import LearningCurve, learning_curves
from advisor.pricing import PricedRun, Pricing
from advisor.significance import ArmComparison, PairedTests, cannot_be_told_apart
from advisor.wording import hardware_name, strategy_name, usd
from harness.spec import Goals

NEAR_TIE = 0.05


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
    comparisons: list[ArmComparison] = field(default_factory=list)  # the best arm against each group's best
    cost: ComparisonCost | None = None  # what the comparison itself cost: every run, trials and seeds included

    def arm_of(self, run: PricedRun) -> Arm | None:
        return next((arm for arm in self.arms if arm.run is run), None)


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


def _cheaper_or_simpler(arm: Arm, than: Arm) -> bool:
    cheaper = arm.total_usd is not None and than.total_usd is not None and arm.total_usd < than.total_usd
    return cheaper or arm.traits.ladder_rank < than.traits.ladder_rank


def _why_preferred(arm: Arm, other: Arm) -> str:
    """'cheaper', 'simpler' or 'cheaper and simpler': what ``arm`` has over ``other``."""
    cheaper = arm.total_usd is not None and other.total_usd is not None and arm.total_usd < other.total_usd
    simpler = arm.traits.ladder_rank < other.traits.ladder_rank
    return " and ".join(w for w, yes in (("cheaper", cheaper), ("simpler", simpler)) if yes) or "chosen"


def _closest(candidates: list[Arm], tests: PairedTests) -> tuple[Arm, ArmComparison | None]:
    """The highest quality among ``candidates``; when cheaper or simpler ones cannot be told apart from it by the
    paired test, cost then simplicity decides among them (as among adequate arms). Returns the arm and, when it
    is not the highest, the test that let it through."""
    top = max(candidates, key=lambda a: a.quality)
    tied = [
        a
        for a in candidates
        if a is not top and _cheaper_or_simpler(a, top) and cannot_be_told_apart(tests.between(top, a))
    ]
    if not tied:
        return top, None
    chosen, _ = _choose([top, *tied])
    return chosen, None if chosen is top else tests.between(top, chosen)


def _tie_sentence(better: Arm, chosen: Arm, test: ArmComparison, role: str) -> str:
    """'LoRA r8 (0.770) and RAG top-4 (0.720) cannot be told apart on these 128 test examples (McNemar exact
    test, p = 0.21), so the cheaper RAG top-4 is recommended.'"""
    return (
        f"{better.label} ({better.quality:.3f}) and {chosen.label} ({chosen.quality:.3f}) cannot be told apart on "
        f"these {test.n_examples} test examples ({test.evidence()}), so the {_why_preferred(chosen, better)} "
        f"{chosen.label} is {role}."
    )


def _significance_sentence(chosen: Arm, adequate: list[Arm], tests: PairedTests) -> str | None:
    """Whether the best arm that meets the goals, when it is not the one recommended, is really better."""
    better = max(adequate, key=lambda a: a.quality)
    test = tests.between(better, chosen) if better is not chosen and better.quality > chosen.quality else None
    if test is None:
        return None
    if cannot_be_told_apart(test):
        return _tie_sentence(better, chosen, test, "recommended")
    return (
        f"{better.label} ({better.quality:.3f}) is better than {chosen.label} ({chosen.quality:.3f}) beyond the "
        f"test set's noise on these {test.n_examples} test examples ({test.evidence()}); both meet the goals, "
        f"and {chosen.label} is {_why_preferred(chosen, better)}."
    )


def _break_evens(chosen: Arm, best: dict[str, Arm], months: float) -> tuple[list[BreakEven], list[ArmEconomics]]:
    """The fine-tuned arm of interest (the chosen one, else the best fine-tuned) against the best arm of each
    strategy that trains nothing (prompting, RAG): on marginal serving cost against the self-hosted ones, on whole
    GPU replicas against each hosted (per-token) endpoint."""
    tuned = chosen if chosen.traits.trains else best_tuned(best)
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
    cautions = run_cautions(pricing, latency_gated, latency_note)
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
        return Analysis(pricing, recommendation, [], None, curves, [], [], latency_gated, cost=comparison_cost(pricing))

    best = best_per_group(arms)
    tests = PairedTests()
    comparisons = tests.against_best(best)
    adequate = [a for a in arms if not a.shortfalls]
    what_would: list[str] = []
    if adequate:
        chosen, near_tie = _choose(adequate)
        verdict = f"Use {chosen.label}: it meets the goals at the lowest cost."
        reasons, runner_up = _adequate_reasons(chosen, near_tie, adequate, goals, metric, cautions)
        reasons += [s for s in [_significance_sentence(chosen, adequate, tests)] if s]
    else:
        # the closest: the best quality among arms that miss nothing but quality (or one the test cannot tell
        # from it that costs less or is simpler)
        candidates = [a for a in arms if set(a.shortfalls) <= {"quality"}] or arms
        chosen, tie = _closest(candidates, tests)
        verdict = f"No measured run meets the goals. Closest: {chosen.label} at {chosen.quality:.3f} {metric}" + (
            f" against a {goals.quality:.2f} goal." if goals.quality is not None else "."
        )
        top_candidate = max(candidates, key=lambda a: a.quality)
        reasons = [_tie_sentence(top_candidate, chosen, tie, "the closest")] if tie else []
        runner_up = None
        what_would = what_would_meet_goals(pricing, arms, curves, chosen, best)
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
    return Analysis(
        pricing,
        recommendation,
        arms,
        chosen,
        curves,
        pairs,
        economics,
        latency_gated,
        comparisons,
        comparison_cost(pricing),
    )
