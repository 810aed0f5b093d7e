"""Full fine-tuning: every weight trained on the same examples and format as LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    from harness.runner import RunContext


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
        from harness.training import train_on_task

        cfg, fraction = training_config(FullConfig, variant.params)
        system = cfg.system_prompt(ctx.instruction)
        model = ctx.load_model()
        train_info, model = train_on_task(ctx, model, cfg, fraction, system)  # FSDP: None off the main process

        def build(example: Example) -> list[dict[str, str]]:
            return prompts.messages(system, example)

        return Prepared(model=model, tokenizer=ctx.tokenizer, build_messages=build, train_info=train_info)
