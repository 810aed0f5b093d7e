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
   replicas). Within NEAR_TIE of the cheapest the simpler arm wins: the dollars are projections, and an
   arm without a training pipeline or an index has fewer parts to keep running.
3. When no arm is adequate: the closest one (highest quality within latency and budget), and estimates of
   what would meet the goals - more examples (learning curve x data cost), a bigger model, a relaxed
   latency goal or a larger training budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from harness import catalog
from harness.runstore import atomic_write_json
from harness.strategies import FINE_TUNING

from advisor.breakeven import ArmEconomics, BreakEven, break_even, dedicated_gpu_caveat
from advisor.costs import DataCostConfig, ModelShape, RequestShape, estimate_serving, param_counts
from advisor.costs.compute import catalog_gpu_for
from advisor.learning_curve import LearningCurve, learning_curves, quality_interval
from advisor.pricing import SERVING_METHOD
from advisor.wording import hardware_name, strategy_name, usd

DEFAULT_HORIZON_MONTHS = 12
NEAR_TIE = 0.05
LADDER = {"prompt": 0, "rag": 1, "lora": 2, "qlora": 2, "full": 3}  # simplest first


def ladder_rank(strategy: str) -> int:
    return max(LADDER.get(part, len(LADDER)) for part in strategy.split("+"))


@dataclass
class Arm:
    """One finished run, priced over the horizon and checked against the goals."""

    row: dict
    months: float
    shortfalls: dict[str, str] = field(default_factory=dict)  # goal ("quality", "budget", "latency") -> why

    def __getattr__(self, key):
        # the row's fields (quality, latency_ms_p95, train_usd, ...); None where a row lacks one, as an
        # unpriced row lacks the cost fields. Dunder lookups (copy, jinja's __html__) must still fail.
        if key.startswith("__"):
            raise AttributeError(key)
        return self.__dict__["row"].get(key)

    @property
    def label(self) -> str:
        return f"{strategy_name(self.strategy)} {self.variant}"

    @property
    def interval(self) -> tuple[float, float]:
        return quality_interval(self.quality, self.row.get("n_examples") or 0)

    @property
    def one_time_usd(self) -> float:
        return (self.row.get("train_usd") or 0.0) + (self.row.get("data_usd") or 0.0)

    @property
    def total_usd(self) -> float | None:
        serve = self.row.get("serve_usd_per_month")
        return None if serve is None else self.one_time_usd + self.months * serve

    def cost_sentence(self) -> str:
        if self.total_usd is None:
            return "a cost not priced"
        parts = [f"{usd(self.train_usd)} training"] if self.row.get("train_usd") else []
        parts += [f"{usd(self.row.get('data_usd') or 0)} data", f"{usd(self.serve_usd_per_month)}/month serving"]
        return f"{usd(self.total_usd)} over {self.months:g} months ({' + '.join(parts)})"


@dataclass
class Analysis:
    """Everything the report draws from: the recommendation (stored in results.json) and its inputs."""

    recommendation: dict
    arms: list[Arm]
    chosen: Arm | None
    curves: list[LearningCurve]
    break_evens: list[BreakEven]
    economics: list[ArmEconomics]
    latency_gated: bool


def latency_basis(results: dict) -> tuple[bool, str]:
    """Whether the p95 goal can be checked directly, and a sentence saying on what latency was measured."""
    device, task = results.get("device") or {}, results["task"]
    deployment = (task.get("deployment") or {}).get("gpu")
    hardware = hardware_name(device)
    if deployment and catalog_gpu_for(device) == deployment:
        return True, (f"Latency was measured on {hardware}, the deployment hardware ({deployment}): "
                      f"the p95 goal is checked as is.")
    goal = (task.get("goals") or {}).get("p95_latency_ms")
    held = f"the {goal:,.0f} ms p95 goal is not applied" if goal else "there is no p95 goal"
    return False, (f"Latency was measured on {hardware}, not on the deployment "
                   f"{deployment or 'hardware'}: {held}, and arms are compared with each other. Differences show "
                   f"the direction (long prompts and retrieval cost time anywhere), not the size on a GPU.")


