"""report.html from results.json only (jinja2, autoescaped, self-contained: no external assets)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, Undefined, select_autoescape

from harness.errors import UserError


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
    if value is None or isinstance(value, Undefined):
        return "—"
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.2g}"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("advisor", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = _fmt
    env.filters["usd"] = _usd
    return env


def render(results: dict) -> str:
    runs = results.get("runs", [])
    ok = [r for r in runs if r.get("status") == "ok" and r.get("quality") is not None]
    best = max((r["quality"] for r in ok), default=None)
    return _environment().get_template("report.html.j2").render(r=results, runs=runs, best_quality=best,
                                                                c=results.get("costs"))


def write_report(results_dir: Path) -> Path:
    results_dir = Path(results_dir)
    html = render(load_results(results_dir))
    target = results_dir / "report.html"
    fd, tmp = tempfile.mkstemp(prefix=".report.", dir=results_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(tmp, target)
    return target
