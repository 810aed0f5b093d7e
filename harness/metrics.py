"""Quality metrics: one function each, per example in [0, 1]; a run's quality is their mean."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", str(text).lower().translate(_PUNCT)).split())


def accuracy(prediction: Any, target: Any) -> float:
    return float(prediction is not None and prediction == target)


def exact_match(prediction: Any, target: Any) -> float:
    if isinstance(target, dict):
        return float(isinstance(prediction, dict) and _canon(prediction) == _canon(target))
    return float(prediction is not None and normalize_answer(prediction) == normalize_answer(target))


def token_f1(prediction: Any, target: Any) -> float:
    """SQuAD token F1 between normalised answers."""
    pred = normalize_answer(prediction or "").split()
    gold = normalize_answer(target).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _canon(value: Any) -> str:
    if isinstance(value, str):
        return normalize_answer(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def json_match(prediction: Any, target: Any) -> float:
    """Field-level F1: a predicted (key, value) pair is right when the gold object has it.

    Values compare after answer normalisation (strings) or canonical JSON (anything else).
    """
    if not isinstance(prediction, dict) or not isinstance(target, dict):
        return 0.0
    pred = {(k, _canon(v)) for k, v in prediction.items()}
    gold = {(k, _canon(v)) for k, v in target.items()}
    if not pred and not gold:
        return 1.0
    correct = len(pred & gold)
    if correct == 0:
        return 0.0
    precision, recall = correct / len(pred), correct / len(gold)
    return 2 * precision * recall / (precision + recall)


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "exact_match": exact_match,
    "token_f1": token_f1,
    "json_match": json_match,
}