def _check(arm: Arm, goals: dict, latency_gated: bool) -> dict[str, str]:
    shortfalls = {}
    if goals.get("quality") is not None and arm.quality < goals["quality"]:
        low, high = arm.interval
        noise = (f", though within the test set's sampling error (95% interval {low:.2f}–{high:.2f})"
                 if high >= goals["quality"] else "")
        shortfalls["quality"] = f"{arm.quality:.3f} is below the {goals['quality']:.2f} goal{noise}"
    budget = goals.get("training_budget_usd")
    if budget is not None and (arm.train_usd or 0) > budget:
        shortfalls["budget"] = f"its training costs {usd(arm.train_usd)} against a {usd(budget)} budget"
    goal_p95 = goals.get("p95_latency_ms")
    if latency_gated and goal_p95 and (arm.latency_ms_p95 or 0) > goal_p95:
        shortfalls["latency"] = (f"its p95 latency of {arm.latency_ms_p95:,.0f} ms exceeds the "
                                 f"{goal_p95:,.0f} ms goal")
    return shortfalls


def _choose(adequate: list[Arm]) -> tuple[Arm, bool]:
    """Cheapest total; within NEAR_TIE of it, the simplest. Returns the arm and whether a near-tie decided."""
    priced = [a for a in adequate if a.total_usd is not None]
    if not priced:
        return min(adequate, key=lambda a: (ladder_rank(a.strategy), -a.quality)), False
    cheapest = min(priced, key=lambda a: a.total_usd)
    close = [a for a in priced if a.total_usd <= cheapest.total_usd * (1 + NEAR_TIE)]
    chosen = min(close, key=lambda a: (ladder_rank(a.strategy), a.total_usd))
    return chosen, chosen is not cheapest


def _best_per_strategy(arms: list[Arm]) -> dict[str, Arm]:
    best: dict[str, Arm] = {}
    for arm in sorted(arms, key=lambda a: (-a.quality, a.total_usd if a.total_usd is not None else math.inf)):
        best.setdefault(arm.strategy, arm)
    return best


def _break_evens(chosen: Arm, best: dict[str, Arm], months: float) -> tuple[list[BreakEven], list[ArmEconomics]]:
    """The fine-tuned arm of interest (the chosen one, else the best fine-tuned) against the best prompt
    and the best RAG arm."""
    tuned = chosen if chosen.strategy in FINE_TUNING else max(
        (a for s, a in best.items() if s in FINE_TUNING), key=lambda a: a.quality, default=None)
    baselines = [best[s] for s in ("prompt", "rag") if s in best]
    economics = {a.label: ArmEconomics.from_row(a.row, a.label) for a in [tuned, *baselines] if a is not None}
    economics = {label: e for label, e in economics.items() if e is not None}
    if tuned is None or tuned.label not in economics:
        return [], list(economics.values())
    pairs = [break_even(economics[tuned.label], economics[b.label], months) for b in baselines if b.label in economics]
    return pairs, list(economics.values())


def curve_sentence(curve: LearningCurve, results: dict, arms: list[Arm]) -> str:
    """The learning curve's estimate, priced with the task's data_cost and the largest run's training cost."""
    variant = max(curve.points, key=lambda p: p.examples).variant
    largest = next((a for a in arms if a.strategy == curve.strategy and a.variant == variant), None)
    config = DataCostConfig(**((results.get("costs") or {}).get("data_cost") or {}))
    return curve.sentence(results["task"].get("n_train") or curve.max_examples, config,
                          largest.train_usd if largest else None)


