"""Fixtures shared by the harness tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_jsonl


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder with a two-example train.jsonl and a one-example test.jsonl (text, label a/b)."""
    write_jsonl(tmp_path / "train.jsonl", [{"text": "x one", "label": "a"}, {"text": "y two", "label": "b"}])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "z three", "label": "a"}])
    return tmp_path
