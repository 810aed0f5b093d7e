"""Fine-tuned models served with retrieval: ``lora+rag`` and ``full+rag``.

Each trains as its closed-book counterpart does (``train_lora``, ``train_full``: same settings, same items) and
answers with retrieval exactly as the rag arm prompts (``harness.strategies.rag.retrieval``): the same corpus,
chunking and embedder, the top-k chunks as numbered context in the user turn; with no corpus, the nearest
labelled examples as in-context shots. So the comparison separates what retrieval adds to a fine-tuned model
from what fine-tuning adds to retrieval.

By default a +rag arm trains on the examples alone, as lora/full do. ``train_with_context`` trains RAFT-style
(Zhang et al. 2024, "RAFT: Adapting Language Model to Domain Specific RAG"): each training prompt holds what
retrieval finds for that example's input, built by the same function as at inference, so the model learns to
read (and to ignore the distractors among) the retrieved context it will be served with.

Neither arm runs by default (``StrategyTraits.runs_by_default``): they combine two arms a first comparison
already has; a task lists them to run them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from harness.record import StrategyInfo, TrainInfo
from harness.schema import doc
from harness.spec import Example, Task
from harness.strategies.base import (
    Prepared,
    Rung,
    StrategyTraits,
    TrainingConfig,
    Variant,
    grid,
    training_config,
)
from harness.strategies.full import FullConfig, FullStrategy, train_full
from harness.strategies.lora import LoraConfig, LoraStrategy, train_lora
from harness.strategies.rag import RagConfig, retrieval

if TYPE_CHECKING:
    from harness.runner import RunContext
    from harness.training import Prompt

# The rag arm's settings a +rag arm shares (the rest of RagConfig, its endpoints, is the rag arm's own)
RETRIEVAL_KEYS = ("top_k", "chunk_words", "chunk_overlap", "embedder")


def retrieval_params(params: Mapping[str, Any], rag_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` with each retrieval setting left None taken from the rag arm's ``rag_params``, else from
    ``RagConfig``'s defaults: a +rag arm retrieves exactly as the task's rag arm unless told otherwise."""
    defaults = RagConfig()
    shared = {key: getattr(defaults, key) for key in RETRIEVAL_KEYS}
    shared.update({key: rag_params[key] for key in RETRIEVAL_KEYS if rag_params and rag_params.get(key) is not None})
    return {**params, **{key: shared[key] for key in RETRIEVAL_KEYS if params.get(key) is None}}


def rag_settings(task: Task) -> dict[str, Any] | None:
    """The task's rag arm's first grid point (its settings before any tuning), or None without a rag arm."""
    rag = task.strategy_configs.get("rag")
    return {**vars(rag), **grid(rag)[0]} if rag is not None else None


def inherits_retrieval(variant: Variant) -> bool:
    """A +rag variant with retrieval settings left to the rag arm's choice."""
    return any(key in variant.params and variant.params[key] is None for key in RETRIEVAL_KEYS)


def fill_retrieval(variant: Variant, chosen_rag: Mapping[str, Any] | None, task: Task) -> Variant:
    """A +rag variant with its unset retrieval settings filled in - from the rag arm's chosen setting when it ran,
    else from its first grid point - so that they are in its config hash. Other variants unchanged."""
    if not inherits_retrieval(variant):
        return variant
    return dataclasses.replace(variant, params=retrieval_params(variant.params, chosen_rag or rag_settings(task)))


_RAG_FIELDS = {f.name: f for f in dataclasses.fields(RagConfig)}


def _rag_setting(key: str) -> Any:
    """Retrieval setting ``key`` as the rag arm documents and checks it, None by default: the rag arm's value."""
    rag = _RAG_FIELDS[key]
    meta = dict(rag.metadata)
    inherited = f"Unset: the task's rag arm's (strategies.rag.{key}), else rag's default ({rag.default!r})."
    text = f"{meta.pop('doc')} {inherited}"
    return field(default=None, metadata=doc(text, **meta))


