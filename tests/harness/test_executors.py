"""Choosing an executor, and the one-line error when Ray is asked for but not installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.compare_options import CompareOptions
from harness.errors import UserError
from harness.executors import LocalExecutor, make_executor
from tests.conftest import ROOT


def test_the_local_executor_is_the_default_and_runs_in_process_for_tests(tmp_path):
    executor = make_executor(CompareOptions(), tmp_path)
    assert isinstance(executor, LocalExecutor) and not executor.in_process and not executor.concurrent_runs
    assert make_executor(CompareOptions(), tmp_path, isolate=False).in_process  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="--ray-address: only with --executor ray"):
        make_executor(CompareOptions(ray_address="auto"), tmp_path)
    with pytest.raises(UserError, match="--executor nomad: unknown; use local or ray"):
        make_executor(CompareOptions(executor="nomad"), tmp_path)


def test_executor_ray_without_ray_installed_is_one_line_naming_the_install_command(tmp_path):
    """Ray hidden from the import system (as on a machine without the extra): exit 2, one line, no traceback."""
    code = "import sys; sys.modules['ray'] = None; from advisor.cli import main; main()"
    task = ROOT / "data" / "tasks" / "support-intents.yaml"
    out = subprocess.run(
        [sys.executable, "-c", code, "compare", str(task), "--executor", "ray", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[ray]'" in lines[0], out.stderr
    assert not (tmp_path / "o").exists()
