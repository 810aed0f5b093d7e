"""The report's charts as inline SVG strings, drawn with matplotlib (no pyplot state, nothing written to disk).

Text stays text (svg.fonttype 'none'), and matplotlib's SVG writer escapes it as XML: a label from the data
such as '<script>' arrives as '&lt;script&gt;'. Mathtext is off, so a '$' in a label is a dollar sign, not
the start of a formula. A fixed svg.hashsalt keeps the ids matplotlib makes stable from one render to the
next, and each chart's ids (and the references to them) get the chart's name as a prefix, so they stay
distinct when several SVGs share one HTML page.
"""

from __future__ import annotations

import io
import math
import re

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator

from advisor.arms import Arm
from advisor.breakeven import ArmEconomics, BreakEven, volume_range
from advisor.chart_labels import LabelledPoint, place_labels
from advisor.learning_curve import LearningCurve, point_interval
from advisor.wording import count, strategy_name, usd
from harness.runstore import RunRow
from harness.strategies import traits

GOAL_COLOUR = "#57606a"
LEGEND_GREY = "#57606a"
ENDPOINT_DASHES = ("--", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 1.5)))  # ":" is the always-on replicas' line
ON_WHITE = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}
OUTSIDE_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}
WIDTH_INCHES = 7.2


def colour(strategy: str) -> str:
    """The strategy's colour (its traits)."""
    return traits(strategy).colour


# every way an SVG names an id or points at one: id="x", url(#x), xlink:href="#x" / href="#x"
SVG_ID_REFERENCE = re.compile(r'(\bid="|url\(#|href="#)')


def _style():
    return matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "advisor",
            "text.parse_math": False,
            "font.size": 9,
            "font.family": "sans-serif",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e6e8eb",
            "grid.linewidth": 0.6,
            "legend.frameon": False,
        }
    )


