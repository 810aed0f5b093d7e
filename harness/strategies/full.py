"""Full fine-tuning: every weight trained on the same examples and format as LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import prompts
from harness.schema import doc
from harness.spec import Example
from harness.strategies.base import (
    LabelledExamples,
    Prepared,
    Rung,
    StrategyTraits,
    TrainingConfig,
    Variant,
    lr_label,
    training_config,
    training_variants,
)

if TYPE_CHECKING:
    from harness.record import TrainInfo
    from harness.runner import RunContext
    from harness.training import Prompt


@dataclass
class FullConfig(TrainingConfig):
    # the default grid: 5e-5 first (the usual full fine-tuning rate of small models), then 2e-5 and 1e-4
    learning_rate: float | list[float] = field(
        default_factory=lambda: [5e-5, 2e-5, 1e-4],
        metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0, tunable=True),
    )


class FullStrategy:
    name = "full"
    config_type = FullConfig
    traits = StrategyTraits(
        display_name="full fine-tuning",
        ladder_rank=Rung.FULL,
        colour="#c5221f",
        trains=True,
        serving_method="fine-tuned",
        labelled_examples=LabelledExamples.TRAINING_SET,
        memory_method="full",
        utilisation_key="full",
        shardable=True,
    )

    def variants(self, config: FullConfig) -> list[Variant]:
        return training_variants(
            self.name, config, lambda p, axes: "all-weights" + (f"-{lr_label(p)}" if "learning_rate" in axes else "")
        )

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        cfg, fraction = training_config(FullConfig, variant.params)
        system = cfg.system_prompt(ctx.instruction)
        train_info, model = train_full(ctx, cfg, fraction, system)

        def build(example: Example) -> list[dict[str, str]]:
            return prompts.messages(system, example)

        return Prepared(model=model, tokenizer=ctx.tokenizer, build_messages=build, train_info=train_info)


def train_full(
    ctx: RunContext, cfg: FullConfig, fraction: float, prompt: Prompt, examples: list[Example] | None = None
) -> tuple[TrainInfo, Any]:
    """Every weight trained on the task's examples under ``prompt`` (harness.training.build_items): (train info,
    the trained model; under FSDP None off the main process). The full and full+rag arms train this way."""
    from harness.training import train_on_task

    return train_on_task(ctx, ctx.load_model(), cfg, fraction, prompt, examples)
