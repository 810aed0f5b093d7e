"""One fine-tuning job, planned: peak memory (and whether it fits), FLOPs, GPU-hours and dollars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from advisor.costs.compute import (
    TrainingFlops,
    Utilisation,
    gpu_hours,
    gpu_hours_usd,
    padded_seq_len,
    training_flops,
    training_utilisation,
)
from advisor.costs.job_overhead import JobOverhead, job_bytes, job_overhead
from advisor.costs.memory import (
    ADAPTER_ELEMENT_BYTES_BY_DTYPE,
    MEMORY_METHODS,
    TrainingMemory,
    check_lora,
    check_precision,
    default_gradient_checkpointing,
    default_precision,
    training_memory,
    usable_memory,
)
from advisor.costs.settings import TrainingSettings
from advisor.costs.shapes import ModelShape, lora_trainable_params, param_counts
from harness import catalog
from harness.errors import UserError
from harness.steps import StepPlan, step_plan
from harness.strategies.lora import DEFAULT_TARGET_MODULES
from harness.units import GIB

MAX_SHARDED_GPUS = 1024


@dataclass(frozen=True)
class TrainingEstimate:
    model: str
    method: str
    gpu: str
    precision: str
    tokens: float  # examples x seq_len x epochs
    total_params: int
    trainable_params: int
    memory: TrainingMemory
    usable_memory: float  # bytes of one device a job can use
    gpus_needed: int | None  # devices with FSDP / ZeRO-3 sharding; None: activations alone overflow one
    flops: TrainingFlops
    utilisation: Utilisation
    gpu_hours: float  # the FLOP part
    flop_usd: float  # gpu_hours x $/h
    fixed: JobOverhead  # start-up, model load, evaluation, save, billing rounding
    notes: tuple[str, ...] = field(default_factory=tuple)
    gradient_checkpointing: bool = False
    lora_targets: tuple[str, ...] = ()  # the adapted modules, each once ('all-linear' spelled out); () for full
    rank: int | None = None  # None for full fine-tuning
    settings: TrainingSettings = TrainingSettings()
    gpus: int = 1  # devices it runs on: settings.gpus, else the fewest that fit
    compute_tokens: float = 0.0  # tokens the devices compute on, padding included
    per_device_peak: float = 0.0  # bytes: the peak, or one device's share when sharded over several
    # the batch size, epochs and optimizer steps it trains with, once the step minimum is applied
    steps: StepPlan | None = None

    @property
    def fits(self) -> bool:
        """One device holds the whole job (the point estimate; see ``fit`` for the band's verdict)."""
        return self.memory.peak <= self.usable_memory

    @property
    def usd(self) -> float:
        """What the job costs: its FLOPs' part + its fixed part per job."""
        return self.flop_usd + self.fixed.usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "gpu": self.gpu,
            "precision": self.precision,
            "tokens": self.tokens,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "memory_bytes": self.memory.as_dict(),
            "peak_memory_gib": self.memory.peak / GIB,
            "usable_memory_gib": self.usable_memory / GIB,
            "fits": self.fits,
            "gpus_needed": self.gpus_needed,
            "flops": self.flops.as_dict(),
            "utilisation": self.utilisation.as_dict(),
            "train_gpu_hours": self.gpu_hours,
            "train_usd": self.usd,
            "train_flop_usd": self.flop_usd,
            "train_fixed_usd": self.fixed.usd,
            "train_fixed_gpu_hours": self.fixed.gpu_hours,
            "fixed_costs": self.fixed.as_dict(),
            "notes": list(self.notes),
            "gradient_checkpointing": self.gradient_checkpointing,
            "lora_targets": list(self.lora_targets),
            "rank": self.rank,
            "settings": asdict(self.settings),
            "gpus": self.gpus,
            "compute_tokens": self.compute_tokens,
            "per_device_peak_memory_gib": self.per_device_peak / GIB,
            "batch_size": self.steps.batch_size if self.steps else None,
            "epochs": self.steps.epochs if self.steps else None,
            "optimizer_steps": self.steps.optimizer_steps if self.steps else None,
            "min_steps_adjusted": self.steps.adjusted if self.steps else False,
        }