@dataclass
class RetrievalSettings:
    """The +rag arms' retrieval settings, after their training config's fields."""

    top_k: int | None = _rag_setting("top_k")
    chunk_words: int | None = _rag_setting("chunk_words")
    chunk_overlap: int | None = _rag_setting("chunk_overlap")
    embedder: str | None = _rag_setting("embedder")
    train_with_context: bool = field(
        default=False,
        metadata=doc(
            "Train RAFT-style (Zhang et al. 2024): each training example's prompt holds what retrieval finds for its "
            "input, as at inference - over a corpus its top_k chunks (distractors included), without one its nearest "
            "other training examples as shots (never itself). Raise max_seq_len to hold that context: longer "
            "prompts are cut from the left. false: train on the examples alone, as the closed-book arm does."
        ),
    )


@dataclass
class LoraRagConfig(RetrievalSettings, LoraConfig):
    """The lora arm's settings and the retrieval's. Not among the default arms: list `lora+rag` under `strategies`
    to run it."""


@dataclass
class FullRagConfig(RetrievalSettings, FullConfig):
    """The full arm's settings and the retrieval's. Not among the default arms: list `full+rag` under `strategies`
    to run it."""


class _TunedRag:
    """A fine-tuned arm served with retrieval; the subclasses say which training."""

    name: str
    config_type: type[TrainingConfig]
    traits: StrategyTraits
    closed_book: LoraStrategy | FullStrategy  # the arm it trains as (its variants, its training)
    train: Callable[..., tuple[TrainInfo, Any]]  # train_lora or train_full
    merged_for_inference: bool | None

    def variants(self, config: Any) -> list[Variant]:
        # the closed-book arm's variants (one per data fraction), their params holding the retrieval settings too
        return [dataclasses.replace(v, strategy=self.name) for v in self.closed_book.variants(config)]

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        from harness.training import training_subset

        # compare fills the settings left unset from the rag arm's chosen setting before hashing; a variant run
        # on its own takes the rag arm's first grid point
        params = retrieval_params(variant.params, rag_settings(ctx.task))
        cfg, fraction = training_config(self.config_type, params)
        examples = training_subset(ctx.train, fraction, ctx.seed) if fraction < 1 else ctx.train
        # without a corpus the index holds the examples this run trained on: a learning-curve point consumes
        # only its own share of the labelled data
        where = f"strategies.{self.name}" if variant.params.get("embedder") else "strategies.rag"
        found = retrieval(ctx, params, examples=examples, where=where)
        system = cfg.system_prompt(ctx.instruction)
        prompt: Prompt = system
        if params["train_with_context"]:
            prompt = partial(found.messages, system, leave_out_self=True)
        train_info, model = self.train(ctx, cfg, fraction, prompt, examples)

        def build(example: Example) -> list[dict[str, str]]:
            return found.messages(system, example)

        info: StrategyInfo = dataclasses.replace(found.info, merged_for_inference=self.merged_for_inference)
        return Prepared(model=model, tokenizer=ctx.tokenizer, build_messages=build, train_info=train_info, info=info)


class LoraRagStrategy(_TunedRag):
    """The lora arm's adapters (merged for serving), answering with the rag arm's retrieval: top-k corpus chunks
    as context, or the nearest training examples as shots. `train_with_context: true` trains RAFT-style on
    prompts that hold the retrieved context. Not in the default arms: list it under `strategies`."""

    name = "lora+rag"
    config_type = LoraRagConfig
    traits = dataclasses.replace(
        LoraStrategy.traits,
        display_name="LoRA + RAG",
        ladder_rank=Rung.ADAPTER_RETRIEVAL,
        colour="#8c564b",
        serving_method="rag",
        runs_by_default=False,
    )
    closed_book = LoraStrategy()
    train = staticmethod(train_lora)
    merged_for_inference = True


class FullRagStrategy(_TunedRag):
    """The full arm's fine-tuned weights, answering with the rag arm's retrieval: top-k corpus chunks as context,
    or the nearest training examples as shots. `train_with_context: true` trains RAFT-style on prompts that hold
    the retrieved context. Not in the default arms: list it under `strategies`."""

    name = "full+rag"
    config_type = FullRagConfig
    traits = dataclasses.replace(
        FullStrategy.traits,
        display_name="full fine-tuning + RAG",
        ladder_rank=Rung.FULL_RETRIEVAL,
        colour="#9467bd",
        serving_method="rag",
        runs_by_default=False,
    )
    closed_book = FullStrategy()
    train = staticmethod(train_full)
    merged_for_inference = None
