"""Learning curves: quality against training examples for one fine-tuning arm, fitted and bootstrapped.

Model: a saturating power law, q(n) = a - b * n^(-c), with a <= 1 (every metric is on a 0..1 scale),
b >= 0 (more data does not hurt) and c > 0. For a fixed exponent c the model is linear in (a, b), so
the fit is exact least squares on a grid of c, then on a finer grid around the best one, keeping the c
with the smallest squared error: no scipy, no starting values, and the same vectorised code fits every
bootstrap sample at once.

Uncertainty: a parametric bootstrap of the test set. Each measured quality is the mean score over
n_test examples; resampling it as Binomial(n_test, q) / n_test gives the spread a different test set
of the same size would show (for scores in [0, 1] the binomial variance is an upper bound). With
several training seeds per point (``--seeds``) the point is their mean and each bootstrap sample also
draws the run-to-run training variance: Normal(0, s^2 / k), s the seeds' sample standard deviation and k
their number (``standard_error``). With one seed per point the band does not include it: it is a floor
on the real uncertainty, and the report says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from advisor.costs import DataCostConfig, data_cost
from advisor.wording import count, strategy_name, usd
from harness.record import RunStatus
from harness.runstore import RunRow

EXPONENT_GRID = np.geomspace(0.02, 3.0, 300)  # c, in steps of 1.7 %
REFINE_STEPS = np.geomspace(EXPONENT_GRID[0] / EXPONENT_GRID[1], EXPONENT_GRID[1] / EXPONENT_GRID[0], 41)
QUALITY_CEILING = 1.0
BOOTSTRAP_SAMPLES = 400
BAND_PERCENTILES = (5.0, 95.0)  # a 90 % interval
MIN_POINTS = 3  # a, b and c need three training-set sizes
MAX_EXTRAPOLATION = 10.0  # beyond 10x the largest measured set, say it is a guess
MAX_INTERVAL_RATIO = 10.0  # an interval wider than 10x is no estimate
UNREACHABLE_SHARE = 0.10  # more than 10 % of samples never reach the goal: say so
Z_95 = 1.96

# "r8-25pct" and "r8" are the same arm on 25 % and 100 % of train: strip the data-fraction suffix
FRACTION_SUFFIX = re.compile(r"-\d+(?:\.\d+)?pct$")


@dataclass(frozen=True)
class CurvePoint:
    examples: int  # training examples the run was trained on
    quality: float  # with several seeds, their mean
    n_test: int  # test examples behind the quality
    variant: str
    seed_qualities: tuple[float, ...] = ()  # each seed's quality, when there are several

    @property
    def seeds(self) -> int:
        return max(1, len(self.seed_qualities))

    @property
    def seed_std(self) -> float:
        """The seeds' sample standard deviation (0 with one seed)."""
        if len(self.seed_qualities) < 2:
            return 0.0
        mean = sum(self.seed_qualities) / len(self.seed_qualities)
        return math.sqrt(sum((q - mean) ** 2 for q in self.seed_qualities) / (len(self.seed_qualities) - 1))


@dataclass(frozen=True)
class PowerLaw:
    a: float  # the ceiling the curve approaches
    b: float
    c: float

    def quality(self, examples):
        return self.a - self.b * np.power(np.asarray(examples, dtype=float), -self.c)

    def examples_for(self, quality: float) -> float:
        """Training examples at which the curve reaches ``quality``; inf when it never does."""
        if self.b <= 0 or self.a <= quality:
            return math.inf
        return (self.b / (self.a - quality)) ** (1 / self.c)


