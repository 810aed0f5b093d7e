"""An arm: one finished run, priced over the horizon and checked against the goals; and the best arm of each group
(a strategy on the local model, or on one endpoint)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from advisor.learning_curve import Z_95, quality_interval
from advisor.pricing import PricedRun, ServeBasis
from advisor.wording import strategy_name, usd
from harness.strategies import StrategyTraits
from harness.strategies.base import Rung


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
        return self.run.costs.serve_basis is ServeBasis.PER_TOKEN

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
        """95 % interval of the quality: the test set's sampling error (Wilson) and, with seeds, training
        randomness. The seeds' mean is a mean over the same test examples, so the Wilson interval of n examples
        still bounds its sampling error; the seeds add their spread: the standard error of their mean,
        stdev / sqrt(seeds). The two are independent, so their variances add: each side of the Wilson interval is
        widened in quadrature by 1.96 standard errors (a normal approximation: with two or three seeds the
        standard error is itself rough, so read the interval as a floor). One seed: the Wilson interval alone."""
        low, high = quality_interval(self.quality, self.n_examples)
        seeds = self.run.stored.seed_qualities() if self.run.stored.repeats else []
        if len(seeds) < 2:
            return low, high
        spread = Z_95 * statistics.stdev(seeds) / math.sqrt(len(seeds))
        q = self.quality
        return max(0.0, q - math.hypot(q - low, spread)), min(1.0, q + math.hypot(high - q, spread))

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


def best_per_group(arms: list[Arm]) -> dict[str, Arm]:
    """The best arm of each strategy on the local model, and of each strategy on each endpoint."""
    best: dict[str, Arm] = {}
    for arm in sorted(arms, key=lambda a: (-a.quality, a.total_usd if a.total_usd is not None else math.inf)):
        best.setdefault(arm.group, arm)
    return best


def best_tuned(best: dict[str, Arm], *, with_retrieval: bool | None = None) -> Arm | None:
    """The best arm that trains; ``with_retrieval`` True (False): only one served with (without) retrieval."""
    return max(
        (a for a in best.values() if a.traits.trains and (with_retrieval is None or retrieves(a) == with_retrieval)),
        key=lambda a: a.quality,
        default=None,
    )


def retrieves(arm: Arm) -> bool:
    """Served with context retrieved for each request (rag, and the fine-tuned +rag arms)."""
    return arm.traits.serving_method == "rag"


def best_on_rung(best: dict[str, Arm], rung: Rung) -> Arm | None:
    return max((a for a in best.values() if a.traits.ladder_rank == rung), key=lambda a: a.quality, default=None)
