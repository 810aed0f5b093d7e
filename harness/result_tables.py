"""results.json's runs as tables that load straight into pandas, written beside it at the end of a compare (and by
``advisor report``):

    results.csv           one row per run: the fields of results.json ``runs`` (costs included), nested objects
                          flattened to dotted columns (``self_check.memory_ratio``), lists as JSON text
    predictions.parquet   one row per run scored on test and test example: the run, its seed, the example's id,
                          input and target, the prediction, the model's text, its score and token counts

Per-example latency is not measured (latency is timed on the first requests, one at a time, and kept as each run's
p50/p95 in results.csv), so predictions.parquet has no latency column. Targets and predictions are text: an
extraction object as JSON, an unparsed answer as null.

pandas and pyarrow load only when the tables are written: a compare's parent and ``advisor results`` start
without them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.io import atomic_write_text
from harness.record import RunRecord

RUNS_CSV = "results.csv"
PREDICTIONS_PARQUET = "predictions.parquet"
PREDICTION_COLUMNS = (
    "run",
    "record",
    "strategy",
    "variant",
    "seed",
    "endpoint",
    "id",
    "input",
    "target",
    "prediction",
    "output",
    "score",
    "prompt_tokens",
    "output_tokens",
)


def flat_row(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """One results.json run as a flat mapping: nested objects as dotted keys, lists as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_row(value, f"{name}.") if value else {name: None})
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            flat[name] = value
    return flat


def flat_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run flattened, each with the same columns in the same order: an object that is null in one run (a
    failed run's ``self_check``) and filled in another appears only as the other's dotted columns."""
    flat = [flat_row(row) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    nested = {key.split(".")[0] for key in columns if "." in key}
    columns = [c for c in columns if c not in nested or any(row.get(c) is not None for row in flat)]
    return [{c: row.get(c) for c in columns} for row in flat]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def prediction_rows(record_path: str, record: RunRecord) -> list[dict[str, Any]]:
    """One row per test example of a run (none for a run that failed before answering)."""
    info = record.run_info
    run = Path(record_path).stem
    endpoint = record.endpoint.name if record.endpoint else None
    return [
        {
            "run": run,
            "record": record_path,
            "strategy": info.strategy,
            "variant": info.variant,
            "seed": info.seed,
            "endpoint": endpoint,
            "id": p.id,
            "input": p.input,
            "target": _text(p.target),
            "prediction": _text(p.prediction),
            "output": p.output,
            "score": p.score,
            "prompt_tokens": p.prompt_tokens,
            "output_tokens": p.output_tokens,
        }
        for p in record.predictions
    ]


def write_tables(out_dir: Path, rows: list[dict[str, Any]], runs: Iterable[tuple[str, RunRecord]]) -> tuple[Path, Path]:
    """results.csv from results.json's ``rows`` and predictions.parquet from the runs' (record path, record)."""
    import pandas as pd

    out_dir = Path(out_dir)
    csv_path = out_dir / RUNS_CSV
    atomic_write_text(csv_path, pd.DataFrame(flat_rows(rows)).to_csv(index=False))
    predictions = [p for path, record in runs for p in prediction_rows(path, record)]
    frame = pd.DataFrame(predictions, columns=list(PREDICTION_COLUMNS))
    parquet_path = out_dir / PREDICTIONS_PARQUET
    # written beside, then renamed: a reader never sees half a file
    fd, tmp = tempfile.mkstemp(prefix=f".{parquet_path.name}.", dir=out_dir)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, parquet_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return csv_path, parquet_path
