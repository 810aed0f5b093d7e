"""What one training job pays for besides its FLOPs: start-up, loading the model, evaluation, saving what it
trained, and the provider's billing increment (data/catalog/job_overheads.yaml, with sources).

  fixed seconds = start-up + model load + evaluation + checkpoint save + billing rounding   (wall clock)
    start-up         = instance boot + environment bytes / download rate
    model load       = model bytes / download rate + model bytes / disk read    (or: download + measured load)
    checkpoint save  = checkpoint bytes / disk write                            (or: measured)
    evaluation       = the catalog's seconds, the caller's, or measured
    download rate    = min(network download, disk write): the download lands on the disk
    billing rounding = max(minimum, ceil(run / increment) x increment) - run,  run = compute + the four above
  fixed GPU-hours = fixed seconds x GPUs / 3600;  fixed USD = fixed GPU-hours x the device's $/h

Model bytes are the base weights as stored, 16 bits each (a QLoRA job downloads the 16-bit checkpoint and
quantises it on load); checkpoint bytes are every weight in the training precision for full fine-tuning and the
adapters only (fp32, as peft keeps them) for LoRA and QLoRA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from advisor.costs.compute import SECONDS_PER_HOUR
from advisor.costs.memory import ADAPTER_ELEMENT_BYTES, PRECISIONS
from harness import catalog
from harness.errors import UserError

STORED_BYTES_PER_WEIGHT = 2  # checkpoints on the Hugging Face Hub are 16-bit (bf16 / fp16) safetensors
ITEMS = ("startup", "model_load", "eval", "save", "billing_rounding")


@dataclass(frozen=True)
class JobBytes:
    """What a job moves: the base model it downloads and loads, the checkpoint it saves."""

    model: float
    checkpoint: float


def job_bytes(
    base_params: int,
    method: str,
    *,
    trained_params: int,
    precision: str,
    adapter_element_bytes: float = ADAPTER_ELEMENT_BYTES,
) -> JobBytes:
    """Bytes a job of memory method ``method`` (full, lora, qlora) loads and saves.

    model      = base parameters x 2 (16-bit as stored; QLoRA quantises them on load)
    checkpoint = base parameters x bytes per weight of ``precision`` (full fine-tuning: every weight)
               | trained (adapter) parameters x their bytes (LoRA, QLoRA: the adapters alone; fp32 = 4, peft's)"""
    if method == "full":
        checkpoint = base_params * PRECISIONS[precision].weight
    else:
        checkpoint = trained_params * adapter_element_bytes
    return JobBytes(model=base_params * STORED_BYTES_PER_WEIGHT, checkpoint=checkpoint)


@dataclass(frozen=True)
class MeasuredPhases:
    """Phase times a run measured (seconds); None where it did not. ``model_load_s`` is reading the weights from
    a local copy into memory: the download is priced from the catalog on top of it."""

    model_load_s: float | None = None
    eval_s: float | None = None
    save_s: float | None = None


@dataclass(frozen=True)
class BillingRule:
    provider: str  # the job_overheads.yaml billing entry (``default`` when none matches the price source)
    increment_s: float
    minimum_s: float
    source: str

    def describe(self) -> str:
        minimum = f", {self.minimum_s:g} s minimum" if self.minimum_s else ", no minimum"
        return f"{self.provider}: {self.increment_s:g}-s increments{minimum}"


def _entry(section: str, key: str) -> tuple[float, str]:
    """A figure of job_overheads.yaml and its source."""
    entry = catalog.job_overheads()[section][key]
    return float(entry["value"]), str(entry["source"])


def billing_rule(device: dict[str, Any]) -> BillingRule:
    """The billing entry whose ``match`` begins the device's price_source (the longest match), else ``default``."""
    rules: dict[str, dict[str, Any]] = catalog.job_overheads()["billing"]
    price_source = str(device.get("price_source") or "").lower()
    matches = [
        (len(str(rule["match"])), name)
        for name, rule in rules.items()
        if rule.get("match") and price_source.startswith(str(rule["match"]).lower())
    ]
    name = max(matches)[1] if matches else "default"
    rule = rules[name]
    return BillingRule(name, float(rule["increment_s"]), float(rule["minimum_s"]), str(rule["source"]))


def billing_rounding(run_seconds: float, rule: BillingRule) -> float:
    """Seconds billed beyond ``run_seconds``: max(minimum, ceil(run / increment) x increment) - run."""
    # a hair below an exact multiple stays on it (float noise must not bill a whole increment)
    billed = math.ceil(run_seconds / rule.increment_s - 1e-9) * rule.increment_s
    return max(rule.minimum_s, billed) - run_seconds


@dataclass(frozen=True)
class JobOverhead:
    """A job's fixed seconds, itemised (wall clock, paid on each of ``gpus``), and their price."""

    startup_s: float
    model_load_s: float
    eval_s: float
    save_s: float
    billing_rounding_s: float
    compute_s: float  # wall clock of the FLOP part: rounded together with the rest, priced apart
    gpus: int
    usd_per_hour: float  # one device
    billing: BillingRule
    sources: dict[str, str]  # item -> its formula, figures and sources
    measured: tuple[str, ...] = ()  # items taken from the run's own measurements

    @property
    def seconds(self) -> float:
        return self.startup_s + self.model_load_s + self.eval_s + self.save_s + self.billing_rounding_s

    @property
    def gpu_hours(self) -> float:
        # fixed GPU-hours = fixed seconds x GPUs / 3600
        return self.seconds * self.gpus / SECONDS_PER_HOUR

    @property
    def usd(self) -> float:
        # fixed USD = fixed GPU-hours x one device's $/h
        return self.gpu_hours * self.usd_per_hour

    def item_seconds(self) -> dict[str, float]:
        return {
            "startup": self.startup_s,
            "model_load": self.model_load_s,
            "eval": self.eval_s,
            "save": self.save_s,
            "billing_rounding": self.billing_rounding_s,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.item_seconds(),
            "total_seconds": self.seconds,
            "compute_seconds": self.compute_s,
            "gpus": self.gpus,
            "gpu_hours": self.gpu_hours,
            "usd": self.usd,
            "billing": {
                "provider": self.billing.provider,
                "increment_s": self.billing.increment_s,
                "minimum_s": self.billing.minimum_s,
            },
            "measured": list(self.measured),
            "sources": dict(self.sources),
        }

    def summary(self) -> str:
        """One line: each item's seconds (measured ones marked) and the billing rule."""
        names = {
            "startup": "start-up",
            "model_load": "model load",
            "eval": "evaluation",
            "save": "save",
            "billing_rounding": "billing rounding",
        }
        parts = [
            f"{names[item]} {seconds:.3g} s{' (measured)' if item in self.measured else ''}"
            for item, seconds in self.item_seconds().items()
        ]
        return f"{', '.join(parts)} ({self.billing.describe()})"


def job_overhead(
    job: JobBytes,
    gpu: str,
    *,
    compute_seconds: float,
    gpus: int = 1,
    eval_seconds: float | None = None,
    measured: MeasuredPhases | None = None,
) -> JobOverhead:
    """The fixed part of a job of ``job``'s bytes on ``gpus`` x catalog device ``gpu`` whose FLOPs take
    ``compute_seconds`` of wall clock (module docstring). ``eval_seconds`` replaces the catalog's evaluation;
    ``measured`` phases replace their catalog estimates."""
    if gpus < 1:
        raise UserError(f"gpus: {gpus} must be at least 1")
    if compute_seconds < 0 or (eval_seconds is not None and eval_seconds < 0):
        raise UserError("compute and evaluation seconds must not be negative")
    device = catalog.check_gpu(gpu)
    measured = measured or MeasuredPhases()
    boot, boot_source = _entry("startup", "instance_boot_s")
    env_bytes, env_source = _entry("startup", "environment_bytes")
    network, network_source = _entry("throughput", "network_download_bytes_per_s")
    read, read_source = _entry("throughput", "disk_read_bytes_per_s")
    write, write_source = _entry("throughput", "disk_write_bytes_per_s")
    download = min(network, write)  # the download is written to the disk as it arrives
    mb = 1e6

    # start-up = instance boot + environment bytes / download rate
    startup = boot + env_bytes / download
    # model load = model bytes / download rate + (measured load, else model bytes / disk read)
    fetch = job.model / download
    load = fetch + (measured.model_load_s if measured.model_load_s is not None else job.model / read)
    # checkpoint save = checkpoint bytes / disk write (else measured)
    save = measured.save_s if measured.save_s is not None else job.checkpoint / write
    catalog_eval, eval_source = _entry("evaluation", "seconds")
    evaluation = next(s for s in (measured.eval_s, eval_seconds, catalog_eval) if s is not None)
    rule = billing_rule(device)
    # billing rounding = max(minimum, ceil(run / increment) x increment) - run
    rounding = billing_rounding(compute_seconds + startup + load + evaluation + save, rule)

    rate = f"min(network {network / mb:.0f} MB/s, disk write {write / mb:.0f} MB/s)"
    load_part = (
        f"{measured.model_load_s:.3g} s measured load"
        if measured.model_load_s is not None
        else f"{job.model / mb:.4g} MB / disk read {read / mb:.0f} MB/s"
    )
    sources = {
        "startup": f"{boot:g} s instance boot ({boot_source}) + {env_bytes / mb:.4g} MB environment / {rate} "
        f"({env_source}; {network_source}; {write_source})",
        "model_load": f"{job.model / mb:.4g} MB of 16-bit weights / {rate} + {load_part} ({read_source})",
        "eval": _eval_source(measured.eval_s, eval_seconds, f"{catalog_eval:g} s ({eval_source})"),
        "save": "measured"
        if measured.save_s is not None
        else f"{job.checkpoint / mb:.4g} MB / disk write {write / mb:.0f} MB/s ({write_source})",
        "billing_rounding": f"{rule.describe()} ({rule.source})",
    }
    taken = tuple(
        item
        for item, value in (("model_load", measured.model_load_s), ("eval", measured.eval_s), ("save", measured.save_s))
        if value is not None
    )
    return JobOverhead(
        startup_s=startup,
        model_load_s=load,
        eval_s=evaluation,
        save_s=save,
        billing_rounding_s=rounding,
        compute_s=compute_seconds,
        gpus=gpus,
        usd_per_hour=float(device["usd_per_hour"]),
        billing=rule,
        sources=sources,
        measured=taken,
    )


def _eval_source(measured: float | None, given: float | None, from_catalog: str) -> str:
    if measured is not None:
        return "measured in the run"
    return "given by the caller" if given is not None else from_catalog


def assumption_lines(gpu: str) -> list[str]:
    """The fixed-cost formulas and the catalog figures behind them, for a table's or report's assumptions."""
    rule = billing_rule(catalog.check_gpu(gpu))

    def figure(section: str, key: str, scale: float, unit: str) -> str:
        value, source = _entry(section, key)
        return f"{value / scale:g} {unit} ({source})"

    return [
        "fixed per job, paid on every GPU the job holds: start-up + model load + evaluation + checkpoint save + "
        "billing rounding, beside the FLOPs (data/catalog/job_overheads.yaml; formulas in "
        "advisor/costs/job_overhead.py)",
        f"start-up = instance boot {figure('startup', 'instance_boot_s', 1, 's')} + environment "
        f"{figure('startup', 'environment_bytes', 1e9, 'GB')} / download rate",
        "model load = 16-bit weights / download rate + 16-bit weights / disk read; checkpoint save = every weight "
        "(full fine-tuning) or the fp32 adapters (LoRA, QLoRA) / disk write; download rate = min(network, disk "
        f"write); network {figure('throughput', 'network_download_bytes_per_s', 1e6, 'MB/s')}; disk read "
        f"{figure('throughput', 'disk_read_bytes_per_s', 1e6, 'MB/s')}; disk write "
        f"{figure('throughput', 'disk_write_bytes_per_s', 1e6, 'MB/s')}",
        f"evaluation {figure('evaluation', 'seconds', 1, 's')}",
        f"billing rounding = max(minimum, ceil(run / increment) x increment) - run; {gpu} is billed as "
        f"{rule.describe()} ({rule.source})",
    ]
