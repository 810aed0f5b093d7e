"""RAG: retrieve from a FAISS index of sentence-transformers embeddings and put what is found in the prompt.

With a knowledge corpus, the top-k chunks go into the user turn as numbered context. Without one
(classification, extraction), the index holds the training inputs and the k nearest labelled
examples become the in-context examples (kNN few-shot, Liu et al. 2021, "What Makes Good
In-Context Examples for GPT-3?"). Retrieval runs inside each request, so it is in the latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import catalog, prompts
from harness.corpus import chunk_document, read_corpus
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
        p = variant.params
        embedder = catalog.resolve_embedder(
            p["embedder"], base_dir=ctx.task.path.parent, where=f"{ctx.task.path}: strategies.rag.embedder"
        )
        k = p["top_k"]
        if ctx.task.knowledge_path:
            chunks = [
                c
                for d in read_corpus(ctx.task.knowledge_path)
                for c in chunk_document(d, p["chunk_words"], min(p["chunk_overlap"], p["chunk_words"] // 2))
            ]
            retriever = Retriever(embedder, [c.text for c in chunks], device=ctx.device)

            def build(example: Example) -> list[dict[str, str]]:
                hits = retriever.search(example.input, k)
                passages = [prompts.Passage(chunks[i].source, chunks[i].text) for i, _ in hits]
                return prompts.messages(ctx.instruction, example, passages=passages)

            info = StrategyInfo(
                retrieval_mode="knowledge",
                documents=len({c.source for c in chunks}),
                chunks=len(chunks),
                embedder=embedder.shown(),
            )
        else:
            train = ctx.train
            retriever = Retriever(embedder, [ex.input for ex in train], device=ctx.device)

            def build(example: Example) -> list[dict[str, str]]:
                # nearest first in the list means farthest from the question; put the nearest last
                hits = retriever.search(example.input, k)
                shots = [(train[i], prompts.format_answer(ctx.task, train[i].target)) for i, _ in reversed(hits)]
                return prompts.messages(ctx.instruction, example, shots=shots)

            info = StrategyInfo(
                retrieval_mode="nearest_examples", indexed_examples=len(train), embedder=embedder.shown()
            )
        return ctx.base_predictor(variant, build, info)
