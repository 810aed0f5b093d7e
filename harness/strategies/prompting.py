"""Prompting: the base model with the task's instruction, 0-shot or k-shot (examples fixed by the seed)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import prompts
from harness.record import StrategyInfo
from harness.schema import doc
from harness.spec import Example
from harness.strategies.base import (
    LabelledExamples,
    Prepared,
    Rung,
    StrategyTraits,
    Variant,
    endpoints_field,
    grid_variants,
    with_endpoints,
)

if TYPE_CHECKING:
    from harness.runner import RunContext


@dataclass
class PromptConfig:
    shots: int | list[int] = field(
        default_factory=lambda: [0, 4],
        metadata=doc(
            "Numbers of in-context examples to try; examples are drawn from train with the seed and are the same "
            "for every test input.",
            min=0,
            tunable=True,
        ),
    )
    instruction: str | list[str] | None = field(
        default=None,
        metadata=doc(
            "Instructions (jinja2 templates, like the task's `instruction`) to try instead of the task's; null: the "
            "task's.",
            tunable=True,
        ),
    )
    endpoints: list[str] = endpoints_field()


def pick_shots(train: list[Example], k: int, seed: int) -> list[Example]:
    """k training examples, the same for a given seed (spread over labels would leak test priors; plain sample)."""
    return random.Random(seed).sample(train, min(k, len(train)))


class PromptStrategy:
    name = "prompt"
    config_type = PromptConfig
    traits = StrategyTraits(
        display_name="prompting",
        ladder_rank=Rung.PROMPT,
        colour="#1f77b4",
        trains=False,
        serving_method="prompt",
        labelled_examples=LabelledExamples.SHOTS,
        memory_method=None,
        utilisation_key=None,
        shardable=False,
    )

    def variants(self, config: PromptConfig) -> list[Variant]:
        instructions = config.instruction if isinstance(config.instruction, list) else [config.instruction]

        def name(params: dict[str, Any], axes: set[str]) -> str:
            number = instructions.index(params["instruction"]) + 1
            return f"{params['shots']}-shot" + (f"-instruction{number}" if "instruction" in axes else "")

        return with_endpoints(grid_variants(self.name, config, name, drop=("endpoints",)), config.endpoints)

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        shots = [
            (ex, prompts.format_answer(ctx.task, ex.target))
            for ex in pick_shots(ctx.train, variant.params["shots"], ctx.seed)
        ]

        template = variant.params.get("instruction")
        instruction = ctx.instruction if template is None else prompts.render_template(ctx.task, ctx.data, template)

        def build(example: Example) -> list[dict[str, str]]:
            return prompts.messages(instruction, example, shots=shots)

        return ctx.base_predictor(variant, build, StrategyInfo(shot_ids=[ex.id for ex, _ in shots]))
