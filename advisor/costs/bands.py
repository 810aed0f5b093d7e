"""Bands around point estimates: how far the estimator has been from published measurements.

bench/published_validation.py --fit records, per compared quantity (memory, time, serving throughput, TTFT) and
training method, the 10th and 90th percentile of predicted / measured over the published runs
(data/catalog/estimate_bands.yaml). A prediction P of a quantity whose ratios ran from r_low to r_high puts the truth
in [P / r_high, P / r_low] for 80 % of those runs; a cost that scales with time (or with 1 / throughput) gets the
same band as that time.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import catalog

COMPONENTS = ("memory", "time", "serving_throughput", "ttft")
FITS, MAY_NOT_FIT, DOES_NOT_FIT = "fits", "may not fit", "does not fit"


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    source: str  # which spread: quantity, method, rows

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def ratio_spread(component: str, method: str | None = None) -> tuple[float, float, str]:
    """(10th, 90th percentile of predicted / measured, where from) for a quantity, by training method when the
    catalog has enough rows of it, else over all; (1, 1) when the quantity was never validated."""
    entries = catalog.estimate_bands().get(component, {})
    key = method if method in entries else "all"
    if key not in entries:
        return 1.0, 1.0, f"{component}: not validated (no band)"
    entry = entries[key]
    return float(entry["low"]), float(entry["high"]), f"{component}/{key}: p10-p90 of {entry['n']} published runs"


def truth_band(predicted: float, component: str, method: str | None = None) -> Band:
    """Where the measured value lay for 80 % of the published runs: [P / r_high, P / r_low] (a quantity whose
    ratio is predicted / measured, e.g. memory or time)."""
    low, high, source = ratio_spread(component, method)
    return Band(predicted / high, predicted / low, source)


def cost_band(predicted_usd: float, component: str, method: str | None = None) -> Band:
    """A cost proportional to a predicted time (training) or to 1 / predicted throughput (serving)."""
    low, high, source = ratio_spread(component, method)
    if component == "serving_throughput":  # true throughput = P / r, so cost = C x r
        return Band(predicted_usd * low, predicted_usd * high, source)
    return Band(predicted_usd / high, predicted_usd / low, source)


def fit_verdict(peak_band: Band, usable: float) -> str:
    """'fits' when even the band's top fits, 'does not fit' when even its bottom does not, else 'may not fit'."""
    if peak_band.high <= usable:
        return FITS
    if peak_band.low > usable:
        return DOES_NOT_FIT
    return MAY_NOT_FIT
