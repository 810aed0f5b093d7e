"""Structural checks for bench/published_runs.yaml (the table of published, measured runs)."""

import re
from pathlib import Path

import pytest
import yaml

TABLE = Path(__file__).resolve().parents[2] / "bench" / "published_runs.yaml"
REQUIRED = ("id", "kind", "source", "reference", "model", "gpu", "gpu_count", "method", "settings", "measured")
KINDS = {"memory", "throughput", "serving"}
METHODS = {"full", "lora", "qlora", "serving"}
HEX40 = re.compile(r"^[0-9a-f]{40}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def runs():
    data = yaml.safe_load(TABLE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("runs"), list)
    return data["runs"]


def test_ids_unique_and_lowercase_dash(runs):
    ids = [r["id"] for r in runs]
    assert len(ids) == len(set(ids))
    for i in ids:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", i), i


def test_required_fields(runs):
    for r in runs:
        missing = [k for k in REQUIRED if k not in r]
        assert not missing, (r.get("id"), missing)
        assert r["kind"] in KINDS, r["id"]
        assert r["method"] in METHODS, r["id"]
        assert (r["method"] == "serving") == (r["kind"] == "serving"), r["id"]
        assert isinstance(r["settings"], dict) and isinstance(r["measured"], dict) and r["measured"], r["id"]
        assert isinstance(r["gpu_count"], int) and r["gpu_count"] >= 1, r["id"]


def test_measured_values_are_positive_numbers(runs):
    for r in runs:
        for k, v in r["measured"].items():
            assert isinstance(v, (int, float)) and v > 0, (r["id"], k, v)


def test_excluded_rows_have_reason(runs):
    for r in runs:
        assert isinstance(r.get("excluded", False), bool), r["id"]
        if r.get("excluded"):
            assert r.get("exclude_reason"), r["id"]


def test_references_are_pinned(runs):
    for r in runs:
        for key in ("reference", "config_reference", "code_reference"):
            ref = r.get(key)
            if ref is None:
                continue
            if "url" in ref:
                assert DATE.match(str(ref.get("date", ""))), (r["id"], key)
            else:
                assert ref.get("repo") and ref.get("path"), (r["id"], key)
                assert HEX40.match(str(ref.get("commit", ""))), (r["id"], key)


def test_memory_rows_state_a_unit_and_metric(runs):
    for r in runs:
        if r["kind"] != "memory":
            continue
        assert any(k.startswith("peak_memory_") for k in r["measured"]), r["id"]
        metrics = {"max_allocated", "max_reserved", "max_active", "nvidia-smi", "unknown"}
        assert r.get("memory_metric") in metrics, r["id"]


def test_every_row_cites_a_pinned_commit_or_a_url(runs):
    for r in runs:
        ref = r["reference"]
        assert isinstance(ref, dict), r["id"]
        assert HEX40.match(str(ref.get("commit", ""))) or str(ref.get("url", "")).startswith("https://"), r["id"]


def ttft_keys(run):
    return [k for k in run["measured"] if k.startswith("ttft")]


def test_ttft_only_on_serving_rows_in_milliseconds(runs):
    for r in runs:
        keys = ttft_keys(r)
        if keys:
            assert r["kind"] == "serving", r["id"]
            assert all(k.endswith("_ms") for k in keys), (r["id"], keys)
            assert "ttft_ms" in keys, r["id"]  # the central value; min/max are extras
            assert "mean" in r["note"].lower() or "median" in r["note"].lower(), r["id"]


def test_target_counts(runs):
    """Issue 12: >= 5 independent source families; >= 30 memory, 15 throughput, 6 serving points; TTFT in serving."""
    live = [r for r in runs if not r.get("excluded")]
    by_kind = {k: sum(r["kind"] == k for r in live) for k in KINDS}
    assert by_kind["memory"] >= 30 and by_kind["throughput"] >= 15 and by_kind["serving"] >= 6, by_kind
    assert len({r["source"] for r in live}) >= 5
    assert sum(r["kind"] == "serving" and bool(ttft_keys(r)) for r in live) >= 6
