"""The end of a compare, and ``advisor report``: price the runs, recommend, and write results.json and report.html,
each once, from the run records (``publish``). The report is jinja2, autoescaped, self-contained (no external
assets, charts as inline SVG); ``screenshot`` makes a PNG of it with headless Chromium.

    python -m advisor.report RESULTS_DIR [PNG]    screenshot RESULTS_DIR/report.html (default RESULTS_DIR/report.png)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from advisor import charts
from advisor.costs.data_cost import DataCostConfig, data_cost_config
from advisor.ladder import curve_sentence
from advisor.learning_curve import BOOTSTRAP_SAMPLES
from advisor.plan_report import PlanBesideActual, plan_beside_actual
from advisor.pricing import PricedRun, price
from advisor.recommend import Analysis, analyse
from advisor.self_check import annotate
from advisor.wording import hardware_name, usd
from harness.errors import UserError
from harness.io import atomic_write_text
from harness.record import Prediction, RunRecord
from harness.runstore import Comparison, load_comparison, write_results
from harness.typedjson import to_jsonable
from harness.units import GIB

WORST_ERRORS = 12
INPUT_CHARS = 400  # a long QA context is cut here; the full text is in the run record
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _fmt(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and digits == 0:
        return f"{value:,.0f}{suffix}"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}{suffix}"
    return str(value)


def _gib(value: float | None, digits: int = 2) -> str:
    """Bytes in GiB (2^30 bytes, harness.units)."""
    return "—" if value is None else f"{value / GIB:,.{digits}f}"


def _text(value: Any) -> str:
    """A target or prediction as text: extraction targets are JSON objects."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _setting(value: Any) -> str:
    """A tuned setting's value as the task file would write it: 0.0003, 8, none."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value)


def _environment() -> Environment:
    # StrictUndefined: a misspelt name in the template fails the render instead of showing a dash
    env = Environment(
        loader=PackageLoader("advisor", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
    )
    env.filters.update(fmt=_fmt, usd=usd, text=_text, gib=_gib, setting=_setting)
    return env


def worst_errors(record: RunRecord | None, limit: int = WORST_ERRORS) -> list[Prediction]:
    """The lowest-scoring predictions of one run, worst first (long inputs cut)."""
    wrong = sorted((p for p in (record.predictions if record else []) if p.score < 1), key=lambda p: (p.score, p.id))
    return [
        p if len(p.input) <= INPUT_CHARS else dataclasses.replace(p, input=p.input[:INPUT_CHARS] + "…")
        for p in wrong[:limit]
    ]


def confusions(record: RunRecord | None, limit: int = 6) -> list[tuple[str, str, int]]:
    """Most frequent (expected, predicted) pairs among a classification run's errors."""
    pairs = Counter(
        (_text(p.target), "(unparsed)" if p.prediction is None else _text(p.prediction))
        for p in (record.predictions if record else [])
        if p.score < 1
    )
    return [(target, predicted, n) for (target, predicted), n in pairs.most_common(limit)]


def _charts(analysis: Analysis) -> dict[str, Any]:
    comparison = analysis.pricing.comparison
    goals, metric = comparison.task.goals, comparison.task.metric
    months = analysis.recommendation.horizon_months
    svg: dict[str, Any] = {
        "quality_cost": charts.quality_vs_cost(
            analysis.arms,
            goals.quality,
            analysis.chosen,
            "recommended" if analysis.recommendation.meets_goals else "closest",
            metric,
        ),
        "latency": charts.latency(
            analysis.arms, goals.p95_latency_ms, analysis.latency_gated, hardware_name(comparison.device)
        ),
        "break_even": charts.break_even(analysis.economics, analysis.break_evens, months, goals.monthly_requests),
        "load_test": charts.load_test([run.row for run in analysis.pricing.runs], goals.p95_latency_ms),
        "learning_curves": [charts.learning_curve(c, metric, i) for i, c in enumerate(analysis.curves)],
    }
    # matplotlib escapes every text it writes; the SVG is markup we made, not data
    return {
        key: ([Markup(s) for s in value] if isinstance(value, list) else Markup(value) if value else None)
        for key, value in svg.items()
    }


def self_check_table(runs: list[PricedRun]) -> dict[str, Any]:
    """The "Our model vs this run" table from the records' checks: a (row, check) per checked run; below it, each
    memory basis and note once, with the runs it applies to ("every run" when all)."""
    checked = [(run.row, run.record.self_check) for run in runs if run.record.self_check]
    said: dict[str, list[str]] = {}
    for row, check in checked:
        for text in (f"measured memory: {check.memory_basis}", *check.notes):
            said.setdefault(text, []).append(f"{row.strategy} {row.variant}")
    notes = [(text, "every run" if len(who) == len(checked) else ", ".join(who)) for text, who in said.items()]
    return {"rows": checked, "notes": notes}


def split_sizes(comparison: Comparison) -> dict[str, int]:
    """Examples in each split: train (what the runs trained on or drew from), validation, test."""
    if comparison.splits is not None:
        splits = comparison.splits
        return {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)}
    task = comparison.task
    return {"train": task.n_train, "validation": task.n_validation, "test": task.n_test}


