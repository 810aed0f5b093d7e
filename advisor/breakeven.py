"""Break-even: the monthly request volume at which a fine-tuned arm's cheaper requests pay back its one-time
cost (training + labelled data) against another arm, over a horizon of months.

What is compared is the MARGINAL serving cost, dollars per 1,000 requests: the replica-hours the requests
actually use, at the deployment GPU's price and the serving load factor (advisor.pricing's
``serve_usd_per_1k``) - what an autoscaled or shared deployment pays. An arm's total over the horizon at
V requests a month is

    total(V) = one_time + months * V / 1000 * usd_per_1k

and two arms' totals cross at

    V* = (one_time_tuned - one_time_other) / (months * (usd_per_1k_other - usd_per_1k_tuned) / 1000).

With dedicated, always-on GPUs an arm pays for whole replicas, ceil(V / capacity) * replica_month_usd:
below one replica's capacity every arm pays for the same single GPU, and a per-request saving is not
realised at all. ``provisioned_total`` is that curve, for the chart and the caveat beside the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from advisor.costs.serving import HOURS_PER_MONTH
from advisor.pricing import RunCosts
from advisor.wording import count, usd


@dataclass(frozen=True)
class ArmEconomics:
    label: str
    strategy: str
    one_time_usd: float  # training + labelled data
    usd_per_1k: float  # marginal serving cost
    replica_month_usd: float | None  # one always-on replica for a month; None when not priced
    endpoint: str | None = None  # an endpoint arm: the task's endpoints.NAME

    @classmethod
    def of(cls, costs: RunCosts, strategy: str, label: str, endpoint: str | None = None) -> ArmEconomics | None:
        """From a run's costs; None when its serving was not priced."""
        if costs.serve_usd_per_1k is None:
            return None
        per_hour = costs.serve_requests_per_gpu_hour
        # usd_per_1k = 1000 * replica $/h / requests per replica-hour, so a replica-hour costs this:
        replica_hour = costs.serve_usd_per_1k / 1000 * per_hour if per_hour else None
        return cls(
            label=label,
            strategy=strategy,
            one_time_usd=(costs.train_usd or 0.0) + (costs.data_usd or 0.0),
            usd_per_1k=costs.serve_usd_per_1k,
            replica_month_usd=replica_hour * HOURS_PER_MONTH if replica_hour else None,
            endpoint=endpoint,
        )

    @property
    def requests_per_replica_month(self) -> float | None:
        """What one always-on replica can serve in a month at the serving load factor."""
        if not self.replica_month_usd or not self.usd_per_1k:
            return None
        return self.replica_month_usd / self.usd_per_1k * 1000

    def marginal_total(self, monthly_requests: ArrayLike, months: float) -> np.ndarray:
        return self.one_time_usd + months * np.asarray(monthly_requests, dtype=float) / 1000 * self.usd_per_1k

    def provisioned_total(self, monthly_requests: ArrayLike, months: float) -> np.ndarray:
        """Whole always-on replicas (at least one while there is traffic); only for an arm whose replicas are
        priced (``replica_month_usd``)."""
        if self.replica_month_usd is None or self.requests_per_replica_month is None:
            raise ValueError(f"{self.label}: no price of an always-on replica")
        volume = np.asarray(monthly_requests, dtype=float)
        replicas = np.ceil(volume / self.requests_per_replica_month)
        return self.one_time_usd + months * replicas * self.replica_month_usd


