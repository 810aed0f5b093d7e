"""bench/published_validation.py: fast checks (no torch, no model loading)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("published_validation", ROOT / "bench" / "published_validation.py")
assert spec is not None and spec.loader is not None
pv = importlib.util.module_from_spec(spec)
sys.modules["published_validation"] = pv
spec.loader.exec_module(pv)


def test_units_and_mapping() -> None:
    assert pv.MEMORY_UNITS == {"peak_memory_bytes": 1.0, "peak_memory_gb": 1e9, "peak_memory_gib": 2.0**30}
    assert pv.catalog_model("META-LLAMA/llama-3.2-3b")[0] == "llama-3.2-3b"
    assert pv.catalog_model("tiiuae/falcon-7b")[0] is None
    assert pv.catalog_gpu("a10g (NVIDIA A10G, 24GB)")[0] == "a10g"
    assert pv.catalog_gpu("a100 (doc header: A100-SXM4-40GB)")[0] == "a100-40gb"


def test_report_runs(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    assert pv.main(["--out", str(out)]) == 0
    text = out.read_text()
    assert "Holdout (`lmdeploy`" in text and "## Not expressible" in text
    rows = pv.evaluate(pv.yaml.safe_load(pv.RUNS.read_text())["runs"])
    done = [row for row in rows if row.ratio is not None]
    assert done and all(row.ratio > 0 for row in done)
    # every row is either predicted or says why not
    assert all(row.ratio is not None or row.reasons for row in rows)
