"""Full fine-tuning: every weight trained on the same examples and format as LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness import prompts
from harness.schema import doc
from harness.strategies.base import Prepared, TrainingConfig, Variant


@dataclass
class FullConfig(TrainingConfig):
    learning_rate: float = field(default=5e-5, metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0))


class FullStrategy:
    name = "full"
    config_type = FullConfig

    def variants(self, config: FullConfig) -> list[Variant]:
        return [Variant(self.name, "all-weights", dict(vars(config)))]

    def prepare(self, ctx, variant: Variant) -> Prepared:
        from harness.training import build_items, finetune

        cfg = FullConfig(**variant.params)
        system = cfg.system_prompt(ctx.instruction)
        model = ctx.load_model()
        train_info = finetune(model, ctx.tokenizer, build_items(ctx, system, cfg), cfg,
                              device=ctx.device, seed=ctx.seed, progress=ctx.progress)

        def build(example):
            return prompts.messages(system, example)

        return Prepared(model=model, tokenizer=ctx.tokenizer, build_messages=build, train_info=train_info)
