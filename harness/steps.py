"""How many optimizer steps a fine-tuning run takes, and the minimum that small datasets get.

One pure function, ``step_plan``, used by the harness to run a fine-tuning job and by the advisor to price a planned
one, so both count the same steps. No torch here: the advisor imports it without.

The rule (``TrainingConfig.min_optimizer_steps``, 0 = off): when ``examples x epochs / global batch`` gives fewer
steps than the minimum, the run first lowers the per-device batch size to the largest one (not below 1) that reaches
the minimum in the configured epochs (the same tokens, cut into more updates); when even batch 1 falls short, it
trains at batch 1 for more epochs, exactly enough for the minimum. A small dataset then gets at least that many
updates instead of a few dozen: 150 examples x 2 epochs at batch 8 is 38 steps, too few for LoRA to learn a new
output format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_MIN_OPTIMIZER_STEPS = 100


def steps_per_epoch(examples: int, batch_size: int, gradient_accumulation: int = 1, processes: int = 1) -> int:
    """Optimizer steps in one pass over ``examples``, as transformers' Trainer counts them: each process takes
    ceil(examples / (batch_size x processes)) micro-batches an epoch, and a step accumulates
    ``gradient_accumulation`` of them (a last, partial group is a step too)."""
    micro_batches = math.ceil(examples / (batch_size * processes))
    return max(1, math.ceil(micro_batches / gradient_accumulation))


def optimizer_steps(
    examples: int, epochs: float, batch_size: int, gradient_accumulation: int = 1, processes: int = 1
) -> int:
    """Steps of a run of ``epochs`` passes (the Trainer rounds a fractional last epoch up to a whole step)."""
    return math.ceil(epochs * steps_per_epoch(examples, batch_size, gradient_accumulation, processes))


@dataclass(frozen=True)
class StepPlan:
    """What a run trains with, once the minimum is applied."""

    batch_size: int  # per device, per micro-batch
    epochs: float
    optimizer_steps: int
    batch_lowered: bool = False  # the minimum lowered the batch size from the configured one
    epochs_raised: bool = False  # the minimum raised the epochs (at batch 1)

    @property
    def adjusted(self) -> bool:
        return self.batch_lowered or self.epochs_raised


def step_plan(
    examples: int,
    epochs: float,
    batch_size: int,
    gradient_accumulation: int = 1,
    processes: int = 1,
    min_steps: int = DEFAULT_MIN_OPTIMIZER_STEPS,
) -> StepPlan:
    """The batch size, epochs and optimizer steps of a run on ``examples`` with at least ``min_steps`` steps (0:
    none asked): the configured ones when they give enough steps; else the largest batch size that does; else batch
    1 and the epochs that give exactly ``min_steps`` steps."""
    if examples < 1 or batch_size < 1 or gradient_accumulation < 1 or processes < 1 or epochs <= 0 or min_steps < 0:
        raise ValueError("step_plan: examples, epochs, batch size, accumulation and processes must be positive")
    steps = optimizer_steps(examples, epochs, batch_size, gradient_accumulation, processes)
    if steps >= min_steps:
        return StepPlan(batch_size, epochs, steps)
    for batch in range(batch_size - 1, 0, -1):
        steps = optimizer_steps(examples, epochs, batch, gradient_accumulation, processes)
        if steps >= min_steps:
            return StepPlan(batch, epochs, steps, batch_lowered=True)
    per_epoch = steps_per_epoch(examples, 1, gradient_accumulation, processes)
    return StepPlan(1, min_steps / per_epoch, min_steps, batch_lowered=batch_size > 1, epochs_raised=True)
