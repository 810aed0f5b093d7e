"""Learning-curve fit: recovers known curves, and says when an extrapolation is not to be trusted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advisor.learning_curve import (
    CurvePoint,
    PowerLaw,
    base_variant,
    curve_points,
    fit_learning_curve,
    fit_power_law,
    learning_curves,
    quality_interval,
)
from harness.record import RunStatus
from harness.runstore import RunRow

SIZES = (50, 100, 200, 400, 800, 1600)


def points(curve: PowerLaw, sizes=SIZES, n_test=100_000, noise=None):
    qualities = curve.quality(sizes) + (0 if noise is None else noise)
    return [
        CurvePoint(examples=n, quality=float(q), n_test=n_test, variant=f"r8-{n}")
        for n, q in zip(sizes, qualities, strict=True)
    ]


@pytest.mark.parametrize("a, b, c", [(0.9, 2.0, 0.5), (0.75, 0.8, 0.3), (0.97, 10.0, 1.0)])
def test_recovers_known_parameters(a, b, c):
    fitted_a, fitted_b, fitted_c = fit_power_law(SIZES, PowerLaw(a, b, c).quality(SIZES))
    assert fitted_a[0] == pytest.approx(a, abs=2e-3)
    assert fitted_b[0] == pytest.approx(b, rel=2e-2)
    assert fitted_c[0] == pytest.approx(c, rel=5e-3)


def test_recovers_parameters_from_noisy_points():
    rng = np.random.default_rng(1)
    truth = PowerLaw(0.9, 2.0, 0.5)
    curve = fit_learning_curve("lora", "r8", points(truth, noise=rng.normal(0, 0.002, len(SIZES))), goal=0.85)
    assert curve.fit.a == pytest.approx(0.9, abs=0.02) and curve.fit.c == pytest.approx(0.5, rel=0.15)
    # truth: (2 / 0.05)^2 = 1,600 examples, inside the 90 % interval
    low, high = curve.goal_interval
    assert low <= truth.examples_for(0.85) <= high


def test_fits_many_curves_at_once():
    curves = np.array([PowerLaw(0.9, 2.0, 0.5).quality(SIZES), PowerLaw(0.7, 1.0, 0.25).quality(SIZES)])
    a, b, c = fit_power_law(SIZES, curves)
    assert a == pytest.approx([0.9, 0.7], abs=2e-3) and c == pytest.approx([0.5, 0.25], rel=5e-3)


def test_examples_for_inverts_the_curve():
    curve = PowerLaw(0.9, 2.0, 0.5)
    assert curve.examples_for(0.85) == pytest.approx(1600)
    assert curve.quality(curve.examples_for(0.8)) == pytest.approx(0.8)
    assert curve.examples_for(0.95) == math.inf


def test_the_ceiling_is_one():
    # a steep rise that would extrapolate past 1.0 unconstrained
    a, _, _ = fit_power_law([100, 200, 400], [0.5, 0.7, 0.85])
    assert a[0] <= 1.0


def test_well_measured_curve_within_range_is_reliable():
    curve = fit_learning_curve("lora", "r8", points(PowerLaw(0.9, 2.0, 0.5)), goal=0.8)
    assert curve.reliable and curve.warnings == []
    assert curve.examples_for_goal == pytest.approx(400, rel=0.01)


def test_too_few_points_is_no_fit():
    curve = fit_learning_curve("lora", "r8", points(PowerLaw(0.9, 2.0, 0.5), sizes=(100, 400)), goal=0.8)
    assert curve.fit is None and not curve.reliable
    assert curve.warnings[0].startswith("too few points: 2 training-set size(s) measured")


def test_flat_curve_is_flagged():
    flat = [CurvePoint(n, q, 128, "r8") for n, q in ((96, 0.50), (192, 0.52), (384, 0.51))]
    curve = fit_learning_curve("lora", "r8", flat, goal=0.8)
    assert not curve.reliable and any(
        w.startswith("flat curve: 0.500 at 96 examples, 0.510 at 384") for w in curve.warnings
    )
    assert curve.examples_for_goal == math.inf  # never reaches 0.8


def test_goal_far_beyond_the_data_is_flagged():
    curve = fit_learning_curve("lora", "r8", points(PowerLaw(0.99, 2.0, 0.5), sizes=(50, 100, 200)), goal=0.97)
    assert curve.examples_for_goal == pytest.approx(10_000, rel=0.02)
    assert any("50x beyond the largest measured training set (200 examples)" in w for w in curve.warnings)


def test_noisy_small_test_set_makes_a_wide_interval():
    curve = fit_learning_curve(
        "lora", "r8", points(PowerLaw(0.9, 2.0, 0.5), sizes=(96, 192, 384), n_test=128), goal=0.8
    )
    assert not curve.reliable and curve.unreachable_share > 0


def test_band_brackets_the_fit():
    curve = fit_learning_curve("lora", "r8", points(PowerLaw(0.9, 2.0, 0.5), n_test=500), goal=0.8)
    grid = np.array([100.0, 1000.0])
    low, high = curve.band(grid)
    assert np.all(low <= curve.fit.quality(grid) + 1e-9) and np.all(curve.fit.quality(grid) <= high + 1e-9)


def test_rows_group_by_arm_without_the_fraction_suffix():
    ok, failed = RunStatus.OK, RunStatus.FAILED
    rows = [
        RunRow("lora", v, ok, "", quality=q, train_examples=n, n_examples=128)
        for v, n, q in (("r8-25pct", 96, 0.6), ("r8", 384, 0.7), ("r8-50pct", 192, 0.65))
    ]
    rows += [
        RunRow("prompt", "4-shot", ok, "", quality=0.2),
        RunRow("lora", "r8-10pct", failed, "", train_examples=38),
        RunRow("full", "all-weights", ok, "", quality=0.7, train_examples=384),
    ]
    groups = curve_points(rows)
    assert [p.examples for p in groups[("lora", "r8")]] == [96, 192, 384]
    assert base_variant("all-weights-25pct") == "all-weights" and base_variant("r16") == "r16"
    # one training-set size is no curve at all
    assert [(c.strategy, c.variant) for c in learning_curves(rows, goal=0.8)] == [("lora", "r8")]


def test_wilson_interval():
    low, high = quality_interval(0.5, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert quality_interval(1.0, 50)[1] == 1.0 and quality_interval(0.0, 50)[0] == 0.0
