"""Full fine-tuning: every weight trained on the same examples and format as LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness import prompts
from harness.schema import doc
from harness.strategies.base import Prepared, TrainingConfig, Variant, training_config, training_variants


@dataclass
class FullConfig(TrainingConfig):
    learning_rate: float = field(default=5e-5, metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0))


class FullStrategy:
    name = "full"
    config_type = FullConfig

    def variants(self, config: FullConfig) -> list[Variant]:
        return training_variants(self.name, "all-weights", config)

    def check_device(self, device: str) -> None:
        """Runs wherever torch does."""

    def prepare(self, ctx, variant: Variant) -> Prepared:
        from harness.training import train_on_task

        cfg, fraction = training_config(FullConfig, variant)
        system = cfg.system_prompt(ctx.instruction)
        model = ctx.load_model()
        train_info, model = train_on_task(ctx, model, cfg, fraction, system)  # FSDP: None off the main process

        def build(example):
            return prompts.messages(system, example)

        return Prepared(model=model, tokenizer=ctx.tokenizer, build_messages=build, train_info=train_info)