def bigger_model_sentence(results: dict, arm: Arm) -> str | None:
    """The next catalog model with at least twice the parameters (same family first), priced: training as the
    measured run's FLOPs scaled by parameter count, serving with the measured tokens per request."""
    shape = (results.get("costs") or {}).get("model_shape")
    if not shape:
        return None
    current = ModelShape(**shape)
    n_current = param_counts(current).total
    family = current.name.split("-")[0]
    larger = [(param_counts(ModelShape.from_catalog(name)).total, not name.startswith(family), name)
              for name in catalog.models() if name != current.name]
    larger = sorted((not_family, n, name) for n, not_family, name in larger if n >= 2 * n_current)
    if not larger:
        return None
    _, n_big, name = larger[0]
    ratio = n_big / n_current
    goals, gpu = results["task"].get("goals") or {}, (results.get("costs") or {}).get("gpu")
    # the measured tokens per request, as advisor.pricing prices each run (same family: same tokenizer)
    request = RequestShape.measured(arm.prompt_tokens_mean, arm.output_tokens_mean)
    serving = estimate_serving(name, SERVING_METHOD.get(arm.strategy, "prompt"), gpu,
                               goals.get("monthly_requests") or 0, request=request)
    training = f" ≈ {usd(arm.train_usd * ratio)} of training and" if arm.train_usd else ""
    return (f"A bigger base model (the ladder's answer when the task needs a capability the model lacks): {name} "
            f"has {ratio:.1f}x the parameters of {current.name}; as {strategy_name(arm.strategy)} "
            f"it would cost{training} ≈ {usd(serving.usd_per_month)}/month to serve on {gpu} "
            f"({usd(serving.usd_per_1k_requests)} per 1k requests). Its quality is not measured: run advisor compare "
            f"with model: {name}.")


def ladder_sentences(results: dict, best: dict[str, Arm]) -> list[str]:
    """The decision ladder's reading of this task, each claim next to what was measured."""
    task, metric = results["task"], results["task"].get("metric", "quality")
    tuned = max((a for s, a in best.items() if s in FINE_TUNING), key=lambda a: a.quality, default=None)
    prompted = best.get("prompt")
    sentences = []
    if task.get("knowledge") and "rag" in best:
        against = f" against {tuned.quality:.3f} for {tuned.label}" if tuned else ""
        sentences.append(f"The task brings a knowledge corpus (private facts), where the ladder points to RAG "
                         f"(retrieval keeps facts fresh without retraining); measured, {best['rag'].label} "
                         f"reaches {best['rag'].quality:.3f} {metric}{against}.")
    elif task.get("kind") in ("classification", "extraction") and tuned and prompted:
        sentences.append(f"{task['kind'].capitalize()} is format and behaviour, where the ladder expects "
                         f"fine-tuning to help; measured, {tuned.label} reaches {tuned.quality:.3f} {metric} "
                         f"against {prompted.quality:.3f} for {prompted.label}.")
    longest = max((a for s, a in best.items() if s not in FINE_TUNING), key=lambda a: a.prompt_tokens_mean or 0,
                  default=None)
    if tuned and longest and tuned.prompt_tokens_mean and longest.prompt_tokens_mean \
            and tuned.prompt_tokens_mean < 0.7 * longest.prompt_tokens_mean:
        cut = 1 - tuned.prompt_tokens_mean / longest.prompt_tokens_mean
        sentences.append(f"Fine-tuning carries the instruction and examples in its weights: {tuned.label} sends "
                         f"{tuned.prompt_tokens_mean:,.0f} prompt tokens per request against "
                         f"{longest.prompt_tokens_mean:,.0f} for {longest.label} ({cut:.0%} fewer).")
    return sentences


def _latency_sentence(chosen: Arm, arms: list[Arm], results: dict) -> str | None:
    timed = [a for a in arms if a.latency_ms_p95]
    if not chosen.latency_ms_p95 or len(timed) < 2:
        return None
    fastest = min(timed, key=lambda a: a.latency_ms_p95)
    where = hardware_name(results.get("device") or {})
    if fastest is chosen:
        return f"On {where}, {chosen.label} is the fastest arm measured: p95 {chosen.latency_ms_p95:,.0f} ms."
    return (f"On {where}, {chosen.label} answers at p95 {chosen.latency_ms_p95:,.0f} ms, "
            f"{chosen.latency_ms_p95 / fastest.latency_ms_p95:.1f}x the fastest arm ({fastest.label}, "
            f"{fastest.latency_ms_p95:,.0f} ms).")


