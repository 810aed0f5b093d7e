"""What building a training set costs: people writing or labelling examples, an LLM generating some of them,
and people reviewing what the LLM wrote.

  llm examples   = round(N x llm_generated_fraction)       human examples = N - llm examples
  human writing  = human examples x minutes_per_example / 60 x hourly_rate_usd
  LLM generation = llm examples x llm_tokens_per_example x llm_usd_per_million_tokens / 1e6
  review         = llm examples x review_fraction x review_minutes_per_example / 60 x hourly_rate_usd

This is the formula of the worked example in Learnixo's "What Is Fine-Tuning?" (2026-05-15): 1,000
examples, 5 min at $30/h, half LLM-generated at 200 tokens and $5 per million tokens -> $1,250.50, plus a
review step (that example has none: review_fraction 0 reproduces it). LLM generation counts the generated
(output) tokens only; the generation prompts are extra.

``DataCostConfig`` is the task file's ``data_cost:`` block (and ``advisor estimate``'s options): the harness keeps
the block as written, and the advisor checks it with ``data_cost_config``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.schema import build, doc


@dataclass
class DataCostConfig:
    """How a task's training examples are made, and what that costs."""

    minutes_per_example: float = field(
        default=5.0,
        metadata=doc(
            "Minutes a person spends writing or labelling one example. Default 5: the worked example in Learnixo, "
            "'What Is Fine-Tuning?' (2026-05-15); measure your own.",
            min=0,
        ),
    )
    hourly_rate_usd: float = field(
        default=30.0,
        metadata=doc("Cost of one hour of that person's time, USD. Default 30: the same worked example.", min=0),
    )
    llm_generated_fraction: float = field(
        default=0.0, metadata=doc("Share of the examples an LLM generates instead of a person (0..1).", min=0, max=1)
    )
    llm_tokens_per_example: int = field(
        default=200, metadata=doc("Tokens the LLM generates per example. Default 200: the same worked example.", min=0)
    )
    llm_usd_per_million_tokens: float = field(
        default=10.0,
        metadata=doc(
            "Price of a million generated (output) tokens, USD. Default 10: GPT-4o output tokens, OpenAI API price "
            "list as quoted by chatgptpricing.com/api (2025-03; $2.50 per million input tokens). The worked example's "
            "$5 is GPT-4o's launch input price, not its output price.",
            min=0,
        ),
    )
    review_fraction: float = field(
        default=1.0,
        metadata=doc(
            "Share of the LLM-generated examples a person reviews (0..1). Default 1: read everything a model wrote "
            "before training on it.",
            min=0,
            max=1,
        ),
    )
    review_minutes_per_example: float = field(
        default=1.0,
        metadata=doc(
            "Minutes to review one generated example. Default 1: an assumption (reading and fixing a short example "
            "takes a fraction of writing it); measure your own.",
            min=0,
        ),
    )


def data_cost_config(raw: dict[str, Any] | None, *, file: str) -> DataCostConfig:
    """A task file's ``data_cost:`` block, checked: unknown keys, types and ranges are one-line errors naming
    ``file`` and the key."""
    config: DataCostConfig = build(DataCostConfig, raw, file=file, prefix="data_cost")
    return config


@dataclass(frozen=True)
class DataCost:
    examples: int
    human_examples: int
    llm_examples: int
    human_hours: float  # writing and reviewing
    human_writing_usd: float
    llm_generation_usd: float
    review_usd: float

    @property
    def total_usd(self) -> float:
        return self.human_writing_usd + self.llm_generation_usd + self.review_usd

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_usd": self.total_usd}


def data_cost(examples: int, config: DataCostConfig | None = None) -> DataCost:
    """The cost of building ``examples`` training examples as ``config`` (default: DataCostConfig()) describes."""
    config = config or DataCostConfig()
    llm_examples = round(examples * config.llm_generated_fraction)
    human_examples = examples - llm_examples
    writing_hours = human_examples * config.minutes_per_example / 60
    review_hours = llm_examples * config.review_fraction * config.review_minutes_per_example / 60
    return DataCost(
        examples=examples,
        human_examples=human_examples,
        llm_examples=llm_examples,
        human_hours=writing_hours + review_hours,
        human_writing_usd=writing_hours * config.hourly_rate_usd,
        llm_generation_usd=llm_examples * config.llm_tokens_per_example * config.llm_usd_per_million_tokens / 1e6,
        review_usd=review_hours * config.hourly_rate_usd,
    )
