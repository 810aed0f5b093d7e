"""Prompting: the base model with the task's instruction, 0-shot or k-shot (examples fixed by the seed)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from harness import prompts
from harness.schema import doc
from harness.strategies.base import Prepared, Variant


@dataclass
class PromptConfig:
    shots: list[int] = field(default_factory=lambda: [0, 4], metadata=doc(
        "Numbers of in-context examples to try, one run each; examples are drawn from train with the seed "
        "and are the same for every test input.", min=0))


def pick_shots(train: list, k: int, seed: int) -> list:
    """k training examples, the same for a given seed (spread over labels would leak test priors; plain sample)."""
    return random.Random(seed).sample(train, min(k, len(train)))


class PromptStrategy:
    name = "prompt"
    config_type = PromptConfig

    def variants(self, config: PromptConfig) -> list[Variant]:
        return [Variant(self.name, f"{k}-shot", {"shots": k}) for k in dict.fromkeys(config.shots)]

    def check_device(self, device: str) -> None:
        """Runs wherever torch does."""

    def prepare(self, ctx, variant: Variant) -> Prepared:
        shots = [(ex, prompts.format_answer(ctx.task, ex.target))
                 for ex in pick_shots(ctx.train, variant.params["shots"], ctx.seed)]

        def build(example):
            return prompts.messages(ctx.instruction, example, shots=shots)

        return Prepared(model=ctx.load_model(), tokenizer=ctx.tokenizer, build_messages=build,
                        info={"shot_ids": [ex.id for ex, _ in shots]})