@dataclass(frozen=True)
class BreakEven:
    tuned: ArmEconomics
    baseline: ArmEconomics
    months: float
    # "always": the tuned arm is cheaper at every volume; "never": at none; "above"/"below": cheaper
    # above/below ``monthly_requests``
    outcome: str
    monthly_requests: float | None
    basis: str = "marginal"  # marginal serving cost; "hosted": per-token baseline against whole tuned replicas
    from_requests: float | None = None  # hosted, "below": the volume where the self-hosted arm starts being cheaper

    @property
    def extra_one_time_usd(self) -> float:
        return self.tuned.one_time_usd - self.baseline.one_time_usd

    @property
    def saving_per_1k_usd(self) -> float:
        return self.baseline.usd_per_1k - self.tuned.usd_per_1k

    def sentence(self, expected_volume: float | None) -> str:
        if self.basis == "hosted":
            return self._hosted_sentence(expected_volume)
        t, b = self.tuned, self.baseline
        per_1k = f"{usd(t.usd_per_1k)} per 1k requests against {usd(b.usd_per_1k)}"
        if self.outcome == "always":
            return f"{t.label} is cheaper than {b.label} at every volume: no more up front and {per_1k}."
        if self.outcome == "never":
            return (
                f"{t.label} never pays back against {b.label}: {usd(self.extra_one_time_usd)} more up front "
                f"(training + data) and {per_1k}."
            )
        above = self.outcome == "above"
        expect = f" (the task expects {count(expected_volume)})" if expected_volume else ""
        return (
            f"Against {b.label}, {t.label} costs {per_1k}; {usd(abs(self.extra_one_time_usd))} "
            f"{'more' if above else 'less'} up front, so it is cheaper over {self.months:g} months "
            f"{'above' if above else 'only below'} {count(self.monthly_requests)} requests a month{expect}."
        )

    def _hosted_sentence(self, expected_volume: float | None) -> str:
        t, b = self.tuned, self.baseline
        replicas = (
            f"whole always-on replicas ({usd(t.replica_month_usd)}/month each, up to "
            f"{count(t.requests_per_replica_month or 0)} requests a month)"
        )
        up_front = f"{usd(b.one_time_usd)} up front" if b.one_time_usd else "nothing up front"
        hosted = f"{b.label} costs {usd(b.usd_per_1k)} per 1k requests, per token, with {up_front}"
        if self.outcome == "below":
            start = f" from {count(self.from_requests)}" if self.from_requests else ""
            return (
                f"{hosted}; self-hosting {t.label} on {replicas} costs less over {self.months:g} months only{start} "
                f"up to {count(self.monthly_requests)} requests a month (it costs less up front, but a replica costs "
                f"more than the hosted requests it carries); above that the hosted arm is cheaper."
            )
        if self.outcome == "never":
            return (
                f"{hosted}; self-hosting {t.label} on {replicas} never costs less over {self.months:g} months: a "
                f"replica costs more than the hosted requests it can carry."
            )
        if self.outcome == "always":
            return f"{hosted}; self-hosting {t.label} on {replicas} costs less at every volume."
        expect = f" (the task expects {count(expected_volume)})" if expected_volume else ""
        return (
            f"{hosted}; self-hosting {t.label} on {replicas} costs the same over {self.months:g} months at "
            f"{count(self.monthly_requests)} requests a month{expect}: below it the hosted arm is cheaper, above it "
            f"{t.label} (but for a stretch after each added replica, which is paid for whole)."
        )

    def total_at_crossing(self) -> float | None:
        """The tuned arm's total at the crossing volume (the chart's marker)."""
        if not self.monthly_requests:
            return None
        if self.basis == "hosted":
            return float(self.baseline.marginal_total(self.monthly_requests, self.months))
        return float(self.tuned.marginal_total(self.monthly_requests, self.months))

    def as_dict(self, expected_volume: float | None) -> dict:
        return {
            "basis": self.basis,
            "tuned": self.tuned.label,
            "baseline": self.baseline.label,
            "months": self.months,
            "outcome": self.outcome,
            "monthly_requests": self.monthly_requests,
            "extra_one_time_usd": self.extra_one_time_usd,
            "saving_per_1k_usd": self.saving_per_1k_usd,
            "sentence": self.sentence(expected_volume),
        }


def break_even(tuned: ArmEconomics, baseline: ArmEconomics, months: float) -> BreakEven:
    """Where the marginal totals of ``tuned`` and ``baseline`` over ``months`` cross."""
    extra = tuned.one_time_usd - baseline.one_time_usd
    saving = baseline.usd_per_1k - tuned.usd_per_1k
    if extra <= 0 and saving >= 0:
        return BreakEven(tuned, baseline, months, "always", 0.0)
    if extra > 0 and saving <= 0:
        return BreakEven(tuned, baseline, months, "never", None)
    volume = extra * 1000 / (months * saving)  # both positive ("above") or both negative ("below")
    return BreakEven(tuned, baseline, months, "above" if extra > 0 else "below", volume)


