"""Meters: CPU peak memory sees an allocation; percentiles match numpy's default."""

import numpy as np
import pytest

from harness.meters import PeakMemory, hardware, package_versions, percentile


def test_cpu_peak_memory_sees_a_300_mb_allocation():
    with PeakMemory("cpu") as outer:
        with PeakMemory("cpu") as inner:
            block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
            del block
    assert inner.peak_mb == pytest.approx(300, rel=0.2)
    assert outer.peak_mb >= inner.peak_mb * 0.95
    assert outer.as_dict()["peak_memory_kind"] == "cpu_rss_growth"


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0, 3.0, 4.0], list(range(1, 21))])
def test_percentile_matches_numpy(values):
    for q in (50, 95):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


def test_hardware_and_versions_are_recorded():
    info = hardware("cpu")
    assert info["device"] == "cpu" and info["cpu_count"] >= 1 and info["memory_gb"] > 0
    versions = package_versions()
    assert versions["torch"] and versions["transformers"] and versions["python"]
