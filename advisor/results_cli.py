"""``advisor results DIR``: a compare's runs table in the terminal, from its results.json (no torch, no pandas: it
starts fast). ``table`` and ``markdown`` show a readable subset; ``csv`` and ``json`` every column, flattened as in
results.csv (``harness.result_tables.flat_rows``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from advisor.cli_errors import OneLineUsageErrors, user_errors
from advisor.wording import usd
from harness.errors import UserError
from harness.result_tables import flat_rows
from harness.runstore import read_results

EXAMPLES = """\b
Examples:
  advisor results reports/support-intents
  advisor results reports/support-intents --format markdown >> NOTES.md
  advisor results reports/support-intents --format csv > runs.csv
"""


def _number(digits: int) -> Callable[[Any], str]:
    return lambda value: "—" if value is None else f"{value:,.{digits}f}"


def _usd(value: Any) -> str:
    return usd(value) if isinstance(value, (int, float)) else "—"


# (header, results.json field, how it is shown): what a person reads first; csv and json give every field
COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("strategy", "strategy", str),
    ("variant", "variant", str),
    ("status", "status", str),
    ("quality", "quality", _number(3)),
    ("p50 ms", "latency_ms_p50", _number(0)),
    ("p95 ms", "latency_ms_p95", _number(0)),
    ("peak MiB", "memory_peak_mib", _number(0)),
    ("train s", "train_seconds", _number(0)),
    ("$/1k req", "serve_usd_per_1k", _usd),
    ("train $", "train_usd", _usd),
    ("data $", "data_usd", _usd),
)


def read_runs(results_dir: Path) -> list[dict[str, Any]]:
    """results.json's runs (costs beside them once the advisor priced them); one-line errors for a folder that holds
    none."""
    data = read_results(results_dir)
    path = results_dir / "results.json"
    runs = data.get("runs")
    if not runs:
        raise UserError(f"{path}: no runs yet; run `advisor compare` into {results_dir} and wait for a run to finish")
    return [run for run in runs if isinstance(run, dict)]


def _cells(runs: list[dict[str, Any]]) -> list[list[str]]:
    return [[show(run.get(key)) for _, key, show in COLUMNS] for run in runs]


def as_table(runs: list[dict[str, Any]]) -> str:
    """Aligned columns: text to the left, numbers to the right."""
    headers = [header for header, _, _ in COLUMNS]
    cells = _cells(runs)
    widths = [max(len(row[i]) for row in [headers, *cells]) for i in range(len(headers))]
    left = 3  # strategy, variant, status

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def as_markdown(runs: list[dict[str, Any]]) -> str:
    headers = [header for header, _, _ in COLUMNS]
    rule = ["---" if i < 3 else "---:" for i in range(len(headers))]
    rows = [headers, rule, *(_cells(runs))]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows)


def as_csv(runs: list[dict[str, Any]]) -> str:
    """Every field, as results.csv holds it: dotted columns for nested objects, lists as JSON."""
    flat = flat_rows(runs)
    columns = list(flat[0]) if flat else []
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue().rstrip("\n")


def as_json(runs: list[dict[str, Any]]) -> str:
    return json.dumps(flat_rows(runs), indent=1, ensure_ascii=False)


FORMATS: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "table": as_table,
    "csv": as_csv,
    "json": as_json,
    "markdown": as_markdown,
}


@click.command(cls=OneLineUsageErrors, epilog=EXAMPLES)
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="table",
    show_default=True,
    help="table and markdown: the main columns; csv and json: every column of results.csv.",
)
@user_errors
def results(results_dir: Path, fmt: str) -> None:
    """Print RESULTS_DIR's runs table: quality, latency, memory, training time and costs per run."""
    click.echo(FORMATS[fmt](read_runs(results_dir)))
