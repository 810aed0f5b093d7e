"""Running one job in a fresh worker process (``python -m harness.worker``, or several under ``accelerate
launch``), and saying in one line how a run went. Used by ``harness.compare`` for every run it makes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from harness import distributed
from harness.io import atomic_write_json
from harness.job import Job
from harness.record import RunRecord, RunStatus
from harness.runstore import StoredRun, load_record
from harness.strategies import Variant


def run_in_worker(job: Job, processes: int, accelerate_config: Path | None) -> RunRecord:
    """Run ``job`` in a fresh worker process (several under ``accelerate launch``); its record, as the worker
    wrote it, or - when the worker died without writing one - a failed record saying how it died."""
    job_path = job.save()
    if processes > 1:
        command = distributed.launch_command(job_path, processes, job.run_info.device, accelerate_config)
    else:
        command = [sys.executable, "-m", "harness.worker", str(job_path)]
    errors = [distributed.error_path(job.record_path, rank) for rank in range(1, processes)]
    for stale in errors:
        stale.unlink(missing_ok=True)
    proc = subprocess.Popen(command)
    try:
        proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the worker too; SIGTERM (re-raised as this) may not: stop it
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        job_path.unlink(missing_ok=True)
    other_errors = [e.read_text().strip() for e in errors if e.exists()]
    for e in errors:
        e.unlink(missing_ok=True)
    record = load_record(job.record_path)
    if record and record.run_info.config_hash == job.run_info.config_hash:
        return record
    if proc.returncode in (-signal.SIGINT, 130):
        raise KeyboardInterrupt
    if other_errors:
        why = f"failed in {other_errors[0]}"
    elif proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        why = "killed by SIGKILL, most likely out of memory" if sig == "SIGKILL" else f"killed by {sig}"
    else:
        why = f"exited with code {proc.returncode} without writing its record"
    return store_record(job, RunRecord.failed(job.run_info, f"worker process {why}"))


def store_record(job: Job, record: RunRecord) -> RunRecord:
    """Write a record no worker wrote (the run failed before it or without it)."""
    atomic_write_json(job.record_path, record.to_json())
    return record


def validation_line(trials: list[tuple[Variant, StoredRun]], chosen: Variant) -> str:
    parts = []
    for variant, run in trials:
        v = run.record.validation
        parts.append(f"{variant.name} {v.quality:.3f}" if v else f"{variant.name} failed")
    return ", ".join(parts)


def one_line(record: RunRecord) -> str:
    ev, tr, val = record.eval_info, record.train_info, record.validation
    if not record.ok or (ev is None and val is None):
        return f"{'STOPPED' if record.status is RunStatus.STOPPED_BUDGET else 'FAILED'}: {record.error}"
    if ev is None and val is not None:  # a trial
        trained = f", trained {tr.train_seconds:.0f} s" if tr else ""
        wall = record.run_info.wall_seconds or 0
        return f"ok: validation {val.metric} {val.quality:.3f}{trained}, {wall:.0f} s total"
    assert ev is not None
    parts = [f"{ev.metric} {ev.quality:.3f}", f"p50 {ev.latency_ms_p50:.0f} ms", f"p95 {ev.latency_ms_p95:.0f} ms"]
    if tr:
        parts.append(f"trained {tr.train_seconds:.0f} s")
    if record.endpoint:
        use = record.endpoint
        spent = f"${use.usd_spent:.4f}" if use.usd_spent is not None else "price missing"
        parts.append(f"{use.requests} requests ({use.cache_hits} cached, {use.errors} errors), {spent}")
    if val is not None:
        parts.append(f"validation {val.quality:.3f}")
    parts.append(f"{record.run_info.wall_seconds or 0:.0f} s total")
    return "ok: " + ", ".join(parts)