def sharded_peak(memory: TrainingMemory, devices: int) -> float:
    """One device's peak when FSDP / ZeRO-3 shards the model states, gradients and optimizer temporaries over
    ``devices``: model_states / n + max(its own activations and loss, optimizer step / n)."""
    return memory.model_states / devices + max(memory.forward_backward, memory.optimizer_step / devices)


def sharded_gpus(memory: TrainingMemory, usable: float) -> int | None:
    """Fewest devices whose share of the sharded model states, gradients and optimizer temporaries (FSDP /
    ZeRO-3) plus one device's own activations fits; None when the activations alone do not."""
    for n in range(1, MAX_SHARDED_GPUS + 1):
        if sharded_peak(memory, n) <= usable:
            return n
    return None


def estimate_training(
    model_shape: ModelShape | str,
    method: str,
    gpu: str,
    examples: int,
    seq_len: int,
    epochs: float,
    batch_size: int,
    rank: int = 8,
    *,
    precision: str | None = None,
    lora_targets: str | Sequence[str] = DEFAULT_TARGET_MODULES,
    lora_dropout: float = 0.05,
    gradient_checkpointing: bool | None = None,
    settings: TrainingSettings = TrainingSettings(),
    utilisation: Utilisation | None = None,
    eval_seconds: float | None = None,
    min_optimizer_steps: int = 0,
) -> TrainingEstimate:
    """Plan fine-tuning ``model_shape`` (a ModelShape or a models.yaml name) with memory method ``method`` (full,
    lora, qlora: ``MEMORY_METHODS``) on catalog device ``gpu``: ``examples`` examples of at most ``seq_len``
    tokens (the longest batch, for memory; ``settings.mean_seq_len`` for time and tokens) for ``epochs``.

    ``precision`` defaults to what the harness trains in there (``default_precision``: 'bf16' on a GPU with bf16,
    'fp32' otherwise); ``gradient_checkpointing`` None = the method's harness default (on for QLoRA, off
    otherwise); ``lora_targets`` and ``rank`` are checked (``check_lora``: duplicates counted once, 'all-linear'
    anywhere in the list = every linear module, 1 <= rank < the smallest adapted dimension); ``settings``: the
    recipe (optimizer, loss, packing, gradient accumulation, devices, ...: advisor.costs.settings);
    ``utilisation`` (calibrate_utilisation's, from measured runs) defaults to the catalog's curve
    (``training_utilisation``) at this job's tokens per optimizer step per GPU. ``eval_seconds`` replaces the
    catalog's evaluation time among the fixed costs per job (advisor.costs.job_overhead).

    ``min_optimizer_steps`` applies the harness's step minimum (``harness.steps.step_plan``, as a run with
    ``TrainingConfig.min_optimizer_steps`` does): fewer steps than that lower ``batch_size``, then raise ``epochs``,
    and the job is priced at what it then trains with. 0 (the default here) prices ``batch_size`` and ``epochs`` as
    given: a job that ran so; ``advisor estimate`` passes the harness default. The steps are counted over
    ``settings.gpus`` processes (1 when unset, also when the job turns out to need several GPUs).
    """
    for name, value in (
        ("examples", examples),
        ("seq_len", seq_len),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("rank", rank),
    ):
        if value <= 0:
            raise UserError(f"{name}: {value} must be positive")
    if method not in MEMORY_METHODS:
        raise UserError(f"method: '{method}' trains nothing; choose one of: {', '.join(MEMORY_METHODS)}")
    if min_optimizer_steps < 0:
        raise UserError(f"min_optimizer_steps: {min_optimizer_steps} must be 0 (no minimum) or more")
    steps = step_plan(
        examples, epochs, batch_size, settings.gradient_accumulation, settings.gpus or 1, min_optimizer_steps
    )
    batch_size, epochs = steps.batch_size, steps.epochs
    shape = ModelShape.from_catalog(model_shape) if isinstance(model_shape, str) else model_shape
    device = catalog.check_gpu(gpu)
    precision = precision or default_precision(device)
    check_precision(precision)
    if settings.fp8 and not device.get("peak_tflops_fp8_dense"):
        raise UserError(f"fp8: {gpu} has no FP8 tensor cores; FP8 training needs an H100, H200, B200 or Ada GPU")
    counts = param_counts(shape)
    total = counts.total
    full = method == "full"
    targets = () if full else check_lora(shape, rank, lora_targets)
    adapters = 0 if full else lora_trainable_params(shape, rank, targets)
    if gradient_checkpointing is None:
        gradient_checkpointing = default_gradient_checkpointing(method)
    memory = training_memory(
        shape,
        method,
        batch_size=batch_size,
        seq_len=seq_len,
        precision=precision,
        rank=rank,
        lora_targets=targets or DEFAULT_TARGET_MODULES,
        lora_dropout=lora_dropout,
        gradient_checkpointing=gradient_checkpointing,
        settings=settings,
    )
    usable = usable_memory(device)
    fewest = 1 if memory.peak <= usable else sharded_gpus(memory, usable)
    devices = settings.gpus or fewest or 1
    per_device_peak = sharded_peak(memory, devices) if devices > 1 else memory.peak
    mean_len = min(settings.mean_seq_len or seq_len, seq_len)
    tokens = examples * mean_len * epochs  # real tokens
    computed_len = padded_seq_len(seq_len, settings.mean_seq_len, batch_size, settings.packing)
    compute_tokens = examples * computed_len * epochs  # padding included: the device computes on it too
    # peft counts the adapters among the model's parameters; they run forward and backward with the rest. A mixture
    # of experts runs each token through its active parameters only (counts.active).
    flops = training_flops(
        counts.active + adapters,
        counts.active if full else adapters,
        compute_tokens,
        gradient_checkpointing=gradient_checkpointing,
    )
    tokens_per_step_per_gpu = batch_size * computed_len * settings.gradient_accumulation
    utilisation = utilisation or training_utilisation(
        method, tokens_per_step_per_gpu, compile=settings.compile, fp8=settings.fp8, gpus=devices
    )
    hours = gpu_hours(flops.total, device, "fp8" if settings.fp8 else precision, utilisation.value)
    notes = []
    if fewest is None:
        notes.append(
            f"activations alone overflow one {gpu}: lower the batch size or sequence length, "
            f"or turn on gradient checkpointing"
        )
    elif fewest > 1 and not settings.gpus:
        notes.append(
            f"does not fit one {gpu}: needs {fewest} with FSDP/ZeRO-3 sharding ({hours / fewest:.3g} h wall-clock)"
        )
    if settings.gpus and per_device_peak > usable:
        notes.append(f"does not fit {settings.gpus} x {gpu}: {per_device_peak / GIB:.1f} GiB per device")
    if settings.paged:
        notes.append(
            "paged optimizer states live in CUDA managed memory, outside the device peak: they are evicted to CPU "
            "RAM when the device runs short, at a cost in speed"
        )
    fixed = job_overhead(
        job_bytes(
            total,
            method,
            trained_params=total if full else adapters,
            precision=precision,
            adapter_element_bytes=ADAPTER_ELEMENT_BYTES_BY_DTYPE[settings.adapter_dtype],
        ),
        gpu,
        compute_seconds=hours * 3600 / devices,
        gpus=devices,  # the devices the job rents: the fixed seconds are paid on each
        eval_seconds=eval_seconds,
    )
    return TrainingEstimate(
        model=shape.name,
        method=method,
        gpu=gpu,
        precision=precision,
        tokens=tokens,
        total_params=total,
        trainable_params=total if full else adapters,
        memory=memory,
        usable_memory=usable,
        gpus_needed=fewest,
        flops=flops,
        utilisation=utilisation,
        gpu_hours=hours,
        flop_usd=gpu_hours_usd(hours, device["usd_per_hour"]),
        fixed=fixed,
        notes=tuple(notes),
        gradient_checkpointing=gradient_checkpointing,
        lora_targets=targets,
        rank=None if full else rank,
        settings=settings,
        gpus=devices,
        compute_tokens=compute_tokens,
        per_device_peak=per_device_peak,
        steps=steps,
    )
