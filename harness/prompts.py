"""How a task becomes chat messages, how answers are written, and how model output is read back.

Every strategy builds its prompts here, so that prompting, RAG and the fine-tuned models see the
same format: system = the task's instruction, then optional example turns, then the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from harness.errors import UserError
from harness.spec import DEFAULT_INSTRUCTION, Datasets, Example, Task

# Sandboxed: an instruction template comes from a task file and must not reach Python internals.
_JINJA = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


def render_instruction(task: Task, data: Datasets) -> str:
    return render_template(task, data, task.spec.instruction or DEFAULT_INSTRUCTION[task.kind])


def render_template(task: Task, data: Datasets, template: str) -> str:
    """An instruction template (the task's, or one a prompting grid tries) rendered for this task's data."""
    try:
        return (
            _JINJA.from_string(template)
            .render(labels=data.labels or [], fields=data.fields or [], name=task.name, kind=task.kind)
            .strip()
        )
    except TemplateError as err:
        raise UserError(f"{task.path}: instruction: template error ({err}); fix the jinja2 template") from None


def format_answer(task: Task, target: Any) -> str:
    """The exact text a model should answer with (what fine-tuning trains on and shots show)."""
    if task.kind == "extraction":
        return json.dumps(target, ensure_ascii=False, sort_keys=True)
    return str(target)


@dataclass(frozen=True)
class Passage:
    source: str
    text: str


def user_content(text: str, passages: list[Passage] | None = None) -> str:
    if not passages:
        return text
    context = "\n\n".join(f"[{i}] ({p.source}) {p.text}" for i, p in enumerate(passages, start=1))
    return f"Context:\n{context}\n\nQuestion: {text}"


def messages(
    instruction: str | None,
    example: Example,
    *,
    shots: Sequence[tuple[Example, str]] = (),
    passages: list[Passage] | None = None,
) -> list[dict[str, str]]:
    """system instruction (if any), k example turns (input -> answer), then the input (with context, for RAG)."""
    out = [{"role": "system", "content": instruction}] if instruction else []
    for shot, answer in shots:
        out.append({"role": "user", "content": shot.input})
        out.append({"role": "assistant", "content": answer})
    out.append({"role": "user", "content": user_content(example.input, passages)})
    return out


def _norm_label(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.lower()).strip(" .:;,!\"'`*")


def parse_label(output: str, labels: list[str]) -> str | None:
    """Map free text to one label: exact, else the label named first in the text, else None.

    Small chat models answer in sentences ("The label is: billing."), so an exact match alone
    would undercount what they know; naming two labels picks the one mentioned first.
    """
    norm = _norm_label(output)
    by_norm = {_norm_label(label): label for label in labels}
    if norm in by_norm:
        return by_norm[norm]
    first_line = _norm_label(output.strip().splitlines()[0]) if output.strip() else ""
    if first_line in by_norm:
        return by_norm[first_line]
    hits = []
    for key, label in by_norm.items():
        match = re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", norm)
        if match:
            hits.append((match.start(), -len(key), label))
    return min(hits)[2] if hits else None


def parse_json_object(output: str) -> dict | None:
    """The first JSON object in the output, or None."""
    start = output.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(output)):
            if output[end] == "{":
                depth += 1
            elif output[end] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        obj = json.loads(output[start : end + 1])
                        return obj if isinstance(obj, dict) else None
                    except json.JSONDecodeError:
                        break
        start = output.find("{", start + 1)
    return None


def parse_output(task: Task, data: Datasets, output: str) -> Any:
    """The prediction a metric compares with the target."""
    if task.kind == "classification":
        return parse_label(output, data.labels or [])
    if task.kind == "extraction":
        return parse_json_object(output)
    return output.strip().splitlines()[0].strip() if output.strip() else ""
