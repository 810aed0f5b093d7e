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

from advisor.breakeven import ArmEconomics, BreakEven, break_even
from advisor.costs import DataCostConfig, ModelShape, RequestShape, data_cost, estimate_serving, param_counts
from advisor.costs.compute import catalog_gpu_for
from advisor.learning_curve import LearningCurve, learning_curves
from advisor.pricing import SERVING_METHOD

DEFAULT_HORIZON_MONTHS = 12
NEAR_TIE = 0.05
Z_95 = 1.96
FINE_TUNING = ("lora", "qlora", "full")
LADDER = {"prompt": 0, "rag": 1, "lora": 2, "qlora": 2, "full": 3}  # simplest first
NAMES = {"prompt": "prompting", "rag": "RAG", "lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tuning"}


def usd(value) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if abs(value) >= 0.1 else f"${value:.2g}"


def count(value) -> str:
    return "—" if value is None else f"{value:,.0f}"


def strategy_name(strategy: str) -> str:
    """'lora' -> 'LoRA'; a measured combination such as 'lora+rag' -> 'LoRA + RAG'."""
    return " + ".join(NAMES.get(part, part) for part in strategy.split("+"))


def ladder_rank(strategy: str) -> int:
    return max(LADDER.get(part, len(LADDER)) for part in strategy.split("+"))


