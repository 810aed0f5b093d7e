"""Are the differences real? Paired tests between arms on the same test examples.

Every arm is scored on the same test split, so two arms are compared example by example (predictions matched by
id; only ids both have count), which removes the examples' own difficulty from the comparison:

- McNemar's exact test when the metric is accuracy-like (every score 0 or 1) and each arm ran with one seed: only
  the discordant examples (one arm right, the other wrong) carry information; under "no difference" each is
  equally likely to go either way, so their split is Binomial(b + c, 1/2), tested two-sided.
- A paired bootstrap for graded scores (F1-type metrics): the test examples are resampled with replacement
  ``RESAMPLES`` times, the same examples for both arms, and the mean difference recomputed each time; the
  two-sided p-value is twice the share of resamples whose difference does not have the observed sign (at most 1).
- With seeds (``--seeds``: a run's ``repeats``) a hierarchical bootstrap: each resample draws one seed's run per arm
  at random as well as the examples, so training randomness is part of the spread, not only the test set's.

Resampling is seeded (``BOOTSTRAP_SEED``): the same runs give the same p-values on every render. Pure Python: the
advisor decides without numpy.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from enum import StrEnum

from advisor.arms import Arm
from harness.record import RunRecord
from harness.runstore import StoredRun

ALPHA = 0.05  # below this p-value two arms can be told apart
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


class PairedMethod(StrEnum):
    """How two arms were compared; results.json writes the value. Described in ``METHODS``."""

    MCNEMAR_EXACT = "mcnemar-exact"
    PAIRED_BOOTSTRAP = "paired-bootstrap"
    SEED_BOOTSTRAP = "hierarchical-bootstrap"


@dataclass(frozen=True)
class MethodInfo:
    title: str  # as the recommendation's sentences and the report name it
    description: str
    citation: str


METHODS: dict[PairedMethod, MethodInfo] = {
    PairedMethod.MCNEMAR_EXACT: MethodInfo(
        title="McNemar exact test",
        description=(
            "accuracy-like scores, one seed per arm: the examples one arm gets right and the other wrong, "
            "tested two-sided against an even split (binomial)"
        ),
        citation=(
            "McNemar (1947), Psychometrika 12(2); for comparing classifiers, Dietterich (1998), "
            "Neural Computation 10(7)"
        ),
    ),
    PairedMethod.PAIRED_BOOTSTRAP: MethodInfo(
        title="paired bootstrap",
        description=(
            f"graded scores: the test examples resampled {RESAMPLES:,} times, the same ones for both arms; p is "
            "twice the share of resamples in which the difference changes sign"
        ),
        citation="Koehn (2004), EMNLP; Berg-Kirkpatrick, Burkett and Klein (2012), EMNLP-CoNLL",
    ),
    PairedMethod.SEED_BOOTSTRAP: MethodInfo(
        title="hierarchical bootstrap over seeds and examples",
        description=(
            f"runs repeated with several seeds: {RESAMPLES:,} resamples, each drawing one seed's run per arm at "
            "random and the test examples with replacement, so training randomness counts as well as the test set"
        ),
        citation="Koehn (2004), EMNLP; seeds as a source of variance: Bouthillier et al. (2021), MLSys",
    ),
}


@dataclass
class ArmComparison:
    """One paired test: arm ``a`` (the best) against arm ``b`` on the test examples both scored."""

    a: str  # the arm's label, e.g. "full fine-tuning all-weights"
    b: str
    difference: float  # mean score of a minus b on the shared examples (over seeds: the seeds' mean)
    p_value: float  # two-sided
    method: PairedMethod
    n_examples: int  # shared test examples
    alpha: float = ALPHA

    @property
    def told_apart(self) -> bool:
        return self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        return "can be told apart" if self.told_apart else "cannot be told apart"

    @property
    def p_shown(self) -> str:
        """'0.21', '0.039', '< 0.001'."""
        return p_text(self.p_value).removeprefix("= ")

    @property
    def info(self) -> MethodInfo:
        return METHODS[self.method]

    def evidence(self) -> str:
        """'McNemar exact test, p = 0.21': the test and its p-value, for a sentence."""
        return f"{self.info.title}, p {p_text(self.p_value)}"


def cannot_be_told_apart(comparison: ArmComparison | None, alpha: float = ALPHA) -> bool:
    """Whether the test leaves the two arms' qualities indistinguishable at ``alpha``; False without a test
    (no shared predictions): then nothing is claimed either way."""
    return comparison is not None and comparison.p_value >= alpha


def p_text(p: float) -> str:
    """'= 0.21', '= 0.039', '< 0.001'."""
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.2f}" if p >= 0.1 else f"= {p:.3f}"


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs: twice the binomial tail of the smaller
    count under Binomial(b + c, 1/2), at most 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)  # integer arithmetic, then one division: exact for any n


def _two_sided(observed: float, resampled: list[float]) -> float:
    """Twice the share of resampled differences on the other side of zero from ``observed`` (zero counts as the
    other side), with the +1 correction so that a finite number of resamples never gives p = 0; at most 1."""
    if observed == 0:
        return 1.0
    other = sum(1 for d in resampled if (d <= 0 if observed > 0 else d >= 0))
    return min(1.0, 2 * (other + 1) / (len(resampled) + 1))


def paired_bootstrap(
    a: list[float], b: list[float], *, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> float:
    """Two-sided p-value of mean(a) - mean(b), ``a`` and ``b`` being two arms' scores on the same examples in the
    same order."""
    return seed_bootstrap([a], [b], resamples=resamples, seed=seed)


def seed_bootstrap(
    a_seeds: list[list[float]], b_seeds: list[list[float]], *, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> float:
    """Hierarchical paired bootstrap: each arm's scores per seed (same examples, same order in every list). Each
    resample draws a seed per arm, then the examples with replacement; the observed difference is between the
    seeds' means. With one seed per arm it is the plain paired bootstrap."""
    n = len(a_seeds[0])
    if n == 0:
        return 1.0
    observed = statistics.fmean(map(statistics.fmean, a_seeds)) - statistics.fmean(map(statistics.fmean, b_seeds))
    # the per-example differences of every pair of seeds, computed once
    differences = [[x - y for x, y in zip(sa, sb, strict=True)] for sa in a_seeds for sb in b_seeds]
    rng = random.Random(seed)
    resampled = [sum(rng.choices(rng.choice(differences), k=n)) / n for _ in range(resamples)]
    return _two_sided(observed, resampled)


