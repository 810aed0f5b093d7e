"""report.html from results.json and the run records beside it (jinja2, autoescaped, self-contained: no external
assets, charts as inline SVG), and a PNG of it from headless Chromium.

    python -m advisor.report RESULTS_DIR [PNG]    screenshot RESULTS_DIR/report.html (default RESULTS_DIR/report.png)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from jinja2 import Environment, PackageLoader, Undefined, select_autoescape
from markupsafe import Markup

from harness.errors import UserError
from harness.runstore import read_json

from advisor import charts
from advisor.learning_curve import BOOTSTRAP_SAMPLES
from advisor.recommend import Analysis, analyse, curve_sentence
from advisor.wording import hardware_name, usd

WORST_ERRORS = 12
INPUT_CHARS = 400                 # a long QA context is cut here; the full text is in the run record
CHROMIUM = "/usr/bin/chromium"    # Debian's chromium package
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")


def load_results(results_dir: Path) -> dict:
    path = Path(results_dir) / "results.json"
    if not path.is_file():
        raise UserError(f"{path}: no results.json here; run `advisor compare TASK.yaml --out {results_dir}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); re-run advisor compare to rewrite it")


def _fmt(value, digits: int = 0, suffix: str = "") -> str:
    if value is None or isinstance(value, Undefined):
        return "—"
    if isinstance(value, float) and digits == 0:
        return f"{value:,.0f}{suffix}"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}{suffix}"
    return str(value)


def _usd(value) -> str:
    return "—" if isinstance(value, Undefined) else usd(value)


def _text(value) -> str:
    """A target or prediction as text: extraction targets are JSON objects."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("advisor", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters.update(fmt=_fmt, usd=_usd, text=_text)
    return env


def worst_errors(record: dict | None, limit: int = WORST_ERRORS) -> list[dict]:
    """The lowest-scoring predictions of one run, worst first."""
    wrong = [p for p in (record or {}).get("predictions") or [] if (p.get("score") or 0) < 1]
    wrong.sort(key=lambda p: (p.get("score") or 0, str(p.get("id"))))
    return [{**p, "input": p["input"] if len(p.get("input") or "") <= INPUT_CHARS
             else p["input"][:INPUT_CHARS] + "…"} for p in wrong[:limit]]


def confusions(record: dict | None, limit: int = 6) -> list[tuple[str, str, int]]:
    """Most frequent (expected, predicted) pairs among a classification run's errors."""
    pairs = Counter((_text(p.get("target")), "(unparsed)" if p.get("prediction") is None else _text(p["prediction"]))
                    for p in (record or {}).get("predictions") or [] if (p.get("score") or 0) < 1)
    return [(target, predicted, n) for (target, predicted), n in pairs.most_common(limit)]


def _charts(results: dict, analysis: Analysis) -> dict:
    task, goals = results["task"], results["task"].get("goals") or {}
    metric = task.get("metric", "quality")
    months = analysis.recommendation["horizon_months"]
    svg = {
        "quality_cost": charts.quality_vs_cost(
            analysis.arms, goals.get("quality"), analysis.chosen,
            "recommended" if analysis.recommendation["meets_goals"] else "closest", metric),
        "latency": charts.latency(analysis.arms, goals.get("p95_latency_ms"), analysis.latency_gated,
                                  hardware_name(results.get("device") or {})),
        "break_even": charts.break_even(analysis.economics, analysis.break_evens, months,
                                        goals.get("monthly_requests")),
        "learning_curves": [charts.learning_curve(c, metric, i) for i, c in enumerate(analysis.curves)],
    }
    # matplotlib escapes every text it writes; the SVG is markup we made, not data
    return {key: ([Markup(s) for s in value] if isinstance(value, list) else Markup(value) if value else None)
            for key, value in svg.items()}


def render(results: dict, results_dir: Path | None = None) -> str:
    """The report as one HTML string; ``results_dir`` (where the run records are) adds the chosen run's worst
    errors and the package versions it ran with."""
    analysis = analyse(results)
    chosen = analysis.chosen
    record = read_json(Path(results_dir) / chosen.record) if results_dir is not None and chosen and chosen.record else None
    svg = _charts(results, analysis)
    learning = [{"svg": chart, "sentence": curve_sentence(curve, results, analysis.arms)}
                for curve, chart in zip(analysis.curves, svg["learning_curves"])]
    classification = results["task"].get("kind") == "classification"
    return _environment().get_template("report.html.j2").render(
        r=results, runs=results.get("runs", []), c=results.get("costs"), rec=analysis.recommendation,
        analysis=analysis, arm_info={f"{a['strategy']}/{a['variant']}": a for a in analysis.recommendation["arms"]},
        charts=svg, learning=learning, hardware=hardware_name(results.get("device") or {}),
        goals=results["task"].get("goals") or {}, bootstrap_samples=BOOTSTRAP_SAMPLES,
        worst=worst_errors(record), confusions=confusions(record) if classification else [],
        chosen_record_found=record is not None, packages=((record or {}).get("meta_info") or {}).get("packages") or {})


def write_report(results_dir: Path) -> Path:
    results_dir = Path(results_dir)
    html = render(load_results(results_dir), results_dir)
    target = results_dir / "report.html"
    fd, tmp = tempfile.mkstemp(prefix=".report.", dir=results_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(tmp, target)
    return target


def chromium(html_path: Path, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file with a fresh profile; nothing is fetched from the network."""
    binary = shutil.which("chromium") or CHROMIUM
    if not Path(binary).exists():
        raise UserError(f"{CHROMIUM}: Chromium is not installed; install Debian's chromium package "
                        f"(apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="advisor-chromium-") as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags,
                               Path(html_path).resolve().as_uri()], capture_output=True, text=True, timeout=timeout)


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the report's first ``height`` pixels as a laptop browser shows it."""
    png_path = Path(png_path).resolve()
    png_path.unlink(missing_ok=True)  # so that a stale screenshot cannot pass for this one
    proc = chromium(html_path, f"--screenshot={png_path}", f"--window-size={width},{height}")
    if not png_path.is_file():
        raise UserError(f"{png_path}: Chromium wrote no screenshot (exit {proc.returncode}): "
                        f"{proc.stderr.strip()[-300:]}")
    return png_path


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    print(screenshot(folder / "report.html", Path(sys.argv[2]) if len(sys.argv) == 3 else folder / "report.png"))
