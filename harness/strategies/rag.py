"""RAG: retrieve from a FAISS index of sentence-transformers embeddings and put what is found in the prompt.

With a knowledge corpus, the top-k chunks go into the user turn as numbered context. Without one
(classification, extraction), the index holds the training inputs and the k nearest labelled
examples become the in-context examples (kNN few-shot, Liu et al. 2021, "What Makes Good
In-Context Examples for GPT-3?"). Retrieval runs inside each request, so it is in the latency.

``Retrieval`` (built by ``retrieval``) is the index and the one way its hits go into a chat: the rag arm and the
fine-tuned arms served with retrieval (``harness.strategies.tuned_rag``) all build their prompts with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import catalog, prompts
from harness.corpus import Document, chunk_document, read_corpus
from harness.record import StrategyInfo
from harness.retrieval import Retriever
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
class RagConfig:
    top_k: int | list[int] = field(
        default=3,
        metadata=doc("Chunks (or nearest training examples) put into each prompt.", min=1, tunable=True),
    )
    chunk_words: int | list[int] = field(
        default=120,
        metadata=doc("Target chunk size in words when splitting the knowledge corpus.", min=10, tunable=True),
    )
    chunk_overlap: int = field(default=20, metadata=doc("Words shared by consecutive chunks.", min=0))
    embedder: str = field(
        default="all-minilm-l6-v2",
        metadata=doc(
            "sentence-transformers model: a name under `embedders` in data/catalog/models.yaml, a local dir or an "
            "HF id."
        ),
    )
    endpoints: list[str] = endpoints_field()


def rag_name(params: dict[str, Any], varied: set[str]) -> str:
    """'top-3', or 'top-3-c120' when the grid tries several chunk sizes."""
    return f"top-{params['top_k']}" + (f"-c{params['chunk_words']}" if "chunk_words" in varied else "")


class Retrieval:
    """An index over the task's knowledge corpus (or, with none, over labelled examples) and the one way what it
    finds goes into a chat: the rag arm's prompts, and the fine-tuned +rag arms' at inference and in training."""

    def __init__(self, ctx: RunContext, params: Mapping[str, Any], examples: list[Example], where: str):
        embedder = catalog.resolve_embedder(
            params["embedder"], base_dir=ctx.task.path.parent, where=f"{ctx.task.path}: {where}.embedder"
        )
        self.task, self.top_k = ctx.task, int(params["top_k"])
        self.chunks: list[Document] = []
        self.examples = examples
        if ctx.task.knowledge_path:
            words = params["chunk_words"]
            overlap = min(params["chunk_overlap"], words // 2)
            self.chunks = [c for d in read_corpus(ctx.task.knowledge_path) for c in chunk_document(d, words, overlap)]
            self.retriever = Retriever(embedder, [c.text for c in self.chunks], device=ctx.device)
            self.info = StrategyInfo(
                retrieval_mode="knowledge",
                documents=len({c.source for c in self.chunks}),
                chunks=len(self.chunks),
                embedder=embedder.shown(ctx.task.path.parent),
                top_k=self.top_k,
                chunk_words=words,
                chunk_overlap=overlap,
            )
        else:
            self.retriever = Retriever(embedder, [ex.input for ex in examples], device=ctx.device)
            self.info = StrategyInfo(
                retrieval_mode="nearest_examples",
                indexed_examples=len(examples),
                embedder=embedder.shown(ctx.task.path.parent),
                top_k=self.top_k,
            )
        rows: dict[str, set[int]] = {}
        for row, ex in enumerate(examples):
            rows.setdefault(ex.id, set()).add(row)
        self._rows_of = {key: frozenset(found) for key, found in rows.items()}

    def messages(self, system: str | None, example: Example, *, leave_out_self: bool = False) -> list[dict[str, str]]:
        """The chat for ``example`` under ``system``: the top-k chunks as numbered context in the user turn, or the
        k nearest labelled examples as prior turns. ``leave_out_self`` (a training example's own prompt): the
        indexed examples with its id are never its shots, or it would see its own answer."""
        if self.chunks:
            hits = self.retriever.search(example.input, self.top_k)
            passages = [prompts.Passage(self.chunks[i].source, self.chunks[i].text) for i, _ in hits]
            return prompts.messages(system, example, passages=passages)
        own = self._rows_of.get(example.id, frozenset()) if leave_out_self else frozenset()
        hits = self.retriever.search(example.input, self.top_k, exclude=own)
        # nearest first in the list means farthest from the question; put the nearest last
        train = self.examples
        shots = [(train[i], prompts.format_answer(self.task, train[i].target)) for i, _ in reversed(hits)]
        return prompts.messages(system, example, shots=shots)


def retrieval(
    ctx: RunContext, params: Mapping[str, Any], *, examples: list[Example] | None = None, where: str = "strategies.rag"
) -> Retrieval:
    """The task's retrieval with ``params`` (top_k, chunk_words, chunk_overlap, embedder, as ``RagConfig`` names
    them): over its knowledge corpus, else over ``examples`` (default: the run's training examples). ``where``:
    the task-file key the settings came from, for errors."""
    return Retrieval(ctx, params, ctx.train if examples is None else examples, where)


class RagStrategy:
    name = "rag"
    config_type = RagConfig
    traits = StrategyTraits(
        display_name="RAG",
        ladder_rank=Rung.RETRIEVAL,
        colour="#2ca02c",
        trains=False,
        serving_method="rag",
        labelled_examples=LabelledExamples.RETRIEVAL_INDEX,
        memory_method=None,
        utilisation_key=None,
        shardable=False,
    )

    def variants(self, config: RagConfig) -> list[Variant]:
        local = grid_variants(self.name, config, rag_name, drop=("endpoints",))
        return with_endpoints(local, config.endpoints)

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        found = retrieval(ctx, variant.params)
        system = ctx.instruction

        def build(example: Example) -> list[dict[str, str]]:
            return found.messages(system, example)

        return ctx.base_predictor(variant, build, found.info)