def _scores(record: RunRecord) -> dict[str, float]:
    return {p.id: p.score for p in record.predictions}


def _seed_scores(run: StoredRun) -> list[dict[str, float]]:
    """Each finished seed's scores by example id (seeds without predictions left out)."""
    return [s for s in (_scores(r.record) for r in run.seed_runs if r.record.ok) if s]


def paired_test(a_label: str, a: StoredRun, b_label: str, b: StoredRun) -> ArmComparison | None:
    """``a`` against ``b`` on the test examples both scored (in every seed); None when they share none."""
    a_seeds, b_seeds = _seed_scores(a), _seed_scores(b)
    if not a_seeds or not b_seeds:
        return None
    shared = set.intersection(*(set(s) for s in [*a_seeds, *b_seeds]))
    ids = sorted(shared)
    if not ids:
        return None
    a_lists = [[s[i] for i in ids] for s in a_seeds]
    b_lists = [[s[i] for i in ids] for s in b_seeds]
    difference = statistics.fmean(map(statistics.fmean, a_lists)) - statistics.fmean(map(statistics.fmean, b_lists))
    if len(a_lists) > 1 or len(b_lists) > 1:
        method, p = PairedMethod.SEED_BOOTSTRAP, seed_bootstrap(a_lists, b_lists)
    elif all(x in (0.0, 1.0) for x in (*a_lists[0], *b_lists[0])):
        only_a = sum(1 for x, y in zip(a_lists[0], b_lists[0], strict=True) if x > y)
        only_b = sum(1 for x, y in zip(a_lists[0], b_lists[0], strict=True) if y > x)
        method, p = PairedMethod.MCNEMAR_EXACT, mcnemar_exact(only_a, only_b)
    else:
        method, p = PairedMethod.PAIRED_BOOTSTRAP, paired_bootstrap(a_lists[0], b_lists[0])
    return ArmComparison(a_label, b_label, difference, p, method, len(ids))


class PairedTests:
    """The paired tests of one analysis, each pair computed once (a bootstrap takes a fraction of a second)."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, int], ArmComparison | None] = {}

    def between(self, a: Arm, b: Arm) -> ArmComparison | None:
        key = (id(a), id(b))
        if key not in self._done:
            self._done[key] = paired_test(a.label, a.run.stored, b.label, b.run.stored)
        return self._done[key]

    def against_best(self, best: dict[str, Arm]) -> list[ArmComparison]:
        """The best arm (highest test quality among each group's best, as ``best_per_group`` ranks them: the
        cheaper first on equal quality) against each other group's best arm."""
        ranked = sorted(best.values(), key=lambda a: (-a.quality, a.total_usd if a.total_usd is not None else math.inf))
        if not ranked:
            return []
        top = ranked[0]
        return [c for c in (self.between(top, other) for other in ranked[1:]) if c is not None]
