"""A new user's first steps: the set-up script says what it does and how long it takes, and the first compare
writes where no committed file lives."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.compare_options import CompareOptions
from harness.task import load_task

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup.sh"
TASKS = sorted((ROOT / "data" / "tasks").glob("*.yaml"))


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)


def _in_git_checkout() -> bool:
    return shutil.which("git") is not None and _git("rev-parse", "--is-inside-work-tree").returncode == 0


@pytest.mark.parametrize("task_file", TASKS, ids=lambda p: p.stem)
def test_the_default_output_folder_is_outside_the_committed_examples(task_file):
    folder = CompareOptions().folder(load_task(task_file))
    assert not folder.is_absolute()
    assert folder.parts[0] == "runs" and folder.parts[-1] == load_task(task_file).name
    assert "reports" not in folder.parts
    assert CompareOptions(out_dir=Path("reports/x")).folder(load_task(task_file)) == Path("reports/x")


@pytest.mark.skipif(not _in_git_checkout(), reason="needs git and a checkout")
def test_the_default_output_folder_is_git_ignored():
    folder = CompareOptions().folder(load_task(TASKS[0]))
    for path in (folder / "results.json", folder / "report.html", folder / "runs" / "lora-r8.json"):
        assert _git("check-ignore", "-q", str(path)).returncode == 0, f"{path} is not git-ignored"
    # and the committed examples are not
    assert _git("check-ignore", "-q", "reports/support-intents/results.json").returncode == 1


def test_setup_script_parses():
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-n", str(SETUP)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_setup_script_says_what_each_step_does_and_how_long_before_it_starts():
    text = SETUP.read_text()
    assert "set -euo pipefail" in text and "TORCH_SPEC" in text
    said = " ".join(line for line in text.splitlines() if line.lstrip().startswith(("step ", "echo "))).lower()
    for words in ("venv", "pip", "torch", "llama.cpp", "13 min on 2 cores", "cache", "later installs"):
        assert words in said, f"setup.sh does not say {words!r}"
    # the slow step is announced before the command that does it
    assert text.index("13 min") < text.index('pip install -q -e ".[test]"')
    assert "SECONDS" in text  # each step's elapsed time


def test_setup_script_ends_with_the_two_commands_to_run_next():
    text = SETUP.read_text()
    readme = (ROOT / "README.md").read_text()
    last = text.strip().splitlines()[-4:]
    assert any("advisor compare data/tasks/support-intents.yaml" in line for line in last), last
    assert any("python -m pytest" in line for line in last), last
    assert ".venv/bin/advisor compare data/tasks/support-intents.yaml" in readme
    assert ".venv/bin/python -m pytest" in readme


STUB_PYTHON = """#!/bin/sh
case "$*" in -m*) echo "RAN: $*";; esac
case "$*" in
  *"pip cache list"*) [ -n "$CACHED" ] && echo "llama_cpp_python-0.3.16-cp311-cp311-linux_x86_64.whl"; exit 0;;
  *"import torch"*) echo "torch 2.13.0+cpu";;
esac
"""


def _run_setup(tmp_path: Path, **env: str) -> list[str]:
    """setup.sh in a copy of the layout whose .venv/bin/python only says what it was asked to do."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SETUP, tmp_path / "scripts" / "setup.sh")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB_PYTHON)
    python.chmod(0o755)
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_setup_announces_each_step_before_running_it_and_keeps_torch_spec(tmp_path):
    lines = _run_setup(tmp_path, TORCH_SPEC="torch --index-url https://example.invalid/whl/cu128")
    announced = [i for i, line in enumerate(lines) if line.startswith("[")]
    assert [lines[i][:5] for i in announced] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "keeping the existing .venv" in lines[announced[0]]
    install = lines.index("RAN: -m pip install -q -e .[test]")
    before = " ".join(lines[announced[3] : install])
    assert "compiles llama.cpp" in before and "13 min on 2 cores" in before and "a few minutes" in before
    assert "RAN: -m pip install -q torch --index-url https://example.invalid/whl/cu128" in lines
    assert sum("done in" in line for line in lines) == 4
    assert lines[-2].startswith("advisor installed in .venv") and "torch 2.13.0+cpu" in lines[-2]
    assert lines[-1].startswith("Next: .venv/bin/advisor compare data/tasks/support-intents.yaml")


def test_setup_says_a_later_install_reuses_the_cached_llama_cpp_wheel(tmp_path):
    lines = _run_setup(tmp_path, CACHED="1")
    start = next(i for i, line in enumerate(lines) if line.startswith("[4/4]"))
    before = " ".join(lines[start : lines.index("RAN: -m pip install -q -e .[test]")])
    assert "13 min" not in before and "cache" in before and "a few minutes" in before
