"""One-off migration (2026-12, issue 15): move committed run records to the config hash that names a packaged model
by its package, version and folder inside it (``harness.runstore.config_hash``) instead of this machine's
site-packages path, so that a compare resumed from a clean clone - or on another machine - reuses them.

    PYTHONPATH=. python scripts/rehash_records.py reports/*/

A record is rehashed only when its stored hash is exactly what the old scheme gives for the task file and data as
they are now (the same task, data, settings, seed, device and model): a record that no longer matches the task is
left alone, and a resumed compare runs it again, as it would have. Nothing is re-run; running it twice changes
nothing (the second time every record already has its new hash).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from harness.io import atomic_write_json
from harness.runstore import config_hash
from harness.strategies import Variant
from harness.task import load_task
from harness.typedjson import to_jsonable


def old_hash(payload_args: dict[str, Any], model_json: dict[str, Any]) -> str:
    """``config_hash`` as it was before: the model reference as loaded on this machine, with no package field."""
    variant: Variant = payload_args["variant"]
    payload = {
        "task": payload_args["fingerprint"],
        "strategy": variant.strategy,
        "variant": variant.name,
        "params": variant.params,
        "seed": payload_args["seed"],
        "limit": payload_args["limit"],
        "device": payload_args["device"],
        "model": model_json,
    }
    if payload_args["num_processes"] > 1:
        payload["num_processes"] = payload_args["num_processes"]
    if payload_args["role"] != "final":
        payload["role"] = payload_args["role"]
    if payload_args["endpoint"] is not None:
        payload["endpoint"] = payload_args["endpoint"]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def rehash_folder(folder: Path) -> tuple[int, int]:
    """(records rehashed, records left alone) under ``folder``/runs."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    task = load_task(Path(results["task"]["path"]))
    fingerprint = task.fingerprint()
    old_model = {k: v for k, v in to_jsonable(task.model_ref).items() if k != "package"}
    changed = kept = 0
    for path in sorted((folder / "runs").rglob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        info = record["run_info"]
        args: dict[str, Any] = {
            "fingerprint": fingerprint,
            "variant": Variant(info["strategy"], info["variant"], info["params"]),
            "seed": info["seed"],
            "limit": info.get("limit"),
            "device": info["device"],
            "model": task.model_ref,
            "num_processes": info.get("num_processes") or 1,
            "endpoint": task.endpoint_identity(info["params"]),
            "role": info.get("role") or "final",
        }
        new = config_hash(**args)
        if info["config_hash"] == new:
            continue
        if info["config_hash"] != old_hash(args, old_model):
            kept += 1
            continue
        info["config_hash"] = new
        atomic_write_json(path, record)
        changed += 1
    return changed, kept


if __name__ == "__main__":
    for name in sys.argv[1:]:
        moved, left = rehash_folder(Path(name))
        print(f"{name}: {moved} record(s) rehashed, {left} left alone (no longer the task's)")
