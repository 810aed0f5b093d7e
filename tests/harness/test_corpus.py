"""Reading and chunking a knowledge corpus, and retrieving from it."""

import pytest

from harness.corpus import Document, chunk_document, read_corpus
from harness.errors import UserError


def test_chunks_respect_size_and_carry_the_title():
    text = "# Leave policy\n\n" + "\n\n".join(" ".join(f"w{p}_{i}" for i in range(40)) for p in range(5))
    chunks = chunk_document(Document("leave.md", text), chunk_words=60, overlap_words=10)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.text.startswith("Leave policy")
        assert len(chunk.text.split()) <= 60 + 3 + 40  # title + one paragraph may overflow by < a paragraph
    all_words = " ".join(c.text for c in chunks)
    assert "w4_39" in all_words and "w0_0" in all_words  # nothing lost


def test_read_corpus_folder_and_errors(tmp_path):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "a.md").write_text("# A\n\nalpha", encoding="utf-8")
    (tmp_path / "kb" / "skip.bin").write_bytes(b"\x00\x01")
    docs = read_corpus(tmp_path / "kb")
    assert [d.source for d in docs] == ["a.md"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no non-empty"):
        read_corpus(tmp_path / "empty")


def test_retriever_finds_the_right_document():
    from harness.catalog import resolve_embedder
    from harness.retrieval import Retriever
    from tests.conftest import HANDBOOK

    texts = list(HANDBOOK.values())
    retriever = Retriever(resolve_embedder("all-minilm-l6-v2"), texts)
    ((row, score),) = retriever.search("How much does a new badge cost?", 1)
    assert texts[row] == HANDBOOK["badges.md"] and 0 < score <= 1.0001
    hits = retriever.search("annual leave days", 2, exclude={0})
    assert all(r != 0 for r, _ in hits) and len(hits) == 2
