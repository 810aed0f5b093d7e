"""The fine-tuned arms served with retrieval (lora+rag, full+rag), on the tiny random Llama: they retrieve exactly
as the rag arm does, train on plain examples or (train_with_context) RAFT-style, and never run by default."""

from __future__ import annotations

import json
from functools import partial

import pytest

from harness.errors import UserError
from harness.runner import RunContext
from harness.strategies import STRATEGIES, default_strategies
from harness.strategies.rag import RagConfig, retrieval
from harness.strategies.tuned_rag import LoraRagConfig, retrieval_params
from harness.task import load_examples, load_task
from tests.conftest import compare_in_process as compare


def _with_arms(task_path, arms: str) -> None:
    body = task_path.read_text()
    task_path.write_text(body.replace("strategies:\n", "strategies:\n" + arms, 1))


def _records(out, results) -> dict[str, dict]:
    return {r["strategy"]: json.loads((out / r["record"]).read_text()) for r in results["runs"]}


def _prompt_tokens(record: dict) -> list[int]:
    return [p["prompt_tokens"] for p in record["predictions"]]


def test_with_a_corpus_both_arms_answer_with_the_rag_arms_chunks(qa_task, tmp_path):
    _with_arms(
        qa_task,
        "  lora+rag: {rank: 2, learning_rate: 5.0e-4, min_optimizer_steps: 0, epochs: 1, batch_size: 2,\n"
        "     max_seq_len: 256, train_with_context: true}\n"
        "  full+rag: {learning_rate: 5.0e-5, min_optimizer_steps: 0, epochs: 1, batch_size: 2, max_seq_len: 256}\n",
    )
    out = tmp_path / "out"
    results, _ = compare(qa_task, out, only=["rag", "lora+rag", "full+rag"])
    assert [r["status"] for r in results["runs"]] == ["ok", "ok", "ok"], [r["error"] for r in results["runs"]]
    records = _records(out, results)
    for name in ("lora+rag", "full+rag"):
        info = records[name]["strategy_info"]
        # the rag arm's settings (top_k: 1, chunk_words: 30), its corpus and its embedder
        assert info["retrieval_mode"] == "knowledge" and info["documents"] == 3
        assert (info["top_k"], info["chunk_words"]) == (1, 30)
        assert info["chunks"] == records["rag"]["strategy_info"]["chunks"]
        assert info["embedder"] == records["rag"]["strategy_info"]["embedder"]
        # the same prompt for every test question as the rag arm's
        assert _prompt_tokens(records[name]) == _prompt_tokens(records["rag"])
    assert records["lora+rag"]["strategy_info"]["merged_for_inference"] is True
    assert records["full+rag"]["strategy_info"]["merged_for_inference"] is None
    # trained with its retrieved context, lora+rag saw longer sequences than full+rag on the same examples
    lora, full = records["lora+rag"]["train_info"], records["full+rag"]["train_info"]
    assert lora["examples"] == full["examples"] and lora["tokens_trained"] > full["tokens_trained"]


def test_without_a_corpus_both_arms_take_the_nearest_examples_as_shots(classification_task, tmp_path):
    _with_arms(
        classification_task,
        "  lora+rag: {rank: 4, learning_rate: 5.0e-4, min_optimizer_steps: 0, epochs: 1,\n"
        "    batch_size: 4, train_with_context: true}\n"
        "  full+rag: {learning_rate: 5.0e-5, min_optimizer_steps: 0, epochs: 1, batch_size: 4, top_k: 1}\n",
    )
    out = tmp_path / "out"
    results, _ = compare(classification_task, out, only=["rag", "lora+rag", "full+rag"])
    assert sorted((r["strategy"], r["variant"], r["status"]) for r in results["runs"]) == [
        ("full+rag", "all-weights", "ok"),
        ("lora+rag", "r4", "ok"),
        ("rag", "top-2", "ok"),
    ]
    records = _records(out, results)
    lora, full = records["lora+rag"]["strategy_info"], records["full+rag"]["strategy_info"]
    assert lora["retrieval_mode"] == full["retrieval_mode"] == "nearest_examples"
    assert lora["indexed_examples"] == 10 and (lora["top_k"], full["top_k"]) == (2, 1)  # 12 less 2 validation
    assert _prompt_tokens(records["lora+rag"]) == _prompt_tokens(records["rag"])
    # the lora arm's adapters, on every linear layer: q,k,v,o 448r and gate, up, down 576r per layer
    assert records["lora+rag"]["train_info"]["trainable_params"] == 2 * (448 + 576) * 4


