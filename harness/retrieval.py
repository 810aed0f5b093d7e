"""Dense retrieval: sentence-transformers embeddings in a FAISS inner-product index (cosine on unit vectors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.catalog import ModelRef

if TYPE_CHECKING:
    import numpy as np


class Retriever:
    def __init__(self, embedder: ModelRef, texts: list[str], *, device: str = "cpu"):
        import faiss
        from sentence_transformers import SentenceTransformer

        # sentence-transformers wants a str path (a pathlib.Path raises TypeError)
        self.model = SentenceTransformer(str(embedder.location), device="cuda" if device.startswith("cuda") else "cpu")
        vectors = self.embed(texts)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        self.size = len(texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np  # deferred: 80 ms that `advisor estimate`, `validate` and `report` never need

        vectors = self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype="float32")

    def search(self, query: str, k: int, *, exclude: frozenset[int] = frozenset()) -> list[tuple[int, float]]:
        """(row, cosine similarity) of the k nearest texts, best first."""
        scores, rows = self.index.search(self.embed([query]), min(self.size, k + len(exclude)))
        hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0 and int(r) not in exclude]
        return hits[:k]
