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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.task import DataCostConfig  # the task file's data_cost: block lives with the task schema


@dataclass(frozen=True)
class DataCost:
    examples: int
    human_examples: int
    llm_examples: int
    human_hours: float     # writing and reviewing
    human_writing_usd: float
    llm_generation_usd: float
    review_usd: float

    @property
    def total_usd(self) -> float:
        return self.human_writing_usd + self.llm_generation_usd + self.review_usd

    def as_dict(self) -> dict:
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
