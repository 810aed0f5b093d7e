"""The RAG knowledge corpus: documents from a folder of .md/.txt files or a .jsonl, split into chunks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.io import read_jsonl, read_utf8

SUFFIXES = (".md", ".txt", ".markdown")


@dataclass(frozen=True)
class Document:
    source: str  # file name (or file:line for jsonl)
    text: str


def read_corpus(path: Path) -> list[Document]:
    docs: list[Document] = []
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
            text = read_utf8(f)
            if text.strip():
                docs.append(Document(source=str(f.relative_to(path)), text=text))
    elif path.suffix == ".jsonl":
        for number, obj in read_jsonl(path, "knowledge"):
            if not isinstance(obj.get("text"), str):
                raise UserError(f"{path}:{number}: knowledge lines need a string field 'text'")
            docs.append(Document(source=str(obj.get("source") or f"{path.name}:{number}"), text=obj["text"]))
    else:
        raise UserError(f"{path}: knowledge must be a folder of .md/.txt files or a .jsonl file with a 'text' field")
    if not docs:
        raise UserError(
            f"{path}: knowledge: no non-empty .md/.txt documents found; add documents or remove the knowledge key"
        )
    return docs


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def chunk_document(doc: Document, chunk_words: int, overlap_words: int) -> list[Document]:
    """Chunks of about ``chunk_words`` words that respect paragraph boundaries where they can.

    Each chunk starts with the document's title (its first Markdown heading), so a chunk from the
    middle of a document still says what it is about; long paragraphs are split into windows
    that overlap by ``overlap_words``.
    """
    title_match = re.match(r"\s*#+\s*(.+)", doc.text)
    title = title_match.group(1).strip() if title_match else ""
    body = doc.text[title_match.end() :] if title_match else doc.text  # the title prefixes every chunk instead
    words_per_piece: list[list[str]] = []
    for para in _paragraphs(body):
        words = para.split()
        step = max(1, chunk_words - overlap_words)
        for start in range(0, max(1, len(words)), step):
            words_per_piece.append(words[start : start + chunk_words])
            if start + chunk_words >= len(words):
                break
    chunks: list[list[str]] = []
    current: list[str] = []
    for piece in words_per_piece:
        if current and len(current) + len(piece) > chunk_words:
            chunks.append(current)
            current = current[-overlap_words:] if overlap_words else []
        current = current + piece
    if current:
        chunks.append(current)
    out = []
    for words in chunks:
        text = f"{title}: {' '.join(words)}" if title else " ".join(words)
        out.append(Document(source=doc.source, text=text))
    return out
