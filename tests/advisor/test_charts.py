"""Charts: inline SVG that carries the data's labels as escaped text, never as markup."""

from __future__ import annotations

import re

from advisor import charts
from advisor.recommend import analyse
from tests.advisor.factories import learning_curve_rows, make_results, make_row

EVIL = "<script>alert(1)</script>"


def analysis_with(label: str = "4-shot"):
    runs = [
        make_row("prompt", label, 0.5, data_usd=10.0, per_1k=0.02, p95=1200.0),
        make_row("rag", "top-4", 0.6, data_usd=960.0, per_1k=0.03),
        *learning_curve_rows(),
    ]
    return analyse(make_results(runs))


def all_charts(analysis) -> list[str]:
    return [
        charts.quality_vs_cost(analysis.arms, 0.8, analysis.chosen, "closest", "accuracy"),
        charts.latency(analysis.arms, 1000.0, False, "CPU AMD EPYC, 2 cores"),
        charts.break_even(analysis.economics, analysis.break_evens, 12, 1_000_000),
        *(charts.learning_curve(curve, "accuracy", i) for i, curve in enumerate(analysis.curves)),
    ]


def test_every_chart_is_inline_svg_with_its_labels_as_text():
    svgs = all_charts(analysis_with())
    assert len(svgs) == 4
    for svg in svgs:
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and "<?xml" not in svg
    quality, latency, break_even, curve = svgs
    assert "LoRA r8 (closest)" in quality and "goal 0.80" in quality
    assert "prompting 4-shot" in latency and "measured on CPU AMD EPYC, 2 cores" in latency
    assert "always-on replicas" in break_even and "task: 1,000,000/month" in break_even
    assert "90% bootstrap band" in curve and "LoRA r8" in curve


def test_labels_from_the_data_cannot_inject_markup():
    for svg in all_charts(analysis_with(EVIL)):
        assert "<script" not in svg
    quality = all_charts(analysis_with(EVIL))[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in quality


def test_dollar_signs_are_text_not_mathtext():
    latency = all_charts(analysis_with("$5 $per$ shot"))[1]
    assert "$5 $per$ shot" in latency


def test_charts_in_one_page_have_distinct_ids_and_resolve_their_references():
    svgs = all_charts(analysis_with())
    ids = [re.findall(r'\bid="([^"]+)"', svg) for svg in svgs]
    every_id = [i for chart in ids for i in chart]
    assert len(every_id) == len(set(every_id))
    for svg, chart_ids in zip(svgs, ids, strict=True):
        references = set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg))
        assert references and references <= set(chart_ids)


def test_rendering_is_deterministic():
    assert all_charts(analysis_with()) == all_charts(analysis_with())


def test_no_data_no_chart():
    analysis = analyse(make_results([make_row("prompt", "0-shot", 0.5, per_1k=None, per_month=None)]))
    assert charts.quality_vs_cost(analysis.arms, 0.8, analysis.chosen, "closest", "accuracy") is None
    assert charts.break_even(analysis.economics, analysis.break_evens, 12, 1_000_000) is None
    assert charts.latency([], None, False, "cpu") is None