def _least_squares(n: np.ndarray, q: np.ndarray, exponents: np.ndarray, ceiling: float):
    """For each curve (rows of q, shape (s, k)) and each of its exponents (s, g): the best (a, b) and the
    squared error. Linear least squares in (a, b), with b >= 0 and a <= ceiling."""
    x = np.power(n[None, None, :], -exponents[:, :, None])  # (s, g, k)
    x_centered = x - x.mean(axis=2, keepdims=True)
    q_mean = q.mean(axis=1)
    covariance = np.einsum("sgk,sk->sg", x_centered, q - q_mean[:, None])
    b = np.maximum(-covariance / (x_centered**2).sum(axis=2), 0.0)  # b < 0 would mean data hurts
    a = q_mean[:, None] + b * x.mean(axis=2)
    # above the ceiling, refit b with a pinned at it: min sum (ceiling - b x - q)^2
    b_pinned = np.einsum("sgk,sk->sg", x, ceiling - q) / (x**2).sum(axis=2)
    over = a > ceiling
    a = np.where(over, ceiling, a)
    b = np.where(over, np.maximum(b_pinned, 0.0), b)
    error = ((q[:, None, :] - (a[..., None] - b[..., None] * x)) ** 2).sum(axis=2)
    return a, b, error


def fit_power_law(examples, qualities, ceiling: float = QUALITY_CEILING):
    """Least-squares fit of q = a - b n^-c; ``qualities`` is one curve (k,) or many (s, k).
    Returns arrays a, b, c with one entry per curve."""
    n = np.asarray(examples, dtype=float)
    q = np.atleast_2d(np.asarray(qualities, dtype=float))
    rows = np.arange(q.shape[0])
    exponents = np.broadcast_to(EXPONENT_GRID, (q.shape[0], EXPONENT_GRID.size))
    for _ in range(2):  # the coarse grid, then a fine one between each curve's best point's neighbours
        a, b, error = _least_squares(n, q, exponents, ceiling)
        best = error.argmin(axis=1)
        c = exponents[rows, best]
        exponents = c[:, None] * REFINE_STEPS[None, :]
    return a[rows, best], b[rows, best], c