def _what_would(results: dict, arms: list[Arm], curves: list[LearningCurve], closest: Arm,
                best: dict[str, Arm]) -> list[str]:
    """Estimates of what would meet the goals, when nothing measured does."""
    sentences = ["More examples — " + curve_sentence(curve, results, arms) for curve in curves]
    if not curves and any(s in FINE_TUNING for s in best):
        sentences.append("More examples: no learning curve was measured (each fine-tuning arm ran on one "
                         "training-set size); set strategies.lora.data_fractions (or qlora's or full's), e.g. [0.25, 0.5, 1.0], "
                         "to estimate how many would do.")
    within = [a for a in arms if set(a.shortfalls) == {"latency"}]
    if within:
        arm = min(within, key=lambda a: a.latency_ms_p95)
        sentences.append(f"A relaxed latency goal: {arm.label} meets everything else at p95 "
                         f"{arm.latency_ms_p95:,.0f} ms; a goal of {math.ceil(arm.latency_ms_p95):,} ms would let "
                         f"it through.")
    within = [a for a in arms if set(a.shortfalls) == {"budget"}]
    if within:
        arm = min(within, key=lambda a: a.train_usd)
        sentences.append(f"A larger training budget: {usd(arm.train_usd)} would let {arm.label} through.")
    reference = max((a for s, a in best.items() if s in FINE_TUNING), key=lambda a: a.quality, default=closest)
    bigger = bigger_model_sentence(results, reference)
    if bigger:
        sentences.append(bigger)
    return sentences


def _cautions(results: dict, latency_gated: bool, latency_note: str) -> list[str]:
    rows = results.get("runs") or []
    cautions = [f"{strategy_name(r.get('strategy') or '?')} {r.get('variant')} failed and was not considered: "
                f"{r.get('error')}" for r in rows if r.get("status") != "ok"]
    if not latency_gated:
        cautions.append(latency_note)
    if not results.get("costs"):
        cautions.append("The runs are not priced (no costs in results.json): the choice ignores cost.")
    if (results.get("options") or {}).get("limit"):
        cautions.append(f"A quick look (--limit {results['options']['limit']}): small subsets, not the full test set.")
    return cautions


def _adequate_reasons(chosen: Arm, near_tie: bool, adequate: list[Arm], goals: dict, metric: str,
                      cautions: list[str]) -> tuple[list[str], Arm | None]:
    """Why the chosen arm, and the next cheapest that also meets the goals (returned: the reasons name it)."""
    low, high = chosen.interval
    goal = goals.get("quality")
    reasons = [f"{chosen.label} reaches {chosen.quality:.3f} {metric}"
               + (f" ≥ the {goal:.2f} goal" if goal is not None else "")
               + f" (95% interval {low:.2f}–{high:.2f} on {chosen.n_examples} test examples) at {chosen.cost_sentence()}."]
    runner_up = min((a for a in adequate if a is not chosen and a.total_usd is not None),
                    key=lambda a: a.total_usd, default=None)
    if runner_up is not None and chosen.total_usd is not None:
        tie = (f" — within {NEAR_TIE:.0%} of each other, so the simpler arm wins"
               if near_tie and runner_up.total_usd < chosen.total_usd else "")
        reasons.append(f"{runner_up.label} also meets the goals ({runner_up.quality:.3f}) at "
                       f"{usd(runner_up.total_usd)} over {chosen.months:g} months{tie}.")
    if goal is not None and low < goal:
        cautions.append(f"{chosen.quality:.3f} is within the test set's sampling error of the {goal:.2f} goal "
                        f"(95% interval {low:.2f}–{high:.2f}): confirm on more test data before relying on it.")
    return reasons, runner_up


