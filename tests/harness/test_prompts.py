"""Prompt building and reading answers back."""

import pytest

from harness import prompts
from harness.errors import UserError
from harness.task import Example, load_examples, load_task

LABELS = ["billing", "refund", "cancel_subscription", "account_access"]


@pytest.mark.parametrize(
    "output, expected",
    [
        ("billing", "billing"),
        ("Refund", "refund"),
        ("cancel subscription", "cancel_subscription"),
        ("The label is: account_access.", "account_access"),
        ("This is about billing, not a refund", "billing"),
        ("**refund**", "refund"),
        ("I am not sure", None),
        ("", None),
    ],
)
def test_parse_label(output, expected):
    assert prompts.parse_label(output, LABELS) == expected


def test_parse_json_object_finds_the_first_valid_object():
    assert prompts.parse_json_object('Sure! {"a": 1, "b": {"c": 2}} done') == {"a": 1, "b": {"c": 2}}
    assert prompts.parse_json_object('{broken {"a": 2}') == {"a": 2}
    assert prompts.parse_json_object("no json") is None


def test_messages_put_shots_as_turns_and_passages_in_context():
    ex, shot = Example("1", "how much?", "5"), Example("2", "where?", "B-114")
    msgs = prompts.messages("Answer.", ex, shots=[(shot, "B-114")], passages=[prompts.Passage("a.md", "It costs 5.")])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"] == "B-114"
    assert "[1] (a.md) It costs 5." in msgs[3]["content"] and msgs[3]["content"].endswith("Question: how much?")


def test_instruction_renders_labels(classification_task):
    task = load_task(classification_task)
    text = prompts.render_instruction(task, load_examples(task))
    assert "billing, refund, account_access" in text


def test_instruction_template_is_sandboxed(classification_task):
    body = classification_task.read_text() + 'instruction: "{{ labels.__class__.__mro__[1].__subclasses__() }}"\n'
    classification_task.write_text(body)
    task = load_task(classification_task)
    with pytest.raises(UserError, match="instruction: template error"):
        load_examples(task)  # checked with the data, before anything runs