@dataclass
class LearningCurve:
    strategy: str
    variant: str  # the arm, without its data-fraction suffix
    points: list[CurvePoint]
    goal: float | None
    fit: PowerLaw | None = None
    samples: tuple | None = None  # bootstrap (a, b, c) arrays
    examples_for_goal: float | None = None
    goal_interval: tuple[float, float] | None = None
    unreachable_share: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def reliable(self) -> bool:
        return self.fit is not None and not self.warnings

    @property
    def max_examples(self) -> int:
        return max(p.examples for p in self.points)

    def band(self, examples: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The 90 % bootstrap band of the fitted curve at ``examples``."""
        if self.samples is None:
            raise ValueError(f"{self.strategy} {self.variant}: no fit, so no band")
        a, b, c = self.samples
        n = np.asarray(examples, dtype=float)
        curves = a[:, None] - b[:, None] * np.power(n[None, :], -c[:, None])
        low, high = np.percentile(curves, BAND_PERCENTILES, axis=0)
        return low, high

    def sentence(
        self, have: int, config: DataCostConfig | None, training_usd: Callable[[float], float | None] | None
    ) -> str:
        """What the curve says about reaching the goal, with the data (beyond the ``have`` examples at hand)
        and the training that would cost (``training_usd(ratio)``: the largest run's training at ``ratio`` x its
        work, ``RunCosts.train_usd_scaled``)."""
        label = f"{strategy_name(self.strategy)} {self.variant}"
        sizes = f"{len(self.points)} runs, {self.points[0].examples:,}–{self.max_examples:,} examples"
        caveat = f" Unreliable: {'; '.join(self.warnings)}." if self.warnings else ""
        if self.fit is None or self.goal is None or self.examples_for_goal is None or self.goal_interval is None:
            return f"{label} ({sizes}): no estimate.{caveat}"
        if not math.isfinite(self.examples_for_goal):
            return (
                f"{label} ({sizes}): the fitted curve levels off at {self.fit.a:.3f}, short of the {self.goal:.3f} "
                f"goal: more examples of this kind are not predicted to reach it.{caveat}"
            )
        needed = self.examples_for_goal
        low, high = self.goal_interval
        extra = max(0, round(needed) - have)
        data = data_cost(extra, config)
        more = (
            f"{count(extra)} more than the {count(have)} you have, ≈ {usd(data.total_usd)} of data "
            f"({data.human_hours:,.0f} person-hours)"
            if extra
            else f"within the {count(have)} examples you have"
        )
        # same epochs: training tokens, and so FLOPs and their dollars, grow with the examples (not the fixed part)
        scaled = training_usd(needed / self.max_examples) if training_usd is not None else None
        training = f" and ≈ {usd(scaled)} of training" if scaled is not None else ""
        return (
            f"{label} ({sizes}): the fitted curve reaches {self.goal:.2f} at ≈ {count(needed)} examples "
            f"(90% interval {count(low)}–{count(high) if math.isfinite(high) else 'never'}): {more}{training}.{caveat}"
        )

    def as_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "variant": self.variant,
            "points": [vars(p) for p in self.points],
            "fit": vars(self.fit) if self.fit else None,
            "goal": self.goal,
            "examples_for_goal": _finite_or_none(self.examples_for_goal),
            "goal_interval": [_finite_or_none(v) for v in self.goal_interval] if self.goal_interval else None,
            "unreachable_share": self.unreachable_share,
            "reliable": self.reliable,
            "warnings": list(self.warnings),
        }


def _finite_or_none(value):
    return None if value is None or not math.isfinite(value) else float(value)


def base_variant(variant: str) -> str:
    return FRACTION_SUFFIX.sub("", variant or "")


def curve_points(rows: list[RunRow]) -> dict[tuple[str, str], list[CurvePoint]]:
    """Finished fine-tuning runs grouped by arm (strategy, variant without its fraction suffix)."""
    groups: dict[tuple[str, str], list[CurvePoint]] = {}
    for row in rows:
        if row.status is not RunStatus.OK or row.quality is None or not row.train_examples:
            continue
        key = (row.strategy, base_variant(row.variant))
        groups.setdefault(key, []).append(
            CurvePoint(
                examples=int(row.train_examples),
                quality=row.quality,
                n_test=int(row.n_examples or 0),
                variant=row.variant,
                seed_qualities=tuple(row.seed_qualities or ()) if len(row.seed_qualities or ()) > 1 else (),
            )
        )
    return {key: sorted(points, key=lambda p: p.examples) for key, points in groups.items()}


def quality_interval(quality: float, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a mean score on n test examples (exact for accuracy; for scores in [0, 1]
    the binomial variance is an upper bound, so the interval is conservative)."""
    if not n:
        return quality, quality
    centre = (quality + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
    half = Z_95 * math.sqrt(quality * (1 - quality) / n + Z_95**2 / (4 * n * n)) / (1 + Z_95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sampling_error(point: CurvePoint) -> float:
    """The standard error a different test set of the same size would show (binomial: an upper bound)."""
    return math.sqrt(max(point.quality * (1 - point.quality), 1e-9) / max(point.n_test, 1))


def seed_error(point: CurvePoint) -> float:
    """The standard error of the mean over the point's training seeds: s / sqrt(k) (0 with one seed)."""
    return point.seed_std / math.sqrt(point.seeds)


def standard_error(point: CurvePoint) -> float:
    """A point's standard error: test-set sampling and, with several seeds, the run-to-run training variance.

    The seeds are scored on the same test set, so its sampling error is shared and does not average down over
    them: it enters whole, q(1 - q) / n_test. Training randomness does average down: the mean of k seeds carries
    s^2 / k of it, s the seeds' sample standard deviation. The two add as independent variances:

        SE^2 = q(1 - q) / n_test + s^2 / k

    (s^2 is measured on one test set, so it also holds a little of the seed x test-set interaction: the sum
    errs on the wide side)."""
    return math.hypot(sampling_error(point), seed_error(point))


def point_interval(point: CurvePoint) -> tuple[float, float]:
    """A measured point's 95 % interval: the Wilson interval on its test set, widened by the seeds' error when
    there are several (their half-widths add in quadrature)."""
    low, high = quality_interval(point.quality, point.n_test)
    spread = Z_95 * seed_error(point)
    if not spread:
        return low, high
    return (
        max(0.0, point.quality - math.hypot(point.quality - low, spread)),
        min(1.0, point.quality + math.hypot(high - point.quality, spread)),
    )


def fit_learning_curve(
    strategy: str, variant: str, points: list[CurvePoint], goal: float | None, seed: int = 0
) -> LearningCurve:
    curve = LearningCurve(strategy=strategy, variant=variant, points=points, goal=goal)
    sizes = sorted({p.examples for p in points})
    if len(sizes) < MIN_POINTS:
        curve.warnings.append(
            f"too few points: {len(sizes)} training-set size(s) measured, a saturating curve "
            f"needs at least {MIN_POINTS} (set the arm's data_fractions, e.g. [0.25, 0.5, 1.0])"
        )
        return curve
    n = np.array([p.examples for p in points], dtype=float)
    q = np.array([p.quality for p in points])
    a, b, c = fit_power_law(n, q)
    curve.fit = PowerLaw(float(a[0]), float(b[0]), float(c[0]))
    rng = np.random.default_rng(seed)
    n_test = np.array([max(p.n_test, 1) for p in points])
    resampled = rng.binomial(n_test, np.clip(q, 0, 1), size=(BOOTSTRAP_SAMPLES, len(points))) / n_test
    # with seeds, each sample also draws the training variance of the seeds' mean (standard_error)
    training = np.array([seed_error(p) for p in points])
    if training.any():
        resampled = np.clip(resampled + rng.normal(0.0, 1.0, resampled.shape) * training, 0.0, 1.0)
    curve.samples = fit_power_law(n, resampled)

    smallest, largest = points[0], points[-1]
    noise = Z_95 * math.hypot(standard_error(smallest), standard_error(largest))
    if largest.quality - smallest.quality < noise:
        curve.warnings.append(
            f"flat curve: {smallest.quality:.3f} at {smallest.examples:,} examples, {largest.quality:.3f} at "
            f"{largest.examples:,}, a change within {'test-set and seed' if training.any() else 'test-set'} noise "
            f"(±{noise:.3f}); more data is not shown to help"
        )
    if goal is not None:
        _estimate_goal(curve, goal)
    return curve


def _estimate_goal(curve: LearningCurve, goal: float) -> None:
    if curve.samples is None or curve.fit is None:
        raise ValueError("fit the curve before estimating the goal")
    a, b, c = curve.samples
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.where((b > 0) & (a > goal), np.power(b / (a - goal), 1 / c), np.inf)
    curve.unreachable_share = float(np.mean(~np.isfinite(needed)))
    # "nearest" keeps inf (never reaches the goal) as an open upper end instead of interpolating inf - inf
    low, high = np.percentile(needed, BAND_PERCENTILES, method="nearest")
    curve.goal_interval = (float(low), float(high))
    curve.examples_for_goal = curve.fit.examples_for(goal)
    if not math.isfinite(curve.examples_for_goal):
        # "never" is an extrapolation too: say how many resampled test sets would disagree
        if 1 - curve.unreachable_share > UNREACHABLE_SHARE:
            curve.warnings.append(f"{1 - curve.unreachable_share:.0%} of bootstrap fits do reach the goal")
        return
    beyond = curve.examples_for_goal / curve.max_examples
    if beyond > MAX_EXTRAPOLATION:
        curve.warnings.append(
            f"the goal lies {beyond:,.0f}x beyond the largest measured training set ({curve.max_examples:,} examples)"
        )
    if curve.unreachable_share > UNREACHABLE_SHARE:
        curve.warnings.append(f"{curve.unreachable_share:.0%} of bootstrap fits never reach the goal")
    elif high / max(low, 1.0) > MAX_INTERVAL_RATIO:
        curve.warnings.append(f"the 90% interval is wide: {low:,.0f} to {high:,.0f} examples")


def learning_curves(rows: list[RunRow], goal: float | None) -> list[LearningCurve]:
    """One fitted curve per fine-tuning arm measured at two or more training-set sizes."""
    return [
        fit_learning_curve(strategy, variant, points, goal)
        for (strategy, variant), points in curve_points(rows).items()
        if len({p.examples for p in points}) >= 2
    ]