def validation_choices(runs: list[PricedRun]) -> list[PricedRun]:
    """Each arm's row on all of train (where its setting was chosen): the learning-curve rows use that setting."""
    return [run for run in runs if run.row.data_fraction is None or run.row.data_fraction >= 1]


def seed_results(run: PricedRun) -> list[tuple[int, float | None, str | None]]:
    """Each seed's run of a row: (seed, test quality or None, error or None), the base seed's first."""
    results = []
    for r in run.stored.seed_runs:
        record = r.record
        results.append((record.run_info.seed, record.eval_info.quality if record.eval_info else None, record.error))
    return results


def render(analysis: Analysis, plan: PlanBesideActual | None = None) -> str:
    """The report as one HTML string; ``plan``: the plan beside what it took (default: derived here)."""
    pricing, chosen = analysis.pricing, analysis.chosen
    comparison = pricing.comparison
    plan = plan or plan_beside_actual(comparison, analysis.cost)
    record = chosen.run.record if chosen else None
    svg = _charts(analysis)
    learning = [
        {"svg": chart, "sentence": curve_sentence(curve, pricing, analysis.arms)}
        for curve, chart in zip(analysis.curves, svg["learning_curves"], strict=True)
    ]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            r=comparison,
            runs=pricing.runs,
            endpoint_runs=[run for run in pricing.runs if run.row.endpoint],
            checks=self_check_table(pricing.runs),
            splits=split_sizes(comparison),
            choices=validation_choices(pricing.runs),
            cost=analysis.cost,
            plan=plan,
            seed_results=seed_results,
            c=pricing.assumptions,
            rec=analysis.recommendation,
            analysis=analysis,
            charts=svg,
            cost_floor=charts.shared_floor(analysis.arms),  # the quality-against-cost chart's x starts there
            learning=learning,
            hardware=hardware_name(comparison.device),
            goals=comparison.task.goals,
            bootstrap_samples=BOOTSTRAP_SAMPLES,
            worst=worst_errors(record),
            confusions=confusions(record) if comparison.task.kind == "classification" else [],
            packages=record.meta_info.packages if record and record.meta_info else {},
            hosts=sorted({run.meta_info.host for run in _records(comparison) if run.meta_info and run.meta_info.host}),
        )
    )


def _records(comparison: Comparison) -> list[RunRecord]:
    """Every run of the comparison: rows, seed repeats and trials."""
    return [stored.record for row in comparison.runs for stored in row.all_runs()]


def publish(out_dir: Path, comparison: Comparison, config: DataCostConfig) -> tuple[Analysis, Path]:
    """Check each run against the estimator (``advisor.self_check``: written into its record, which the report and
    results.json then show); price, recommend and render once, in memory; then write results.json (with costs and
    the recommendation and the paired tests between arms) and report.html, once each."""
    annotate(out_dir, comparison)
    pricing = price(comparison, config)
    analysis = analyse(pricing)
    plan = plan_beside_actual(comparison, analysis.cost)  # re-derived from the task file, when it is reachable
    html = render(analysis, plan)
    write_results(
        out_dir,
        comparison,
        row_costs=[to_jsonable(run.costs) for run in pricing.runs],
        # the costs block: the assumptions, what the comparison itself cost (every run, trials and seeds), the plan
        costs={
            **(to_jsonable(pricing.assumptions) or {}),
            "comparison": to_jsonable(analysis.cost),
            "plan": plan.totals(),  # advisor plan's totals on the deployment GPU, beside the comparison's
        },
        recommendation=analysis.recommendation,
        comparisons=analysis.comparisons,
        tables=True,  # results.csv and predictions.parquet beside it
    )
    report = Path(out_dir) / "report.html"
    atomic_write_text(report, html)
    return analysis, report


def republish(out_dir: Path) -> tuple[Analysis, Path]:
    """``advisor report``: the same from the records a compare left in ``out_dir``, running nothing."""
    comparison = load_comparison(out_dir)
    config = data_cost_config(comparison.task.data_cost, file=comparison.task.path)
    return publish(out_dir, comparison, config)


def chromium(html_path: Path, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local file with a fresh profile; nothing is fetched from the network."""
    binary = shutil.which("chromium") or CHROMIUM
    if not Path(binary).exists():
        raise UserError(
            f"{CHROMIUM}: Chromium is not installed; install Debian's chromium package (apt-get install chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="advisor-chromium-") as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, Path(html_path).resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the report's first ``height`` pixels as a laptop browser shows it."""
    png_path = Path(png_path).resolve()
    png_path.unlink(missing_ok=True)  # so that a stale screenshot cannot pass for this one
    proc = chromium(html_path, f"--screenshot={png_path}", f"--window-size={width},{height}")
    if not png_path.is_file():
        raise UserError(
            f"{png_path}: Chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
        )
    return png_path


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    print(screenshot(folder / "report.html", Path(sys.argv[2]) if len(sys.argv) == 3 else folder / "report.png"))
