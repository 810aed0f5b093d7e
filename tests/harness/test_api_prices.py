"""data/catalog/api_prices.yaml is complete and sourced, and harness.catalog prices hosted model ids from it."""

from __future__ import annotations

import datetime
from urllib.parse import urlparse

import pytest

from harness import catalog
from harness.catalog import TokenPrice, api_price, api_prices

ENTRIES = sorted(api_prices().items())


def test_the_catalog_lists_at_least_ten_models_from_at_least_four_providers():
    assert len(ENTRIES) >= 10
    assert len({entry["provider"] for _, entry in ENTRIES}) >= 4


@pytest.mark.parametrize(("model", "entry"), ENTRIES, ids=[model for model, _ in ENTRIES])
def test_every_entry_has_a_provider_positive_prices_and_a_dated_https_source(model, entry):
    assert isinstance(entry.get("provider"), str) and entry["provider"].strip(), f"{model}: no provider"
    prices = entry["input_usd_per_mtok"], entry["output_usd_per_mtok"]
    assert all(isinstance(p, int | float) and not isinstance(p, bool) and p > 0 for p in prices), f"{model}: {prices}"
    # no listed model charges less for output than for input; flag it in this test's name if one ever does
    assert entry["output_usd_per_mtok"] >= entry["input_usd_per_mtok"], f"{model}: output cheaper than input"
    url = urlparse(str(entry.get("source", "")))
    assert url.scheme == "https" and url.netloc, f"{model}: source {entry.get('source')!r} is not an https URL"
    date = datetime.date.fromisoformat(str(entry["date"]))
    assert date <= datetime.date.today(), f"{model}: date {date} is in the future"


def test_aliases_are_unique_across_entries_and_never_shadow_a_key():
    names = [model.lower() for model, _ in ENTRIES]
    names += [str(alias).lower() for _, entry in ENTRIES for alias in entry.get("aliases") or ()]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


def test_api_price_finds_a_model_by_id_alias_provider_prefix_and_any_case():
    by_id = api_price("gpt-4o-mini")
    assert by_id is not None
    assert (by_id.input_usd_per_mtok, by_id.output_usd_per_mtok) == (0.15, 0.60)
    entry = api_prices()["gpt-4o-mini"]
    assert (by_id.source, by_id.date) == (entry["source"], entry["date"])
    assert api_price("gpt-4o-mini-2024-07-18") == by_id
    assert api_price("openai/gpt-4o-mini") == by_id
    assert api_price("GPT-4o-Mini") == by_id
    assert api_price("  OpenAI/GPT-4O-MINI-2024-07-18 ") == by_id
    # ids that contain a slash themselves, with and without a provider prefix
    together = api_price("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert together is not None and (together.input_usd_per_mtok, together.output_usd_per_mtok) == (0.88, 0.88)
    assert api_price("together/meta-llama/llama-3.3-70b-instruct-turbo") == together
    assert api_price("fireworks/accounts/fireworks/models/llama-v3p1-8b-instruct") is not None


def test_api_price_is_none_for_an_unknown_model():
    assert api_price("no-such-model-9000") is None
    assert api_price("openai/no-such-model-9000") is None
    assert api_price("") is None
    # the bare tail of a slashed id is not an id the provider takes
    assert api_price("Llama-3.3-70B-Instruct-Turbo") is None


def test_token_price_usd_is_tokens_times_price_per_million():
    price = TokenPrice(input_usd_per_mtok=0.15, output_usd_per_mtok=0.60)
    assert price.usd(1_000, 500) == pytest.approx(0.00045)
    assert price.usd(0, 0) == 0
    assert price.usd(1_000_000, 1_000_000) == pytest.approx(0.75)


def test_api_prices_reads_the_catalog_through_the_cached_loader():
    assert api_prices() is catalog._load("api_prices")["models"]
