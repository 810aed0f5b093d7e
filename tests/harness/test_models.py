"""The tokenizer copy the tiny test model uses is the packaged model's own."""

from __future__ import annotations

import pytest

from tests.conftest import smollm2_tokenizer_dir


def test_tokenizer_copy_matches_the_packaged_model(tmp_path):
    from transformers import AutoTokenizer

    from harness.catalog import resolve_model

    try:
        ref = resolve_model("smollm2-135m-instruct")
    except Exception as err:
        pytest.skip(f"packaged model not installed: {err}")
    packaged = AutoTokenizer.from_pretrained(ref.location, gguf_file=ref.gguf_file)
    copy = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(tmp_path))
    assert len(copy) == len(packaged) and copy.get_vocab() == packaged.get_vocab()
    messages = [{"role": "system", "content": "Label it."}, {"role": "user", "content": "I was charged twice"}]
    assert copy.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    ) == packaged.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text = "Refund my 20 dollars, héllo 🙂"
    assert copy(text)["input_ids"] == packaged(text)["input_ids"]
    assert (copy.eos_token, copy.pad_token, copy.bos_token) == (
        packaged.eos_token,
        packaged.pad_token,
        packaged.bos_token,
    )