def _figure(height: float):
    figure = Figure(figsize=(WIDTH_INCHES, height), layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure: Figure, name: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # inline SVG needs neither the XML declaration nor the doctype
    return SVG_ID_REFERENCE.sub(lambda match: f"{match.group(1)}{name}-", text)


def usd_tick(value: float) -> str:
    """An axis tick in dollars: no trailing zeros ($10, $0.1, $2.5, $0.00001), never scientific notation."""
    if value < 0:
        return "-" + usd_tick(-value)
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    decimals = max(0, 2 - math.floor(math.log10(value)))  # three significant digits, then the zeros go
    return "$" + f"{value:,.{decimals}f}".rstrip("0").rstrip(".")


_usd_axis = FuncFormatter(lambda value, _: usd_tick(value))
_usd_above_axis = FuncFormatter(lambda value, _: "$0" if value == 0 else ("+" if value > 0 else "") + usd_tick(value))
_thousands_axis = FuncFormatter(lambda value, _: f"{value:,.0f}")
_count_axis = FuncFormatter(  # compact, so that a log axis's labels do not run into each other: 100, 10k, 1M
    lambda value, _: next(
        (f"{value / size:g}{suffix}" for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")) if value >= size),
        f"{value:,.0f}",
    )
)


def shared_floor(arms: list[Arm]) -> float:
    """The serving every priced arm pays over the horizon (the cheapest arm's serving: on always-on GPUs, the
    replica floor), when it is larger than the differences between the arms' totals - it would squash them on the
    chart - else 0."""
    priced = [a for a in arms if a.total_usd is not None and a.run.costs.serve_usd_per_month is not None]
    if len(priced) < 2:
        return 0.0
    floor = min(a.months * (a.run.costs.serve_usd_per_month or 0.0) for a in priced)
    totals = [a.total_usd or 0.0 for a in priced]
    return floor if floor > 0 and floor > max(totals) - min(totals) else 0.0


def quality_vs_cost_figure(
    arms: list[Arm], goal: float | None, chosen: Arm | None, chosen_note: str, metric: str
) -> tuple[Figure, list[Text]] | None:
    """The figure of ``quality_vs_cost`` and its point labels (placed so that none collide)."""
    priced = sorted(((a.total_usd, a) for a in arms if a.total_usd is not None), key=lambda p: (p[0], p[1].quality))
    if not priced:
        return None
    floor = shared_floor([arm for _, arm in priced])
    points = [(total - floor, arm) for total, arm in priced]
    with _style():
        figure, ax = _figure(3.8)
        for x, arm in points:
            low, high = arm.interval
            ax.errorbar(
                x,
                arm.quality,
                yerr=[[arm.quality - low], [high - arm.quality]],
                fmt="o",
                color=colour(arm.strategy),
                ecolor=colour(arm.strategy),
                elinewidth=1,
                capsize=2,
                markersize=9 if arm is chosen else 6,
                markeredgecolor="black" if arm is chosen else "none",
            )
        avoid = []
        if goal is not None:
            ax.axhline(goal, color=GOAL_COLOUR, linestyle="--", linewidth=1)
            goal_text = ax.annotate(
                f"goal {goal:.2f}",
                (0, goal),
                xycoords=("axes fraction", "data"),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=8,
                color=GOAL_COLOUR,
            )
            avoid.append(goal_text)
        xs = [x for x, _ in points]
        if min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # $100, $200, $500: a label every third
        ax.xaxis.set_major_formatter(_usd_above_axis if floor else _usd_axis)
        ax.set_ylim(-0.04, 1.04)  # room for the label of a point at 0 or 1
        months = f"{priced[0][1].months:g} months"
        if floor:
            what = "serving" if any(arm.hosted for _, arm in points) else "GPU"
            ax.set_xlabel(
                f"total cost over {months} above the {usd(floor)} {what} floor that every arm pays\n"
                "(each arm's training + data + serving beyond the floor; the floor: the cheapest arm's serving)"
            )
        else:
            ax.set_xlabel(f"total cost over {months}: training + data + serving")
        ax.set_ylabel(f"{metric} (95% interval)")
        # the recommended arm's label first: it gets the best place
        order = sorted(points, key=lambda p: p[1] is not chosen)
        labels = place_labels(
            ax,
            [
                LabelledPoint(
                    x,
                    arm.quality,
                    arm.label + (f" ({chosen_note})" if arm is chosen else ""),
                    *arm.interval,
                    marker_points=9 if arm is chosen else 6,
                )
                for x, arm in order
            ],
            avoid=tuple(avoid),
            hlines=() if goal is None else (goal,),
        )
        return figure, list(labels)


def quality_vs_cost(
    arms: list[Arm], goal: float | None, chosen: Arm | None, chosen_note: str, metric: str
) -> str | None:
    """Quality (with its 95 % interval) against total cost over the horizon, one point per priced arm; when every
    arm pays a shared serving floor larger than their differences, the cost above it (the axis says so)."""
    with _style():
        drawn = quality_vs_cost_figure(arms, goal, chosen, chosen_note, metric)
        return None if drawn is None else _svg(drawn[0], "quality-vs-cost")


def latency(arms: list[Arm], goal_ms: float | None, goal_applied: bool, hardware: str) -> str | None:
    """p50 and p95 latency per arm at batch size 1, on the hardware it was measured on."""
    timed = [a for a in arms if a.latency_ms_p95]
    if not timed:
        return None
    with _style():
        figure, ax = _figure(0.5 + 0.32 * len(timed))
        y = np.arange(len(timed))
        ax.barh(
            y, [a.latency_ms_p95 for a in timed], color=[colour(a.strategy) for a in timed], alpha=0.35, label="p95"
        )
        ax.barh(
            y,
            [a.latency_ms_p50 or 0 for a in timed],
            color=[colour(a.strategy) for a in timed],
            label="p50",
            height=0.45,
        )
        ax.set_yticks(y, [a.label for a in timed])
        ax.invert_yaxis()
        goal_line = []
        if goal_ms and goal_applied:
            goal_line = [
                ax.axvline(goal_ms, color=GOAL_COLOUR, linestyle="--", linewidth=1, label=f"p95 goal {goal_ms:,.0f} ms")
            ]
        ax.set_xlabel(f"ms per request, batch size 1, measured on {hardware}")
        ax.xaxis.set_major_formatter(_thousands_axis)
        # grey swatches (each bar has its arm's colour), above the bars so that it never covers one
        handles = [Patch(color=LEGEND_GREY, alpha=0.35, label="p95"), Patch(color=LEGEND_GREY, label="p50"), *goal_line]
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1, 1), ncol=len(handles), fontsize=8)
        ax.grid(axis="y", visible=False)
        return _svg(figure, "latency")


