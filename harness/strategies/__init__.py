"""The strategy registry: name -> implementation, each with its traits (``StrategyTraits``).

Adding a strategy: its file here (config dataclass, traits, ``variants``, ``prepare``), one line in
``STRATEGIES``, and, if it trains, its utilisation default in data/catalog/utilisation.yaml. Nothing else keeps a
table keyed by strategy name. No torch import here or in the strategy modules (their ``prepare`` imports it), so
the advisor reads the traits without it.
"""

from __future__ import annotations

from harness.errors import UserError
from harness.schema import closest
from harness.strategies.base import Prepared, Strategy, StrategyTraits, TrainingConfig, Variant, unavailable_reason
from harness.strategies.full import FullStrategy
from harness.strategies.lora import LoraStrategy
from harness.strategies.prompting import PromptStrategy
from harness.strategies.qlora import QloraStrategy
from harness.strategies.rag import RagStrategy
from harness.strategies.tuned_rag import FullRagStrategy, LoraRagStrategy

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        PromptStrategy(),
        RagStrategy(),
        LoraStrategy(),
        QloraStrategy(),
        FullStrategy(),
        LoraRagStrategy(),
        FullRagStrategy(),
    )
}


def traits(name: str) -> StrategyTraits:
    """A registered strategy's traits; an unknown name (say, in a results.json from another version) is a
    one-line error."""
    if name not in STRATEGIES:
        raise UserError(f"strategy '{name}': unknown{closest(name, STRATEGIES)}; registered: {', '.join(STRATEGIES)}")
    return STRATEGIES[name].traits


def default_strategies() -> list[str]:
    """The strategies a task runs when its file lists none: every one that runs on any machine (so not QLoRA,
    which needs a CUDA GPU and bitsandbytes) and is not marked to run only when listed (lora+rag, full+rag), in
    registry order."""
    return [
        name
        for name, s in STRATEGIES.items()
        if s.traits.runs_by_default and set(s.traits.devices) >= {"cpu", "cuda"} and not s.traits.packages
    ]


def check_device(name: str, device: str) -> None:
    """Raise UserError when strategy ``name`` cannot run on ``device``: compare calls it for every planned strategy
    before any run starts, so a comparison that cannot finish fails in a second, not after the other arms."""
    reason = unavailable_reason(name, traits(name), device)
    if reason:
        raise UserError(reason)


__all__ = [
    "STRATEGIES",
    "Prepared",
    "Strategy",
    "StrategyTraits",
    "TrainingConfig",
    "Variant",
    "check_device",
    "default_strategies",
    "traits",
]
