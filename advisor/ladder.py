"""The decision ladder's reading of a task, and estimates of what would meet goals nothing measured meets: more
examples (the learning curve), a bigger model, a relaxed latency goal or a larger training budget. Each claim sits
next to what was measured."""

from __future__ import annotations

import math

from advisor.arms import Arm, best_on_rung, best_tuned
from advisor.costs import ModelShape, RequestShape, estimate_serving, param_counts
from advisor.learning_curve import LearningCurve
from advisor.pricing import Pricing
from advisor.wording import strategy_name, usd
from harness import catalog
from harness.strategies.base import Rung


def curve_sentence(curve: LearningCurve, pricing: Pricing, arms: list[Arm]) -> str:
    """The learning curve's estimate, priced with the task's data_cost and the largest run's training cost."""
    variant = max(curve.points, key=lambda p: p.examples).variant
    largest = next((a for a in arms if a.strategy == curve.strategy and a.variant == variant), None)
    config = pricing.assumptions.data_cost if pricing.assumptions else None
    return curve.sentence(
        pricing.comparison.task.n_train or curve.max_examples,
        config,
        largest.run.costs.train_usd_scaled if largest and largest.train_usd is not None else None,
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
    # the FLOPs scale with the parameters; the fixed part per job is kept as the measured model's
    scaled = arm.run.costs.train_usd_scaled(ratio)
    training = f" ≈ {usd(scaled)} of training and" if scaled else ""
    return (
        f"A bigger base model (the ladder's answer when the task needs a capability the model lacks): {name} "
        f"has {ratio:.1f}x the parameters of {current.name}; as {strategy_name(arm.strategy)} "
        f"it would cost{training} ≈ {usd(serving.usd_per_month)}/month to serve on {assumptions.gpu} "
        f"({usd(serving.usd_per_1k_requests)} per 1k requests). Its quality is not measured: run advisor compare "
        f"with model: {name}."
    )


def ladder_sentences(pricing: Pricing, best: dict[str, Arm]) -> list[str]:
    """The decision ladder's reading of this task, each claim next to what was measured."""
    task = pricing.comparison.task
    # the ladder's rungs one at a time: fine-tuning alone (closed book) against prompting and retrieval alone
    tuned = best_tuned(best, with_retrieval=False)
    prompted, retrieved = best_on_rung(best, Rung.PROMPT), best_on_rung(best, Rung.RETRIEVAL)
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
    combined = best_tuned(best, with_retrieval=True)
    alone = [
        f"{a.quality:.3f} for {a.label} ({what} alone)"
        for a, what in ((retrieved, "retrieval"), (tuned, "fine-tuning"))
        if a
    ]
    if combined and alone:
        sentences.append(
            f"Fine-tuning and retrieval together: {combined.label} reaches {combined.quality:.3f} {task.metric} "
            f"against {' and '.join(alone)}."
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


def what_would_meet_goals(
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
    bigger = bigger_model_sentence(pricing, best_tuned(best) or closest)
    if bigger:
        sentences.append(bigger)
    return sentences
