"""Reading a dataset file into rows: JSONL, CSV, TSV, Parquet, or a Hugging Face ``datasets`` folder.

``read_table(path, what, split)`` gives every row as a plain dict with its 1-based number and where it is (for
errors), and the file's columns (None for JSONL, whose lines may each hold other fields). The task loader
(``harness.task``) turns rows into ``Example``s with the same rules whatever the format, so a CSV gives the same
examples as its JSONL equivalent (a JSONL file's numbers are its line numbers; the other formats number their
data rows).

pandas, pyarrow and ``datasets`` load only when a file of their format is read: they take a second to import,
and ``datasets`` is an optional extra (``pip install -e '.[hf]'``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.io import read_jsonl

TABULAR_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
FORMATS = "a .jsonl, .csv, .tsv or .parquet file, or a Hugging Face datasets folder (save_to_disk)"
HF_INSTALL = "pip install -e '.[hf]'"


@dataclass(frozen=True)
class Row:
    number: int  # 1-based: the JSONL line, or the data row of the other formats
    where: str  # "file:line" or "file: row N", for errors
    values: dict[str, Any]


@dataclass(frozen=True)
class Table:
    rows: list[Row]
    columns: list[str] | None  # None for JSONL: each line has its own fields


def split_suffix(value: str) -> tuple[str, str | None]:
    """``data.train``'s value as (path, split): ``folder:train`` picks a split of a saved ``DatasetDict``. A
    colon followed by a path separator (``C:/data``) is part of the path."""
    path, sep, split = value.rpartition(":")
    if sep and path and split and not any(c in split for c in "/\\"):
        return path, split
    return value, None


def read_table(path: Path, what: str, split: str | None = None) -> Table:
    """Every row of the dataset at ``path`` (``what``: "train dataset", for messages); one-line errors for a file
    that cannot be read, is empty, or is not a dataset."""
    if path.is_dir():
        return _hf_folder(path, what, split)
    if split is not None:
        raise UserError(f"{path}: ':{split}' picks a split of a Hugging Face datasets folder, and this is a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _records(path, what, _read_csv(path, "\t" if suffix == ".tsv" else ","))
    if suffix in (".parquet", ".pq"):
        return _records(path, what, _read_parquet(path))
    # JSONL, and as before any other file: each line one JSON object
    return Table([Row(number, f"{path}:{number}", obj) for number, obj in read_jsonl(path, what)], columns=None)


def _read_csv(path: Path, sep: str) -> tuple[list[str], list[dict[str, Any]]]:
    import pandas as pd

    kind = "TSV" if sep == "\t" else "CSV"
    try:
        # every cell as text, and an empty cell as "" (not NaN): the same values a JSONL file would hold as strings
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # Excel adds a BOM
    except pd.errors.EmptyDataError:
        return [], []
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8") from None
    except (pd.errors.ParserError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{path}: cannot read it as {kind} ({first}); check the file is {kind} with a header row"
        ) from None
    return [str(c) for c in frame.columns], frame.to_dict(orient="records")


def _read_parquet(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    # pyarrow straight to Python objects: nested values (an extraction target stored as a struct) stay dicts and
    # lists, where a pandas frame would hold numpy arrays
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: cannot read it as Parquet ({first}); check the file is a Parquet file") from None
    return list(table.column_names), table.to_pylist()


def _hf_folder(path: Path, what: str, split: str | None) -> Table:
    if not ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()):
        raise UserError(
            f"{path}: a folder, but not a Hugging Face datasets folder (no dataset_info.json or dataset_dict.json); "
            f"point it at {FORMATS}"
        )
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"{path}: reading a Hugging Face datasets folder needs the datasets package; run: {HF_INSTALL}"
        ) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # datasets raises many types for a damaged folder; one line says which
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: cannot load it with datasets.load_from_disk ({first})") from None
    if isinstance(loaded, datasets.DatasetDict):
        # a saved DatasetDict: the split named after the key (data.train -> "train"), or the one FOLDER:SPLIT names
        wanted = split or what.split()[0]
        if wanted not in loaded:
            found = ", ".join(loaded) or "none"
            raise UserError(
                f"{path}: this datasets folder has the splits {found}, not '{wanted}'; name one as {path.name}:SPLIT"
            )
        loaded = loaded[wanted]
    elif split is not None:
        raise UserError(f"{path}: ':{split}' picks a split, but this folder holds one dataset; drop ':{split}'")
    return _records(path, what, (list(loaded.column_names), loaded.to_list()))


def _records(path: Path, what: str, table: tuple[list[str], list[dict[str, Any]]]) -> Table:
    columns, records = table
    if not records:
        have = f" (columns: {', '.join(columns)})" if columns else ""
        raise UserError(f"{path}: the {what} file is empty{have}; add at least one example row")
    rows = [Row(i, f"{path}: row {i}", {k: _plain(v) for k, v in r.items()}) for i, r in enumerate(records, start=1)]
    return Table(rows, columns)


def _plain(value: Any) -> Any:
    """A missing cell (NaN, as pandas and Arrow may give it) as None, like a field a JSONL line leaves out."""
    return None if isinstance(value, float) and math.isnan(value) else value
