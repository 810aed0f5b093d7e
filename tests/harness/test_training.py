"""Training examples: loss on the answer only, prompts cut from the left, knowledge windows."""

from transformers import AutoTokenizer

from harness import prompts
from harness.task import Example
from harness.training import answer_item, text_items


def test_answer_item_masks_the_prompt(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = prompts.messages("Classify.", Example("1", "I was charged twice", "billing"))
    item = answer_item(tok, msgs, "billing", max_len=256)
    assert len(item.input_ids) == len(item.labels)
    answer = [t for t in item.labels if t != -100]
    n_masked = item.labels.index(answer[0])
    assert all(x == -100 for x in item.labels[:n_masked])
    assert tok.decode(answer).startswith("billing<|im_end|>")
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert tok.decode(item.input_ids[:n_masked]) == prompt


def test_long_prompts_are_cut_from_the_left_keeping_the_answer(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = prompts.messages("Classify.", Example("1", "word " * 500, "refund"))
    item = answer_item(tok, msgs, "refund", max_len=64)
    assert len(item.input_ids) == 64
    assert tok.decode([t for t in item.labels if t != -100]).startswith("refund")


def test_text_items_train_on_every_token_in_windows(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = text_items(tok, ["alpha beta gamma " * 50], max_len=32)
    assert len(items) > 1 and all(len(it.input_ids) <= 32 and it.labels == it.input_ids for it in items)
