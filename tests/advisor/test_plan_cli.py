"""``advisor plan`` as a user runs it: the Gantt table, the JSON object's shape, one-line errors (exit 2), worked
examples in --help, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from advisor.cli import main
from tests.conftest import ROOT

TASK_8B = str(ROOT / "tests" / "data" / "tasks" / "intents-8b.yaml")
TASK_70B = str(ROOT / "docs" / "examples" / "llama70b-support.yaml")
RUN_KEYS = {"strategy", "variant", "kind", "gpus", "start_h", "end_h", "gpu_hours", "usd"}
ENDPOINT_KEYS = {"name", "strategy", "requests", "input_tokens", "output_tokens", "usd"}


def invoke(*args: str):
    return CliRunner().invoke(main, ["plan", *args])


def test_json_has_the_runs_the_totals_and_the_endpoints():
    result = invoke(TASK_70B, "--gpu", "h100", "--gpus", "8", "--nodes", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"runs", "wall_hours", "gpu_hours", "usd", "endpoints", "assumptions"} <= set(data)
    assert data["gpu"] == "h100-sxm" and data["nodes"] == 2 and data["gpus_per_node"] == 8
    assert all(set(run) >= RUN_KEYS for run in data["runs"])
    assert {run["kind"] for run in data["runs"]} == {"trial", "final", "learning curve", "seed"}
    assert all(set(e) >= ENDPOINT_KEYS for e in data["endpoints"]) and data["endpoints"]
    assert sum(run["gpu_hours"] for run in data["runs"]) == pytest.approx(data["gpu_hours"])
    assert sum(run["usd"] for run in data["runs"]) == pytest.approx(data["usd"])
    assert data["wall_hours"] >= data["gpu_hours"] / 16
    assert max(run["gpus"] for run in data["runs"]) == 16
    assert all(isinstance(line, str) for line in data["assumptions"])


def test_the_table_has_a_row_and_a_bar_per_run_and_the_totals():
    result = invoke(TASK_8B, "--gpu", "h100-sxm", "--gpus", "8", "--only", "lora,prompt")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line for line in lines if line.startswith(("LoRA ", "prompting "))]
    assert len(rows) == 3 + 3 * 3 + 3 + 1  # lora: 3 trials, 3 fractions x 3 seeds; prompt: 3 trials, 1 final
    assert all("█" in row for row in rows)
    assert any(line.startswith("wall clock") and "GPU-hours" in line for line in lines)
    assert "Assumptions:" in lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((TASK_8B, "--gpu", "tpu-v9", "--gpus", "8"), "unknown GPU 'tpu-v9'"),
        ((TASK_70B, "--gpu", "h100", "--gpus", "8"), "needs 9 x h100-sxm"),
        ((str(ROOT / "no-such-task.yaml"), "--gpu", "h100", "--gpus", "8"), "no such task file"),
        ((TASK_8B, "--gpu", "h100", "--gpus", "0"), "--gpus"),
        ((TASK_8B, "--gpu", "h100", "--gpus", "8", "--only", "dpo"), "unknown strategy 'dpo'"),
    ],
)
def test_errors_are_one_line_and_exit_2(args, says):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert len(out.splitlines()) == 1 and out.startswith("advisor: error:") and says in out


def test_a_task_file_that_does_not_load_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: classification\nmodel: no-such-model\ndata: {train: a.jsonl, test: b.jsonl}\n")
    result = invoke(str(bad), "--gpu", "h100", "--gpus", "1")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_help_ends_with_worked_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    tail = result.output.strip().splitlines()[-4:]
    assert tail[0].strip() == "Examples:" and all(line.strip().startswith("advisor plan ") for line in tail[1:])


def test_runs_without_importing_torch():
    code = (
        "import sys; from advisor.cli import main; "
        f"main(['plan', {TASK_8B!r}, '--gpu', 'h100', '--gpus', '8', '--json'], standalone_mode=False); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
