"""Metrics on hand-computed cases."""

import pytest

from harness.metrics import METRICS, accuracy, exact_match, json_match, normalize_answer, token_f1


def test_accuracy_compares_parsed_labels():
    assert accuracy("billing", "billing") == 1.0
    assert accuracy(None, "billing") == 0.0
    assert accuracy("refund", "billing") == 0.0


def test_exact_match_normalises_like_squad():
    assert normalize_answer("The  B-114!") == "b114"
    assert exact_match("the Kiln.", "Kiln") == 1.0
    assert exact_match("Kiln room", "Kiln") == 0.0


def test_token_f1_partial_credit():
    # pred tokens: 27 days of leave (4), gold: 27 days (2); common 2 -> P=0.5, R=1 -> F1=2/3
    assert token_f1("27 days of leave", "27 days") == pytest.approx(2 / 3)
    assert token_f1("", "27 days") == 0.0
    assert token_f1("nothing", "27 days") == 0.0
    assert token_f1(None, "x") == 0.0


def test_json_match_is_field_level_f1():
    gold = {"order": "1234", "name": "Ana", "items": 3}
    assert json_match(dict(gold), gold) == 1.0
    # 2 of 3 right, 3 predicted -> P=R=2/3
    assert json_match({"order": "1234", "name": "Ana", "items": 4}, gold) == pytest.approx(2 / 3)
    # 1 right of 1 predicted (P=1), 1 of 3 gold (R=1/3) -> F1 = 0.5
    assert json_match({"name": "ana"}, gold) == pytest.approx(0.5)
    assert json_match(None, gold) == 0.0
    assert exact_match({"items": 3, "name": "Ana", "order": "1234"}, gold) == 1.0


def test_the_schema_takes_its_metric_names_from_the_registry():
    import dataclasses

    from harness.spec import TaskSpec

    (metric,) = [f for f in dataclasses.fields(TaskSpec) if f.name == "metric"]
    assert metric.metadata["choices"] == tuple(METRICS)
