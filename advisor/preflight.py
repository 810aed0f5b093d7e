"""Fail early on what cannot fit: before a fine-tuning run starts, predict its peak memory on this device.

A run whose predicted peak exceeds the device's memory fails at once, with the estimate and the
settings that would fit, instead of crashing an hour in. The prediction is conservative: every
sequence is taken at ``max_seq_len`` (the longest a batch can be). Which memory model a strategy uses, and
whether FSDP may shard it, are its traits.
"""

from __future__ import annotations

from typing import Any

from advisor.costs.memory import TrainingMemory, training_memory
from advisor.costs.settings import split_settings
from advisor.costs.training import sharded_gpus, sharded_peak
from harness import catalog
from harness.arm_runs import Preflight
from harness.compare import ShardingPlanner
from harness.record import Hardware
from harness.shapes import ModelShape
from harness.spec import Task
from harness.strategies import STRATEGIES, TrainingConfig, Variant, traits
from harness.strategies.base import training_config, unavailable_reason
from harness.units import GIB


def _memory(
    shape: ModelShape, strategy: str, params: dict[str, Any], precision: str, **overrides: object
) -> TrainingMemory | None:
    """The memory model's prediction for ``strategy`` with ``params`` (a variant's, possibly another strategy's);
    None for a strategy that trains nothing."""
    config_type = STRATEGIES[strategy].config_type
    method = traits(strategy).memory_method
    if method is None or not issubclass(config_type, TrainingConfig):
        return None
    config, _ = training_config(config_type, dict(params))
    kwargs, settings = split_settings({**config.memory_settings(), **overrides})
    return training_memory(shape, method, precision=precision, settings=settings, **kwargs)


def _predict(
    shape: ModelShape, strategy: str, params: dict[str, Any], precision: str, shards: int = 1, **overrides: object
) -> float:
    """One device's predicted peak in bytes; ``shards`` > 1: FSDP shards the model states over that many."""
    memory = _memory(shape, strategy, params, precision, **overrides)
    return sharded_peak(memory, shards) if memory else 0.0


def _what_would_fit(
    shape: ModelShape, variant: Variant, precision: str, available: float, device: str, gpus: int = 0
) -> list[str]:
    """Settings that would fit; ``gpus``: the GPUs here (0 on a CPU machine), for FSDP over several."""
    strategy, params = variant.strategy, variant.params
    options = []
    memory = _memory(shape, strategy, params, precision)
    if traits(strategy).shardable and gpus and memory:
        n = sharded_gpus(memory, available)
        if n and n > 1:
            options.append(
                f"--num-processes {n} (FSDP over {n} GPUs like this one)"
                + ("" if n <= gpus else f"; this machine has {gpus}")
            )
    # another fine-tuning strategy, with this variant's shared settings, that fits and can run here; first those
    # served as this one is (full+rag -> lora+rag rather than lora: still with retrieval)
    served = traits(strategy).serving_method
    lighter = sorted(
        (
            name
            for name, s in STRATEGIES.items()
            if name != strategy
            and s.traits.trains
            and unavailable_reason(name, s.traits, device) is None
            and _predict(shape, name, params, precision) <= available
        ),
        key=lambda name: traits(name).serving_method != served,
    )
    if lighter:
        options.append(f"strategies.{lighter[0]} instead of {strategy}")
    if (
        not params.get("gradient_checkpointing")
        and _predict(shape, strategy, params, precision, gradient_checkpointing=True) <= available
    ):
        options.append("gradient_checkpointing: true")
    batch_size = int(params.get("batch_size", 8))
    for batch in (4, 2, 1):
        if batch < batch_size and _predict(shape, strategy, params, precision, batch_size=batch) <= available:
            options.append(f"batch_size: {batch} (with gradient_accumulation to keep the global batch)")
            break
    need = _predict(shape, strategy, params, "mixed" if precision == "fp32" else precision) / GIB
    bigger = sorted(
        (g["memory_gib"], name)
        for name, g in catalog.gpus().items()
        if g.get("kind") == "gpu" and g["memory_gib"] * 0.9 >= need
    )
    if bigger:
        options.append(f"a GPU with {bigger[0][0]:g} GiB or more ({bigger[0][1]})")
    return options


def _device_memory(device: Hardware, processes: int) -> tuple[float, str]:
    """Bytes one process may use and the precision the harness trains in there. With several processes on
    one CPU machine they share its memory."""
    if device.on_cuda:
        return (device.gpu_memory_gib or 0) * GIB, "bf16" if device.bf16 else "mixed"
    return (device.memory_gib or 0) * GIB / max(1, processes), "fp32"


def memory_preflight(task: Task) -> Preflight:
    """A check for ``harness.compare``: the reason a variant cannot fit on the device, or None.

    Under FSDP each device holds its share of the model states (``sharded_peak``); under DDP a whole replica."""
    shape = ModelShape.of_model(task.model_ref)

    def check(variant: Variant, device: Hardware, processes: int, sharding: str) -> str | None:
        available, precision = _device_memory(device, processes)
        if shape is None or not traits(variant.strategy).trains or not available:
            return None
        shards = processes if sharding == "fsdp" else 1
        peak = _predict(shape, variant.strategy, variant.params, precision, shards)
        if peak <= available:
            return None
        fits = _what_would_fit(
            shape, variant, precision, available, device.device, (device.gpu_count or 0) if device.on_cuda else 0
        )
        where = device.gpu or "this machine"
        per = f" per device with {shards}-way FSDP" if shards > 1 else ""
        return (
            f"out of memory (predicted before training): {variant.strategy} of {shape.name} needs about "
            f"{peak / GIB:.1f} GiB{per} at batch {variant.params.get('batch_size')} x "
            f"{variant.params.get('max_seq_len')} tokens, {where} has {available / GIB:.1f} GiB; would fit: "
            f"{'; '.join(fits) or 'a smaller model'}"
        )

    return check


def sharding_planner(task: Task) -> ShardingPlanner:
    """``--sharding auto`` for a shardable strategy (full fine-tuning) on several GPUs (``harness.compare`` decides
    the other cases): 'fsdp' (model states sharded) exactly when the memory model says a replica does not fit one
    GPU, else 'ddp' (a replica per GPU, gradients averaged); 'ddp' too when the model's size is unknown."""
    shape = ModelShape.of_model(task.model_ref)

    def plan(variant: Variant, device: Hardware, processes: int) -> str:
        available, precision = _device_memory(device, processes)
        if shape is None or not available:
            return "ddp"
        return "ddp" if _predict(shape, variant.strategy, variant.params, precision) <= available else "fsdp"

    return plan