def quality_interval(quality: float, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a mean score on n test examples (exact for accuracy; for scores in [0, 1]
    the binomial variance is an upper bound, so the interval is conservative)."""
    if not n:
        return quality, quality
    centre = (quality + Z_95 ** 2 / (2 * n)) / (1 + Z_95 ** 2 / n)
    half = Z_95 * math.sqrt(quality * (1 - quality) / n + Z_95 ** 2 / (4 * n * n)) / (1 + Z_95 ** 2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Arm:
    """One finished run, priced over the horizon and checked against the goals."""

    row: dict
    months: float
    shortfalls: dict[str, str] = field(default_factory=dict)  # goal ("quality", "budget", "latency") -> why

    def __getattr__(self, key):
        # the row's fields (quality, latency_ms_p95, train_usd, ...); None where a row lacks one, as an
        # unpriced row lacks the cost fields
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
    hardware = device.get("gpu") or f"a CPU ({device.get('cpu', '?')}, {device.get('cpu_count', '?')} cores)"
    if deployment and catalog_gpu_for(device) == deployment:
        return True, f"Latency was measured on {hardware}, the deployment hardware ({deployment}): the p95 goal is checked as is."
    goal = (task.get("goals") or {}).get("p95_latency_ms")
    held = f"the {goal:,.0f} ms p95 goal is not applied" if goal else "there is no p95 goal"
    return False, (f"Latency was measured on {hardware}, not on the deployment "
                   f"{deployment or 'hardware'}: {held}, and arms are compared with each other. Differences show "
                   f"the direction (long prompts and retrieval cost time anywhere), not the size on a GPU.")


def _check(arm: Arm, goals: dict, latency_gated: bool) -> dict[str, str]:
    shortfalls = {}
    if goals.get("quality") is not None and arm.quality < goals["quality"]:
        shortfalls["quality"] = f"{arm.quality:.3f} is below the {goals['quality']:.2f} goal"
    budget = goals.get("training_budget_usd")
    if budget is not None and (arm.train_usd or 0) > budget:
        shortfalls["budget"] = f"its training costs {usd(arm.train_usd)} against a {usd(budget)} budget"
    goal_p95 = goals.get("p95_latency_ms")
    if latency_gated and goal_p95 and (arm.latency_ms_p95 or 0) > goal_p95:
        shortfalls["latency"] = f"its p95 latency of {arm.latency_ms_p95:,.0f} ms exceeds the {goal_p95:,.0f} ms goal"
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


def break_even_sentence(pair: BreakEven, expected: float | None) -> str:
    t, b, months = pair.tuned, pair.baseline, f"{pair.months:g}"
    per_1k = f"{usd(t.usd_per_1k)} per 1k requests against {usd(b.usd_per_1k)}"
    if pair.outcome == "always":
        return f"{t.label} is cheaper than {b.label} at every volume: no more up front and {per_1k}."
    if pair.outcome == "never":
        return (f"{t.label} never pays back against {b.label}: {usd(pair.extra_one_time_usd)} more up front "
                f"(training + data) and {per_1k}.")
    where = "above" if pair.outcome == "above" else "only below"
    expect = f" (the task expects {count(expected)})" if expected else ""
    return (f"Against {b.label}, {t.label} costs {per_1k}; {usd(abs(pair.extra_one_time_usd))} "
            f"{'more' if pair.outcome == 'above' else 'less'} up front, so it is cheaper over {months} months "
            f"{where} {count(pair.monthly_requests)} requests a month{expect}.")


def provisioned_caveat(economics: list[ArmEconomics], gpu: str) -> str | None:
    tuned = next((e for e in economics if e.strategy in FINE_TUNING), None)
    if tuned is None or tuned.requests_per_replica_month is None:
        return None
    return (f"Break-even compares marginal serving cost (GPU-hours actually used, as on an autoscaled or shared "
            f"deployment). On dedicated always-on GPUs every arm pays for at least one {gpu} "
            f"({usd(tuned.replica_month_usd)}/month), which serves up to {count(tuned.requests_per_replica_month)} "
            f"requests a month for {tuned.label}: below that, a cheaper request saves nothing.")


def _largest_run(curve: LearningCurve, arms: list[Arm]) -> Arm | None:
    variant = max(curve.points, key=lambda p: p.examples).variant
    return next((a for a in arms if a.strategy == curve.strategy and a.variant == variant), None)


def curve_sentence(curve: LearningCurve, results: dict, arms: list[Arm]) -> str:
    """What the learning curve says about reaching the quality goal, with the data and training it would cost."""
    label = f"{strategy_name(curve.strategy)} {curve.variant}"
    sizes = f"{len(curve.points)} runs, {curve.points[0].examples:,}–{curve.max_examples:,} examples"
    caveat = f" Unreliable: {'; '.join(curve.warnings)}." if curve.warnings else ""
    if curve.fit is None or curve.goal is None:
        return f"{label} ({sizes}): no estimate.{caveat}"
    if not math.isfinite(curve.examples_for_goal):
        return (f"{label} ({sizes}): the fitted curve levels off at {curve.fit.a:.3f}, short of the {curve.goal:.3f} "
                f"goal: more examples of this kind are not predicted to reach it.{caveat}")
    needed = curve.examples_for_goal
    low, high = curve.goal_interval
    span = f"90% interval {count(low)}–{count(high) if math.isfinite(high) else 'never'}"
    have = results["task"].get("n_train") or curve.max_examples
    extra = max(0, math.ceil(needed) - have)
    config = DataCostConfig(**((results.get("costs") or {}).get("data_cost") or {}))
    data = data_cost(extra, config)
    largest = _largest_run(curve, arms)
    training = ""
    if largest is not None and largest.train_usd is not None:
        # same epochs: training tokens, and so FLOPs and dollars, grow with the examples
        training = f" and ≈ {usd(largest.train_usd * needed / curve.max_examples)} of training"
    more = (f"{count(extra)} more than the {count(have)} you have, ≈ {usd(data.total_usd)} of data "
            f"({data.human_hours:,.0f} person-hours)" if extra else f"within the {count(have)} examples you have")
    return (f"{label} ({sizes}): the fitted curve reaches {curve.goal:.2f} at ≈ {count(needed)} examples "
            f"({span}): {more}{training}.{caveat}")


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
    goals, gpu = results["task"].get("goals") or {}, results["task"]["deployment"]["gpu"]
    request = RequestShape(input_tokens=round(arm.prompt_tokens_mean or 1), output_tokens=max(1, round(arm.output_tokens_mean or 1)),
                           template_tokens=0, instruction_tokens=0, shots=0, rag_chunks=0)
    serving = estimate_serving(name, SERVING_METHOD.get(arm.strategy, "prompt"), gpu, goals.get("monthly_requests") or 0,
                               request=request)
    training = f" ≈ {usd(arm.train_usd * ratio)} of training and" if arm.train_usd else ""
    return (f"A bigger base model: {name} has {ratio:.1f}x the parameters of {current.name}; as {strategy_name(arm.strategy)} "
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
    longest = max((a for s, a in best.items() if s not in FINE_TUNING), key=lambda a: a.prompt_tokens_mean or 0, default=None)
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
    device = results.get("device") or {}
    where = device.get("gpu") or device.get("cpu") or device.get("device", "this machine")
    if fastest is chosen:
        return f"On {where}, {chosen.label} is the fastest arm measured: p95 {chosen.latency_ms_p95:,.0f} ms."
    return (f"On {where}, {chosen.label} answers at p95 {chosen.latency_ms_p95:,.0f} ms, "
            f"{chosen.latency_ms_p95 / fastest.latency_ms_p95:.1f}x the fastest arm ({fastest.label}, "
            f"{fastest.latency_ms_p95:,.0f} ms).")


def _what_would(results: dict, arms: list[Arm], curves: list[LearningCurve], closest: Arm, best: dict[str, Arm],
                goals: dict) -> list[str]:
    """Estimates of what would meet the goals, when nothing measured does."""
    sentences = ["More examples — " + curve_sentence(curve, results, arms) for curve in curves]
    if not curves and any(s in FINE_TUNING for s in best):
        sentences.append("More examples: no learning curve was measured (each fine-tuning arm ran on one "
                         "training-set size); set data_fractions, e.g. [0.25, 0.5, 1.0], to estimate how many would do.")
    within = [a for a in arms if set(a.shortfalls) == {"latency"}]
    if within:
        arm = min(within, key=lambda a: a.latency_ms_p95)
        sentences.append(f"A relaxed latency goal: {arm.label} meets everything else at p95 "
                         f"{arm.latency_ms_p95:,.0f} ms; a goal of {math.ceil(arm.latency_ms_p95):,} ms would let it through.")
    within = [a for a in arms if set(a.shortfalls) == {"budget"}]
    if within:
        arm = min(within, key=lambda a: a.train_usd)
        sentences.append(f"A larger training budget: {usd(arm.train_usd)} would let {arm.label} through.")
    reference = max((a for s, a in best.items() if s in FINE_TUNING), key=lambda a: a.quality, default=closest)
    bigger = bigger_model_sentence(results, reference)
    if bigger:
        sentences.append(bigger)
    return sentences


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
    cautions = [f"{strategy_name(r.get('strategy') or '?')} {r.get('variant')} failed and was not considered: {r.get('error')}"
                for r in rows if r.get("status") != "ok"]
    if not latency_gated:
        cautions.append(latency_note)
    if not results.get("costs"):
        cautions.append("The runs are not priced (no costs in results.json): the choice ignores cost.")
    if (results.get("options") or {}).get("limit"):
        cautions.append(f"A quick look (--limit {results['options']['limit']}): small subsets, not the full test set.")
    if not arms:
        recommendation = {"strategy": None, "variant": None, "meets_goals": False, "horizon_months": months,
                          "verdict": "No run finished: nothing to recommend.", "reasons": [], "cautions": cautions,
                          "what_would_meet_goals": [], "arms": [], "break_even": [], "learning_curves": []}
        return Analysis(recommendation, [], None, curves, [], [], latency_gated)

    best = _best_per_strategy(arms)
    adequate = [a for a in arms if not a.shortfalls]
    reasons, what_would = [], []
    if adequate:
        chosen, near_tie = _choose(adequate)
        low, high = chosen.interval
        goal_part = f" ≥ the {goals['quality']:.2f} goal" if goals.get("quality") is not None else ""
        verdict = f"Use {chosen.label}: it meets the goals at the lowest cost."
        reasons.append(f"{chosen.label} reaches {chosen.quality:.3f} {metric}{goal_part} (95% interval {low:.2f}–{high:.2f} "
                       f"on {chosen.n_examples} test examples) at {chosen.cost_sentence()}.")
        runner_up = min((a for a in adequate if a is not chosen and a.total_usd is not None),
                        key=lambda a: a.total_usd, default=None)
        if runner_up is not None and chosen.total_usd is not None:
            tie = (f" — within {NEAR_TIE:.0%} of each other, so the simpler arm wins"
                   if near_tie and runner_up.total_usd < chosen.total_usd else "")
            reasons.append(f"{runner_up.label} also meets the goals ({runner_up.quality:.3f}) at "
                           f"{usd(runner_up.total_usd)} over {months:g} months{tie}.")
        if goals.get("quality") is not None and low < goals["quality"]:
            cautions.append(f"{chosen.quality:.3f} is within the test set's sampling error of the {goals['quality']:.2f} goal "
                            f"(95% interval {low:.2f}–{high:.2f}): confirm on more test data before relying on it.")
    else:
        runner_up = None
        within = [a for a in arms if set(a.shortfalls) <= {"quality"}] or arms
        chosen = max(within, key=lambda a: a.quality)
        verdict = (f"No measured run meets the goals. Closest: {chosen.label} at {chosen.quality:.3f} {metric}"
                   + (f" against a {goals['quality']:.2f} goal." if goals.get("quality") is not None else "."))
        what_would = _what_would(results, arms, curves, chosen, best, goals)
    top = max(arms, key=lambda a: a.quality)
    if top not in (chosen, runner_up) and top.quality > chosen.quality and top.total_usd is not None and chosen.total_usd is not None:
        reasons.append(f"The highest {metric}, {top.quality:.3f}, is {top.label}'s, at {usd(top.total_usd)} over "
                       f"{months:g} months ({usd(top.total_usd - chosen.total_usd)} more).")
    for strategy, arm in best.items():
        if arm.shortfalls and arm is not chosen:
            reasons.append(f"{arm.label} (best {strategy_name(strategy)} run) falls short: "
                           f"{'; '.join(arm.shortfalls.values())}.")
    pairs, economics = _break_evens(chosen, best, months)
    reasons += [break_even_sentence(p, goals.get("monthly_requests")) for p in pairs]
    reasons += ladder_sentences(results, best)
    latency = _latency_sentence(chosen, arms, results)
    if latency:
        reasons.append(latency)
    if adequate and chosen.strategy in FINE_TUNING:
        reasons += [curve_sentence(c, results, arms) for c in curves if c.strategy == chosen.strategy]
    recommendation = {
        "strategy": chosen.strategy, "variant": chosen.variant, "label": chosen.label,
        "meets_goals": bool(adequate), "horizon_months": months, "verdict": verdict,
        "reasons": reasons, "cautions": cautions, "what_would_meet_goals": what_would,
        "latency_goal_applied": latency_gated,
        "arms": [{"strategy": a.strategy, "variant": a.variant, "total_usd": a.total_usd,
                  "quality_interval": list(a.interval), "shortfalls": list(a.shortfalls.values())} for a in arms],
        "break_even": [{**p.as_dict(), "sentence": break_even_sentence(p, goals.get("monthly_requests"))} for p in pairs],
        "break_even_basis": provisioned_caveat(economics, task["deployment"]["gpu"]),
        "learning_curves": [c.as_dict() for c in curves],
    }
    return Analysis(recommendation, arms, chosen, curves, pairs, economics, latency_gated)


def recommend(results: dict) -> dict:
    """``results['recommendation']``: {strategy, variant, verdict, reasons: [...], cautions, ...}."""
    return analyse(results).recommendation


def store_recommendation(results_dir: Path, results: dict) -> dict:
    """Recommend from ``results`` and rewrite ``results_dir``/results.json with it, atomically."""
    results["recommendation"] = recommend(results)
    atomic_write_json(Path(results_dir) / "results.json", results)
    return results
