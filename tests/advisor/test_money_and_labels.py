"""The report reads at a glance: money never in scientific notation, the quality-against-cost chart shows the
arms' differences above a shared serving floor, and its point labels never collide (on the committed reports'
own data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advisor import charts
from advisor.chart_labels import collisions, label_box, renderer
from advisor.costs.data_cost import data_cost_config
from advisor.pricing import price
from advisor.recommend import Analysis, analyse
from advisor.report import render
from advisor.wording import usd
from harness.runstore import load_comparison
from tests.advisor.factories import make_results, make_row

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted(p.parent for p in (ROOT / "reports").glob("*/results.json"))
SCIENTIFIC_MONEY = re.compile(r"\$\s*[-+]?\d[\d,]*(\.\d+)?[eE][-+]?\d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0, "$0"),
        (0.0, "$0"),
        (2.7e-05, "$0.000027"),
        (7.6e-05, "$0.000076"),
        (0.00066, "$0.00066"),
        (0.0042, "$0.0042"),
        (0.000999, "$0.001"),  # two significant digits, the zeros that carry none dropped
        (0.099, "$0.099"),
        (0.0999, "$0.10"),
        (0.1, "$0.10"),
        (12.345, "$12.35"),
        (99.999, "$100"),
        (734.4, "$734"),
        (9773.4, "$9,773"),
        (1_234_567.8, "$1,234,568"),
        (5e-07, "< $0.000001"),
        (1e-12, "< $0.000001"),
        (-2.7e-05, "-$0.000027"),
        (-9773.4, "-$9,773"),
        (-1e-9, "> -$0.000001"),
    ],
)
def test_usd_uses_fixed_decimals(value, text):
    assert usd(value) == text


@pytest.mark.parametrize("exponent", range(-12, 10))
def test_usd_is_never_scientific_at_any_scale(exponent):
    for mantissa in (1.0, 2.7, 9.99):
        for sign in (1, -1):
            text = usd(sign * mantissa * 10.0**exponent)
            assert "e" not in text.lower() and not SCIENTIFIC_MONEY.search(text), text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "$0"), (10, "$10"), (1, "$1"), (0.1, "$0.1"), (0.01, "$0.01"), (2.5, "$2.5"), (1e-5, "$0.00001")]
    + [(1000, "$1,000"), (100_000, "$100,000"), (-200, "-$200")],
)
def test_axis_ticks_carry_no_trailing_zeros(value, text):
    assert charts.usd_tick(value) == text


def test_a_tiny_cost_reads_in_fixed_decimals_in_the_report():
    html = render(
        analyse(
            make_results(
                [
                    make_row("prompt", "0-shot", 0.5, per_1k=2.7e-05, per_month=0.027),
                    make_row("lora", "r8", 0.9, train_usd=7.6e-05, per_1k=1.1e-05, per_month=0.011, data_usd=960.0),
                ]
            )
        )
    )
    assert not SCIENTIFIC_MONEY.search(html)
    assert "$0.000027" in html and "$0.000076" in html


def committed(folder: Path) -> Analysis:
    comparison = load_comparison(folder)
    return analyse(price(comparison, data_cost_config(comparison.task.data_cost, file=comparison.task.path)))


def quality_chart(analysis: Analysis):
    task = analysis.pricing.comparison.task
    note = "recommended" if analysis.recommendation.meets_goals else "closest"
    with charts._style():
        drawn = charts.quality_vs_cost_figure(analysis.arms, task.goals.quality, analysis.chosen, note, task.metric)
    assert drawn is not None
    return drawn


def test_the_committed_reports_exist():
    assert {p.name for p in COMMITTED} >= {"support-intents", "support-intents-endpoints", "quillfeather-handbook"}


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda p: p.name)
def test_no_two_point_labels_collide_on_the_committed_reports(folder):
    analysis = committed(folder)
    figure, labels = quality_chart(analysis)
    assert len(labels) == len([a for a in analysis.arms if a.total_usd is not None])
    assert collisions(labels, figure) == []
    draw = renderer(figure)
    frame = figure.axes[0].get_window_extent(draw)
    for label in labels:  # and each stays inside the plot
        box = label_box(label, draw, pad=0)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, label


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda p: p.name)
def test_committed_reports_print_no_money_in_scientific_notation(folder):
    assert not SCIENTIFIC_MONEY.search((folder / "report.html").read_text())


def test_a_shared_gpu_floor_is_taken_off_the_cost_axis_and_named():
    analysis = committed(ROOT / "reports" / "support-intents")
    floor = charts.shared_floor(analysis.arms)
    totals = [a.total_usd for a in analysis.arms if a.total_usd is not None]
    assert floor > max(totals) - min(totals) > 0  # every arm pays the always-on replica: it dwarfs the differences
    figure, _ = quality_chart(analysis)
    ax = figure.axes[0]
    assert f"above the {usd(floor)} GPU floor" in ax.get_xlabel()
    low, high = ax.get_xlim()
    above = [total - floor for total in totals]
    assert low <= min(above) and max(above) <= high  # every arm on the axis
    if ax.get_xscale() == "linear":  # the differences fill the axis
        assert low < 0 and high < (max(totals) - min(totals)) * 1.2
    else:  # spread over more than a decade above the floor: a log axis, a decade of room at most
        assert low > 0 and high < max(above) * 10


def test_without_a_dominant_floor_the_axis_is_the_total():
    # a hosted arm pays per token: no floor larger than the differences between arms
    analysis = analyse(
        make_results(
            [
                make_row("prompt", "0-shot", 0.5, per_month=10.0),
                make_row("lora", "r8", 0.9, train_usd=5.0, per_month=737.0, data_usd=960.0),
            ]
        )
    )
    assert charts.shared_floor(analysis.arms) == 0
    figure, _ = quality_chart(analysis)
    assert figure.axes[0].get_xlabel().startswith("total cost over")
