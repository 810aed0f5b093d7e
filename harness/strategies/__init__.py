"""The strategy registry: name -> implementation. Adding a strategy is one file plus one line here."""

from __future__ import annotations

from harness.strategies.base import Prepared, Strategy, TrainingConfig, Variant
from harness.strategies.full import FullStrategy
from harness.strategies.lora import LoraStrategy
from harness.strategies.prompting import PromptStrategy
from harness.strategies.qlora import QloraStrategy
from harness.strategies.rag import RagStrategy

FINE_TUNING = ("lora", "qlora", "full")  # the strategies that train (and so may run as several processes)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (PromptStrategy(), RagStrategy(), LoraStrategy(),
                                                        QloraStrategy(), FullStrategy())}

__all__ = ["STRATEGIES", "Prepared", "Strategy", "TrainingConfig", "Variant"]