@pytest.fixture
def qa_ctx(qa_task):
    task = load_task(qa_task)
    data = load_examples(task)
    return RunContext(task=task, data=data, train=data.train, test=data.test, device="cpu", seed=0, progress=False)


def _texts(ctx, prompt, cfg) -> list[str]:
    from harness.training import build_items

    items, labelled = build_items(ctx, prompt, cfg)
    return [ctx.tokenizer.decode(item.input_ids) for item in items[:labelled]]


def test_train_with_context_puts_the_retrieved_chunks_into_each_training_prompt(qa_ctx):
    params = retrieval_params({}, {"top_k": 1, "chunk_words": 30})
    found = retrieval(qa_ctx, params)
    cfg = LoraRagConfig(max_seq_len=256)
    system = qa_ctx.instruction
    plain = _texts(qa_ctx, system, cfg)
    raft = _texts(qa_ctx, partial(found.messages, system, leave_out_self=True), cfg)
    assert len(plain) == len(raft) == 3
    assert not any("Context:" in text for text in plain)
    # each question with the chunk retrieved for it (the first training question is about annual leave)
    assert all("Context:\n[1] (" in text for text in raft)
    assert "27 days of annual leave" in raft[0] and "How many days of annual leave?" in raft[0]


def test_nearest_example_training_prompts_never_hold_the_example_itself(classification_task):
    task = load_task(classification_task)
    data = load_examples(task)
    ctx = RunContext(task=task, data=data, train=data.train, test=data.test, device="cpu", seed=0, progress=False)
    found = retrieval(ctx, {**vars(RagConfig()), "top_k": 3})
    for example in ctx.train:
        shots = [m["content"] for m in found.messages(None, example, leave_out_self=True) if m["role"] == "user"][:-1]
        assert len(shots) == 3 and example.input not in shots
    # at inference nothing is left out: a training input asked again finds itself nearest (the last shot)
    example = ctx.train[0]
    assert found.messages(None, example)[-3]["content"] == example.input
    texts = _texts(ctx, partial(found.messages, None, leave_out_self=True), LoraRagConfig())
    for example, text in zip(ctx.train, texts, strict=True):
        assert text.count(example.input) == 1  # its own question, once: never as a shot


def test_retrieval_settings_left_unset_come_from_the_rag_arm_else_rags_defaults():
    own = {"top_k": 5, "chunk_words": None, "embedder": None, "rank": 8}
    rag = {"top_k": 2, "chunk_words": 60, "chunk_overlap": 10, "embedder": "e5", "endpoints": ["x"]}
    expected = {"top_k": 5, "chunk_words": 60, "chunk_overlap": 10, "embedder": "e5", "rank": 8}
    assert retrieval_params(own, rag) == expected
    defaults = RagConfig()
    assert retrieval_params(own, None) == {
        "top_k": 5,
        "chunk_words": defaults.chunk_words,
        "chunk_overlap": defaults.chunk_overlap,
        "embedder": defaults.embedder,
        "rank": 8,
    }


def test_the_combined_arms_run_only_when_listed(classification_task):
    assert default_strategies() == ["prompt", "rag", "lora", "full"]
    assert list(STRATEGIES)[-2:] == ["lora+rag", "full+rag"]
    assert STRATEGIES["lora+rag"].traits.ladder_rank > STRATEGIES["full"].traits.ladder_rank
    assert STRATEGIES["full+rag"].traits.ladder_rank > STRATEGIES["lora+rag"].traits.ladder_rank
    _with_arms(classification_task, "  lora+rag: {top_k: 0}\n")
    with pytest.raises(UserError, match=r"strategies\.lora\+rag\.top_k: 0 is below the minimum 1"):
        load_task(classification_task)
