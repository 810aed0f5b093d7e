"""Integration: the real packaged SmolLM2-135M and MiniLM on the shipped tasks, a handful of examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.compare import run_compare
from harness.compare_options import CompareOptions
from harness.task import load_task
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

INTENTS = ROOT / "data" / "tasks" / "support-intents.yaml"
HANDBOOK = ROOT / "data" / "tasks" / "quillfeather-handbook.yaml"


def small_copy(task: Path, folder: Path, strategies: dict) -> Path:
    """The shipped task with its data (absolute paths) and a few cheap strategies."""
    spec = yaml.safe_load(task.read_text())
    spec["data"].update(train=str(task.parent / spec["data"]["train"]), test=str(task.parent / spec["data"]["test"]))
    spec["strategies"] = strategies
    path = folder / task.name
    path.write_text(yaml.safe_dump(spec))
    return path


def test_packaged_model_runs_prompt_rag_and_lora(tmp_path):
    task = small_copy(
        INTENTS,
        tmp_path,
        {
            "prompt": {"shots": [0, 4]},
            "rag": {"top_k": 4},
            "lora": {"rank": 8, "learning_rate": 1e-3, "epochs": 1, "instruction": "none", "min_optimizer_steps": 0},
        },
    )
    run_compare(
        load_task(task),
        CompareOptions(out_dir=tmp_path / "out", only=["prompt", "rag", "lora"], limit=3, progress=False),
        isolate=False,
        log=lambda _: None,
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    runs = {(r["strategy"], r["variant"]): r for r in results["runs"]}
    # a quick look (--limit): each arm's first setting, no tuning trials
    assert set(runs) == {("prompt", "0-shot"), ("rag", "top-4"), ("lora", "r8")}
    for key, row in runs.items():
        assert row["status"] == "ok", (key, row["error"])
        assert row["n_examples"] == 3 and row["latency_ms_p50"] > 0
    # 4 retrieved shots cost prompt tokens: RAG's prompt is much longer than 0-shot prompting's
    assert runs[("rag", "top-4")]["input_tokens_mean"] > 2 * runs[("prompt", "0-shot")]["input_tokens_mean"]
    lora = json.loads((tmp_path / "out" / runs[("lora", "r8")]["record"]).read_text())
    # SmolLM2-135M: 30 layers, hidden 576, kv dim 192, MLP 1536; r=8 on every linear layer (the default):
    # q,k,v,o 8*(1152 + 2*768 + 1152) and gate, up, down 3*8*(576 + 1536) per layer
    assert lora["train_info"]["trainable_params"] == 30 * 8 * (1152 + 768 + 768 + 1152 + 3 * 2112)
    assert lora["train_info"]["total_params"] == 134_515_008 + lora["train_info"]["trainable_params"]
    assert results["task"]["model"]["source"] == "package"


def test_retrieval_finds_the_source_document_for_most_handbook_questions():
    """RAG's premise on the shipped corpus: the top-3 chunks contain the question's source document."""
    from harness.catalog import resolve_embedder
    from harness.corpus import chunk_document, read_corpus
    from harness.io import read_jsonl
    from harness.retrieval import Retriever
    from harness.strategies.base import grid

    task = load_task(HANDBOOK)
    config = task.strategy_configs["rag"]
    words = grid(config)[0]["chunk_words"]  # the task's first grid point
    chunks = [c for d in read_corpus(task.knowledge_path) for c in chunk_document(d, words, config.chunk_overlap)]
    retriever = Retriever(resolve_embedder(config.embedder), [c.text for c in chunks])
    rows = [obj for _, obj in read_jsonl(task.test_path, "test")]
    hits = sum(any(chunks[i].source == row["source"] for i, _ in retriever.search(row["question"], 3)) for row in rows)
    assert hits / len(rows) >= 0.7, f"retrieval hit rate {hits}/{len(rows)}"