def hosted_break_even(self_hosted: ArmEconomics, hosted: ArmEconomics, months: float) -> BreakEven:
    """Where a self-hosted arm on whole always-on replicas starts costing less than a hosted per-token arm.

    With R a replica-month, C what it serves a month, p the hosted cost per request and D the self-hosted arm's
    extra one-time cost, at V requests a month on k = ceil(V / C) replicas:

        self-hosted(V) = one_time_self + months * k * R        hosted(V) = one_time_hosted + months * V * p

    so within the band of k replicas self-hosting costs less from V_k = (D + months * k * R) / (months * p). The
    first band where V_k fits under k * C is k0 = max(1, ceil(D / (months * (C * p - R)))), and the crossing is
    max(V_k0, (k0 - 1) * C). When C * p <= R a full replica costs at least the hosted requests it carries: it
    never pays back at scale, and is cheaper at all only when it costs less up front (D < 0), in the first
    K = floor(D / (months * (C * p - R))) bands: from V_1 up to K * C ("below")."""
    replica, capacity = self_hosted.replica_month_usd, self_hosted.requests_per_replica_month
    per_request = hosted.usd_per_1k / 1000
    extra = self_hosted.one_time_usd - hosted.one_time_usd
    if not replica or not capacity:
        return BreakEven(self_hosted, hosted, months, "never", None, basis="hosted")
    margin = capacity * per_request - replica  # what a full replica saves a month against hosting its requests
    if margin <= 0:
        if extra >= 0:
            return BreakEven(self_hosted, hosted, months, "never", None, basis="hosted")
        if margin == 0:
            return BreakEven(self_hosted, hosted, months, "always", 0.0, basis="hosted")
        bands = math.floor(extra / (months * margin))
        start = (extra + months * replica) / (months * per_request) if per_request > 0 else math.inf
        if bands < 1 or start > capacity:
            return BreakEven(self_hosted, hosted, months, "never", None, basis="hosted")
        return BreakEven(
            self_hosted, hosted, months, "below", bands * capacity, basis="hosted", from_requests=max(0.0, start)
        )
    k0 = max(1, math.ceil(extra / (months * margin)))
    volume = max((extra + months * k0 * replica) / (months * per_request), (k0 - 1) * capacity)
    if volume <= 0:
        return BreakEven(self_hosted, hosted, months, "always", 0.0, basis="hosted")
    return BreakEven(self_hosted, hosted, months, "above", volume, basis="hosted")


def dedicated_gpu_caveat(tuned: ArmEconomics, gpu: str | None) -> str | None:
    """What the marginal comparison leaves out: with always-on GPUs, one replica's capacity is paid for anyway."""
    if tuned.requests_per_replica_month is None:
        return None
    return (
        f"Break-even compares marginal serving cost (GPU-hours actually used, as on an autoscaled or shared "
        f"deployment). On dedicated always-on GPUs every arm pays for at least one {gpu or 'GPU'} "
        f"({usd(tuned.replica_month_usd)}/month), which serves up to {count(tuned.requests_per_replica_month)} "
        f"requests a month for {tuned.label}: below that, a cheaper request saves nothing."
    )


def volume_range(break_evens: list[BreakEven], monthly_requests: float | None) -> tuple[float, float]:
    """Monthly volumes a chart should span: a decade beyond the task's volume and every crossing, and at
    least 1,000 to 10 million requests a month."""
    anchors = [v for v in [monthly_requests, *(b.monthly_requests for b in break_evens)] if v and math.isfinite(v)]
    if not anchors:
        anchors = [1e6]
    low = 10 ** (math.floor(math.log10(min(anchors))) - 1)
    high = 10 ** (math.ceil(math.log10(max(anchors))) + 1)
    return min(low, 1e3), max(high, 1e7)
