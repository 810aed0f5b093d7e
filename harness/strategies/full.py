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
    training_config,
    training_variants,
)

if TYPE_CHECKING:
    from harness.runner import RunContext


@dataclass
class FullConfig(TrainingConfig):
    learning_rate: float = field(
        default=5e-5, metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0)
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
        return training_variants(self.name, "all-weights", config)

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        from harness.training import train_on_task

        cfg, fraction = training_config(FullConfig, variant.params)
        system = cfg.system_prompt(ctx.instruction)
        model = ctx.load_model()
        train_info, model = train_on_task(ctx, model, cfg, fraction, system)  # FSDP: None off the main process

        def build(example: Example) -> list[dict[str, str]]:
            return prompts.messages(system, example)

        return Prepared(model=model, tokenizer=ctx.tokenizer, build_messages=build, train_info=train_info)
