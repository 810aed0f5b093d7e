"""The one small interface every strategy implements, and the shared training config.

A strategy turns (task, one variant of its config) into a ``Prepared`` predictor: a model, its
tokenizer, and a function that builds the chat messages for one example. Evaluation, metering and
recording are the same for every strategy and live outside (``harness.evaluate``,
``harness.runner``), so a new strategy is one new file: a config dataclass, ``variants`` and
``prepare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from harness.schema import doc

if TYPE_CHECKING:
    from harness.runner import RunContext
    from harness.task import Example


@dataclass(frozen=True)
class Variant:
    """One run of a strategy: e.g. prompt '4-shot' or lora 'r8'."""

    strategy: str
    name: str
    params: dict  # everything that determines this run's result; recorded and hashed


@dataclass
class Prepared:
    """What a strategy hands to the shared evaluator."""

    model: Any
    tokenizer: Any
    build_messages: Callable[["Example"], list[dict]]
    train_info: dict | None = None  # set by fine-tuning strategies
    info: dict = field(default_factory=dict)  # strategy-specific facts worth recording


class Strategy(Protocol):
    name: str
    config_type: type

    def variants(self, config: Any) -> list[Variant]:
        """The runs this config asks for (most strategies: exactly one)."""

    def check_device(self, device: str) -> None:
        """Raise UserError when this strategy cannot run on ``device`` ('cpu', 'cuda', 'cuda:1', ...).

        Called before any run starts, so a comparison that cannot finish fails in a second, not after
        the other arms have run."""

    def prepare(self, ctx: "RunContext", variant: Variant) -> Prepared:
        """Load (and train, if needed) a model for this variant."""


@dataclass
class TrainingConfig:
    """Fine-tuning settings shared by the lora, qlora and full strategies."""

    epochs: float = field(default=2.0, metadata=doc("Passes over the training examples.", gt=0))
    learning_rate: float = field(default=1e-4, metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0))
    batch_size: int = field(default=8, metadata=doc("Examples per optimizer step per device (before gradient accumulation).", min=1))
    gradient_accumulation: int = field(default=1, metadata=doc("Micro-batches accumulated per optimizer step.", min=1))
    max_seq_len: int = field(default=384, metadata=doc("Longest training sequence in tokens; longer prompts are cut from the left, the answer is kept.", min=16))
    warmup_ratio: float = field(default=0.1, metadata=doc("Fraction of steps with linear learning-rate warm-up.", min=0, max=1))
    weight_decay: float = field(default=0.0, metadata=doc("AdamW weight decay.", min=0))
    gradient_checkpointing: bool = field(default=False, metadata=doc("Recompute activations in the backward pass: less memory, ~30% more compute."))
    instruction: str = field(default="task", metadata=doc(
        "System prompt the model is trained and served with: 'task' = the task's instruction, as prompting uses it; "
        "'none' = no instruction (the model learns the task from the examples; shorter prompts make training and "
        "serving cheaper, and the record shows by how much).", choices=("task", "none")))

    data_fractions: list[float] = field(default_factory=lambda: [1.0], metadata=doc(
        "Train on nested subsets of train too, one run each (e.g. [0.25, 0.5, 1.0]): the points of the learning "
        "curve the report fits to estimate how many examples the quality goal needs.", gt=0, max=1))

    def system_prompt(self, task_instruction: str) -> str | None:
        return task_instruction if self.instruction == "task" else None


def training_variants(strategy: str, name: str, config: TrainingConfig) -> list[Variant]:
    """One variant per data fraction: ``name`` on all of train, ``name-25pct`` on a quarter of it."""
    params = dict(vars(config))
    fractions = params.pop("data_fractions")
    return [Variant(strategy, name if f == 1 else f"{name}-{f * 100:g}pct", {**params, "data_fraction": f})
            for f in sorted(set(fractions))]


def training_config(cls: type, variant: Variant) -> tuple[TrainingConfig, float]:
    """The config and data fraction of one fine-tuning variant."""
    params = dict(variant.params)
    fraction = params.pop("data_fraction", 1.0)
    return cls(**params, data_fractions=[fraction]), fraction
