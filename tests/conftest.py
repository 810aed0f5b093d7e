"""Shared fixtures: a tiny random-weight Llama (no download) and small task folders written per test."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


TOKENIZER_COPY = ROOT / "tests" / "data" / "smollm2-tokenizer"


def smollm2_tokenizer_dir(target: Path) -> Path:
    """SmolLM2-135M-Instruct's tokenizer and chat template, from the copy in tests/data (saved from the packaged
    GGUF; tokenizer.json gzipped): the tiny test model needs no model package, so the tests run on a GPU machine
    where the packaged model is not installed (test_tokenizer_copy_matches_the_packaged_model keeps it honest)."""
    import gzip
    import shutil

    for f in TOKENIZER_COPY.iterdir():
        if f.suffix == ".gz":
            (target / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
        else:
            shutil.copy(f, target / f.name)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 64-wide Llama with random weights and SmolLM2's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(tmp_path_factory.mktemp("tokenizer")))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


SERVER_KEY_ENV = "ADVISOR_TEST_SERVER_KEY"


@pytest.fixture(scope="session")
def llama_server():
    """``advisor serve`` on the packaged GGUF model (a subprocess on a free port, one thread), requiring a random
    canary key passed only in $ADVISOR_TEST_SERVER_KEY: a ``harness.serve.RunningServer`` (base_url, api_key,
    api_key_env, model, process, stdout(), stderr())."""
    from harness.serve import start_server

    key = "sk-canary-" + secrets.token_hex(12)
    with start_server(api_key_env=SERVER_KEY_ENV, env={**os.environ, SERVER_KEY_ENV: key}, n_threads=1) as server:
        yield server


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


CLASSIFICATION_TRAIN = [
    ("I was charged twice this month", "billing"),
    ("why is my invoice higher than usual", "billing"),
    ("update my credit card please", "billing"),
    ("can I get a receipt for March", "billing"),
    ("I want my money back", "refund"),
    ("please refund the last payment", "refund"),
    ("refund me, the app never worked", "refund"),
    ("return my 20 dollars", "refund"),
    ("I cannot log in", "account_access"),
    ("password reset email never arrives", "account_access"),
    ("locked out after 2FA phone was lost", "account_access"),
    ("my login keeps failing", "account_access"),
]
CLASSIFICATION_TEST = [
    ("the charge on my statement looks wrong", "billing"),
    ("give me a refund now", "refund"),
    ("can't sign in to my account", "account_access"),
    ("where is my invoice", "billing"),
    ("money back please", "refund"),
    ("forgot my password", "account_access"),
]


def write_task(folder: Path, body: str, name: str = "task.yaml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def write_classification_data(folder: Path) -> None:
    """``folder``/train.jsonl and test.jsonl: the classification examples above (text, label)."""
    write_jsonl(folder / "train.jsonl", [{"text": t, "label": label} for t, label in CLASSIFICATION_TRAIN])
    write_jsonl(folder / "test.jsonl", [{"text": t, "label": label} for t, label in CLASSIFICATION_TEST])


@pytest.fixture
def classification_task(tmp_path, tiny_model_dir) -> Path:
    write_classification_data(tmp_path / "data")
    return write_task(
        tmp_path,
        f"""
name: tiny-intents
kind: classification
model: {tiny_model_dir}
data: {{train: data/train.jsonl, test: data/test.jsonl}}
labels: [billing, refund, account_access]
strategies:
  prompt: {{shots: [0, 2]}}
  rag: {{top_k: 2}}
  lora: {{rank: 4, epochs: 1, batch_size: 4, min_optimizer_steps: 0, learning_rate: 5.0e-4}}
  full: {{epochs: 1, batch_size: 4, min_optimizer_steps: 0, learning_rate: 5.0e-5}}
evaluation: {{batch_size: 4, latency_requests: 2, max_new_tokens: 4}}
deployment: {{gpu: a10g}}
""",
    )


HANDBOOK = {
    "leave.md": "# Leave\n\nEvery employee gets 27 days of annual leave. Leave requests go through the Tally tool.\n\n"
    "Carry-over is capped at 5 days and expires on 31 March.",
    "badges.md": "# Badges\n\nLost badges are replaced in room B-114, called The Kiln. A replacement costs 15 euros.",
    "history.md": "# History\n\nThe first robot, QR-1 Heron, shipped in 2011 to Brackwell Cold Storage.",
}


@pytest.fixture
def qa_task(tmp_path, tiny_model_dir) -> Path:
    for name, text in HANDBOOK.items():
        (tmp_path / "kb").mkdir(exist_ok=True)
        (tmp_path / "kb" / name).write_text(text, encoding="utf-8")
    write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"q": "How many days of annual leave?", "a": "27 days"},
            {"q": "Where are badges replaced?", "a": "B-114"},
            {"q": "When did QR-1 ship?", "a": "2011"},
        ],
    )
    write_jsonl(
        tmp_path / "test.jsonl",
        [
            {"q": "What does a badge replacement cost?", "a": "15 euros"},
            {"q": "What was the first robot called?", "a": "Heron"},
        ],
    )
    return write_task(
        tmp_path,
        f"""
name: tiny-handbook
kind: qa
model: {tiny_model_dir}
data: {{train: train.jsonl, test: test.jsonl, input: q, target: a}}
knowledge: kb/
strategies:
  rag: {{top_k: 1, chunk_words: 30}}
  lora: {{rank: 2, epochs: 1, batch_size: 2, max_seq_len: 64, min_optimizer_steps: 0, learning_rate: 5.0e-4}}
evaluation: {{batch_size: 2, latency_requests: 1, max_new_tokens: 4}}
""",
    )


@pytest.fixture
def extraction_task(tmp_path, tiny_model_dir) -> Path:
    write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"text": "Order 1234 from Ana, 3 items", "fields": {"order": "1234", "name": "Ana", "items": 3}},
            {"text": "Bo ordered 2 items, order 99", "fields": {"order": "99", "name": "Bo", "items": 2}},
        ],
    )
    write_jsonl(
        tmp_path / "test.jsonl",
        [{"text": "Order 7 by Cy with 1 item", "fields": {"order": "7", "name": "Cy", "items": 1}}],
    )
    return write_task(
        tmp_path,
        f"""
name: tiny-extract
kind: extraction
model: {tiny_model_dir}
data: {{train: train.jsonl, test: test.jsonl, target: fields}}
strategies:
  prompt: {{shots: [1]}}
  full: {{epochs: 1, batch_size: 2, min_optimizer_steps: 0, learning_rate: 5.0e-5}}
evaluation: {{batch_size: 2, latency_requests: 1, max_new_tokens: 6}}
""",
    )


def compare_in_process(task_path: Path, out: Path, **options) -> tuple[dict, list[str]]:
    """``advisor compare`` without worker processes: (results.json as written, the log lines)."""
    from harness.compare import run_compare
    from harness.compare_options import CompareOptions
    from harness.task import load_task

    lines: list[str] = []
    run_compare(
        load_task(task_path), CompareOptions(out_dir=out, progress=False, **options), isolate=False, log=lines.append
    )
    return json.loads((out / "results.json").read_text()), lines


def run_info(task, variant, *, device: str = "cpu", seed: int = 0):
    """What compare would record as having run ``variant`` of ``task``."""
    from harness.record import RunInfo

    return RunInfo(
        task=task.name,
        strategy=variant.strategy,
        variant=variant.name,
        params=variant.params,
        config_hash="test",
        seed=seed,
        limit=None,
        device=device,
        model=task.model_ref,
    )
