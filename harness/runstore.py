"""The run store: one JSON record per run, written atomically, and the results.json summary.

Layout of an output folder::

    results.json          summary (task, device, runs[]) rendered into report.html
    runs/<strategy>-<variant>.json   one full record per run (predictions included)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from harness.strategies import Variant


def atomic_write_json(path: Path, data: object) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def run_id(variant: Variant) -> str:
    return f"{variant.strategy}-{variant.name}"


def record_path(out_dir: Path, variant: Variant) -> Path:
    return out_dir / "runs" / f"{run_id(variant)}.json"


def config_hash(fingerprint: dict, variant: Variant, *, seed: int, limit: int | None, device: str, model: dict,
                num_processes: int = 1) -> str:
    """Everything that determines a run's result; equal hash = same run, safe to reuse. The number of training
    processes counts (it multiplies the global batch) only when there are several, so one-process records
    keep their hash; DDP or FSDP does not (the same arithmetic, sharded differently)."""
    payload = {"task": fingerprint, "strategy": variant.strategy, "variant": variant.name, "params": variant.params,
               "seed": seed, "limit": limit, "device": device, "model": model}
    if num_processes > 1:
        payload["num_processes"] = num_processes
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def reusable(path: Path, digest: str) -> dict | None:
    """The stored record when it finished ok with the same config hash."""
    record = read_json(path)
    if record and record.get("status") == "ok" and record.get("run_info", {}).get("config_hash") == digest:
        return record
    return None


def summarize(record: dict, path: Path, out_dir: Path) -> dict:
    """One row of results.json from a run record."""
    info, ev, tr = record.get("run_info", {}), record.get("eval_info") or {}, record.get("train_info") or {}
    memory = info.get("memory") or {}
    return {
        "strategy": info.get("strategy"),
        "variant": info.get("variant"),
        "status": record.get("status"),
        "error": record.get("error"),
        "metric": ev.get("metric"),
        "quality": ev.get("quality"),
        "n_examples": ev.get("n_examples"),
        "latency_ms_p50": ev.get("latency_ms_p50"),
        "latency_ms_p95": ev.get("latency_ms_p95"),
        "latency_batch_size": ev.get("latency_batch_size"),
        "throughput_examples_per_s": ev.get("throughput_examples_per_s"),
        "eval_batch_size": ev.get("eval_batch_size"),
        "prompt_tokens_mean": ev.get("prompt_tokens_mean"),
        "output_tokens_mean": ev.get("output_tokens_mean"),
        "peak_memory_mb": memory.get("peak_memory_mb"),
        "peak_memory_kind": memory.get("peak_memory_kind"),
        "train_peak_memory_mb": tr.get("train_peak_memory_mb"),
        "eval_peak_memory_mb": ev.get("eval_peak_memory_mb"),
        "train_seconds": tr.get("train_seconds"),
        "num_processes": tr.get("num_processes", 1) if tr else None,
        "sharding": tr.get("sharding") if tr else None,
        "tokens_trained": tr.get("tokens_trained"),
        "trainable_params": tr.get("trainable_params"),
        "train_examples": tr.get("examples"),
        "examples_labelled": tr.get("examples_labelled"),
        "data_fraction": tr.get("data_fraction"),
        "final_loss": tr.get("final_loss"),
        "wall_seconds": info.get("wall_seconds"),
        "config_hash": info.get("config_hash"),
        "record": str(path.relative_to(out_dir)),
    }