def analyse(results: dict) -> Analysis:
    task = results["task"]
    goals = task.get("goals") or {}
    months = goals.get("horizon_months") or DEFAULT_HORIZON_MONTHS
    metric = task.get("metric", "quality")
    latency_gated, latency_note = latency_basis(results)
    rows = results.get("runs") or []
    arms = [Arm(row, months) for row in rows if row.get("status") == "ok" and row.get("quality") is not None]
    for arm in arms:
        arm.shortfalls = _check(arm, goals, latency_gated)
    curves = learning_curves(rows, goals.get("quality"))
    cautions = _cautions(results, latency_gated, latency_note)
    recommendation = {"strategy": None, "variant": None, "label": None, "meets_goals": False, "horizon_months": months,
                      "verdict": "No run finished: nothing to recommend.", "reasons": [], "cautions": cautions,
                      "what_would_meet_goals": [], "latency_goal_applied": latency_gated, "arms": [],
                      "break_even": [], "break_even_basis": None, "learning_curves": [c.as_dict() for c in curves]}
    if not arms:
        return Analysis(recommendation, [], None, curves, [], [], latency_gated)

    best = _best_per_strategy(arms)
    adequate = [a for a in arms if not a.shortfalls]
    what_would = []
    if adequate:
        chosen, near_tie = _choose(adequate)
        verdict = f"Use {chosen.label}: it meets the goals at the lowest cost."
        reasons, runner_up = _adequate_reasons(chosen, near_tie, adequate, goals, metric, cautions)
    else:
        # the closest: the best quality among arms that miss nothing but quality
        chosen = max([a for a in arms if set(a.shortfalls) <= {"quality"}] or arms, key=lambda a: a.quality)
        verdict = (f"No measured run meets the goals. Closest: {chosen.label} at {chosen.quality:.3f} {metric}"
                   + (f" against a {goals['quality']:.2f} goal." if goals.get("quality") is not None else "."))
        reasons, runner_up = [], None
        what_would = _what_would(results, arms, curves, chosen, best)
    top = max(arms, key=lambda a: a.quality)
    if top not in (chosen, runner_up) and top.quality > chosen.quality and None not in (top.total_usd, chosen.total_usd):
        reasons.append(f"The highest {metric}, {top.quality:.3f}, is {top.label}'s, at {usd(top.total_usd)} over "
                       f"{months:g} months ({usd(top.total_usd - chosen.total_usd)} more).")
    reasons += [f"{arm.label} (best {strategy_name(strategy)} run) falls short: {'; '.join(arm.shortfalls.values())}."
                for strategy, arm in best.items() if arm.shortfalls and arm is not chosen]
    pairs, economics = _break_evens(chosen, best, months)
    reasons += [p.sentence(goals.get("monthly_requests")) for p in pairs]
    reasons += ladder_sentences(results, best)
    reasons += [s for s in [_latency_sentence(chosen, arms, results)] if s]
    if adequate and chosen.strategy in FINE_TUNING:
        reasons += [curve_sentence(c, results, arms) for c in curves if c.strategy == chosen.strategy]
    recommendation.update(
        strategy=chosen.strategy, variant=chosen.variant, label=chosen.label, meets_goals=bool(adequate),
        verdict=verdict, reasons=reasons, what_would_meet_goals=what_would,
        arms=[{"strategy": a.strategy, "variant": a.variant, "total_usd": a.total_usd,
               "quality_interval": list(a.interval), "misses": list(a.shortfalls),
               "shortfalls": list(a.shortfalls.values())} for a in arms],
        break_even=[p.as_dict(goals.get("monthly_requests")) for p in pairs],
        break_even_basis=dedicated_gpu_caveat(pairs[0].tuned, (results.get("costs") or {}).get("gpu")) if pairs else None)
    return Analysis(recommendation, arms, chosen, curves, pairs, economics, latency_gated)


def recommend(results: dict) -> dict:
    """``results['recommendation']``: {strategy, variant, verdict, reasons: [...], cautions, ...}."""
    return analyse(results).recommendation


def store_recommendation(results_dir: Path, results: dict) -> dict:
    """Recommend from ``results`` and rewrite ``results_dir``/results.json with it, atomically."""
    results["recommendation"] = recommend(results)
    atomic_write_json(Path(results_dir) / "results.json", results)
    return results