def break_even(
    economics: list[ArmEconomics], pairs: list[BreakEven], months: float, expected_volume: float | None
) -> str | None:
    """Total cost over the horizon against monthly volume: marginal serving (solid) and whole always-on
    replicas (dotted), with the crossings marked."""
    if len(economics) < 2:
        return None
    low, high = volume_range(pairs, expected_volume)
    volumes = np.geomspace(low, high, 400)
    with _style():
        figure, ax = _figure(3.8)
        dashes = iter(ENDPOINT_DASHES * len(economics))
        for arm in economics:
            ax.plot(
                volumes,
                arm.marginal_total(volumes, months),
                color=colour(arm.strategy),
                linewidth=1.8,
                # an endpoint arm beside the same strategy run locally: dashed, each endpoint its own dashes
                linestyle=next(dashes) if arm.endpoint else "-",
                label=arm.label,
            )
            if arm.replica_month_usd:
                ax.plot(
                    volumes,
                    arm.provisioned_total(volumes, months),
                    color=colour(arm.strategy),
                    linewidth=1,
                    linestyle=":",
                )
        for pair in pairs:
            total = pair.total_at_crossing()
            if pair.monthly_requests and total is not None:
                ax.plot([pair.monthly_requests], [total], "o", color="black", markersize=5)
                ax.annotate(
                    f"{count(pair.monthly_requests)}/month",
                    (pair.monthly_requests, total),
                    xytext=(5, -12),
                    textcoords="offset points",
                    fontsize=8,
                    bbox=ON_WHITE,  # readable where it crosses a line
                )
        if expected_volume:
            ax.axvline(expected_volume, color=GOAL_COLOUR, linestyle="--", linewidth=1)
            ax.annotate(
                f"task: {count(expected_volume)}/month",
                (expected_volume, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
                fontsize=8,
                color=GOAL_COLOUR,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(_count_axis)
        ax.yaxis.set_major_formatter(_usd_axis)
        ax.set_xlabel("requests per month")
        ax.set_ylabel(f"total over {months:g} months")
        ax.plot([], [], color=GOAL_COLOUR, linestyle=":", linewidth=1, label="always-on replicas")
        ax.legend(fontsize=8, **OUTSIDE_RIGHT)  # beside the plot: the lines cross every corner of it
        return _svg(figure, "break-even")


def load_test(rows: list[RunRow], goal_ms: float | None) -> str | None:
    """Latency against throughput of every endpoint run's load test: one point per concurrency level."""
    tested = [row for row in rows if row.load_test]
    if not tested:
        return None
    with _style():
        figure, ax = _figure(3.6)
        for i, row in enumerate(tested):
            levels = sorted(row.load_test or [], key=lambda level: level.concurrency)
            x = [level.requests_per_s for level in levels]
            label = f"{strategy_name(row.strategy)} {row.variant}"
            marker = "osD^v<>"[i % 7]  # runs of one strategy share its colour: the marker tells them apart
            for attr, style, suffix in (("latency_ms_p50", "-", "p50"), ("latency_ms_p95", "--", "p95")):
                y = [getattr(level, attr) or np.nan for level in levels]
                ax.plot(
                    x, y, style, marker=marker, color=colour(row.strategy), linewidth=1.2, label=f"{label} {suffix}"
                )
            for level in levels:
                ax.annotate(
                    f"×{level.concurrency}",
                    (level.requests_per_s, level.latency_ms_p95 or level.latency_ms_p50 or 0),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=7,
                )
        if goal_ms:
            ax.axhline(goal_ms, color=GOAL_COLOUR, linestyle=":", linewidth=1, label=f"p95 goal {goal_ms:,.0f} ms")
        ax.set_xlabel("requests per second (concurrency levels of the load test)")
        ax.set_ylabel("end-to-end latency, ms")
        ax.yaxis.set_major_formatter(_thousands_axis)
        ax.legend(fontsize=7, loc="best")
        return _svg(figure, "load-test")


def learning_curve(curve: LearningCurve, metric: str, index: int = 0) -> str:
    """Measured points (95 % intervals; with seeds, their mean, the interval widened by their spread, and each
    seed's run as a dash), the fitted curve, its 90 % bootstrap band, the goal and the estimate."""
    sizes = [p.examples for p in curve.points]
    right = max(sizes) * 3.0
    if curve.examples_for_goal and math.isfinite(curve.examples_for_goal):
        right = max(right, min(curve.examples_for_goal * 1.5, max(sizes) * 100))
    with _style():
        figure, ax = _figure(3.4)
        tint = colour(curve.strategy)
        if curve.fit is not None:
            grid = np.geomspace(min(sizes) / 2, right, 200)
            band_low, band_high = curve.band(grid)
            ax.fill_between(grid, band_low, band_high, color=tint, alpha=0.15, linewidth=0, label="90% bootstrap band")
            ax.plot(
                grid,
                curve.fit.quality(grid),
                color=tint,
                linewidth=1.6,
                label=f"fit: {curve.fit.a:.2f} − {curve.fit.b:.3g}·n^−{curve.fit.c:.2f}",
            )
        seeded = any(point.seeds > 1 for point in curve.points)
        for point in curve.points:
            low, high = point_interval(point)  # with seeds: the test set's interval widened by the seeds' spread
            ax.errorbar(
                point.examples,
                point.quality,
                yerr=[[point.quality - low], [high - point.quality]],
                fmt="o",
                color="black",
                markersize=4,
                capsize=2,
                elinewidth=1,
            )
            if point.seeds > 1:  # each seed's run, beside the mean
                ax.plot(
                    [point.examples] * point.seeds,
                    point.seed_qualities,
                    "_",
                    color=tint,
                    markersize=8,
                    markeredgewidth=1.2,
                )
        ax.plot(
            [],
            [],
            "o",
            color="black",
            markersize=4,
            label="measured: mean over seeds (95% interval with the seed spread)"
            if seeded
            else "measured (95% interval)",
        )
        if seeded:
            ax.plot([], [], "_", color=tint, markersize=8, markeredgewidth=1.2, label="each seed")
        if curve.goal is not None:
            ax.axhline(curve.goal, color=GOAL_COLOUR, linestyle="--", linewidth=1, label=f"goal {curve.goal:.2f}")
            if curve.examples_for_goal and math.isfinite(curve.examples_for_goal) and curve.examples_for_goal <= right:
                ax.axvline(curve.examples_for_goal, color=tint, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_count_axis)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("training examples")
        ax.set_ylabel(metric)
        state = "extrapolation unreliable" if curve.warnings else "fit"
        ax.set_title(f"{strategy_name(curve.strategy)} {curve.variant} — {state}", fontsize=9, loc="left")
        ax.legend(fontsize=8, **OUTSIDE_RIGHT)  # beside the plot: the curve, the band and the goal line are inside
        return _svg(figure, f"learning-curve-{index}")
