"""The command line's manners: worked examples in every --help, --version without importing the libraries it
names, --quiet/--verbose, NO_COLOR, progress bars only on a terminal, --set on the commands that load a task, and
the light commands starting fast without torch."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from advisor import cli
from advisor.cli import main
from advisor.cli_options import show_progress
from tests.conftest import ROOT

TASK = str(ROOT / "data" / "tasks" / "support-intents.yaml")


def invoke(*args: str, env: dict[str, str] | None = None, color: bool = False) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), env=env, color=color)


@pytest.mark.parametrize("command", [None, *sorted(main.commands)])
def test_every_help_ends_with_worked_examples(command):
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    tail = result.output[result.output.rindex("Examples:") :].splitlines()[1:]
    examples = [line for line in tail if "advisor " in line and not line.strip().startswith("#")]
    assert len(examples) >= 2, result.output
    assert all(line.startswith("    ") for line in examples), "examples keep their lines (click's \\b)"


def test_version_names_the_key_packages_without_importing_them():
    code = (
        "import sys; from advisor.cli import main; code = main(['--version'], standalone_mode=False); "
        "assert not {'torch', 'transformers', 'peft', 'mlflow', 'ray'} & set(sys.modules), 'imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("advisor ") and lines[1].startswith("python 3.")
    names = [line.split()[0] for line in lines]
    assert {"torch", "transformers", "peft", "accelerate", "ray", "mlflow"} <= set(names)


def test_no_color_turns_the_colour_off():
    styled = invoke("validate", "nope.yaml", color=True, env={"NO_COLOR": ""})
    assert styled.exit_code == 2 and "\x1b[" in styled.output  # on a terminal the error prefix is red
    plain = invoke("validate", "nope.yaml", color=True, env={"NO_COLOR": "1"})
    assert plain.exit_code == 2 and "\x1b[" not in plain.output
    assert plain.output.strip() == "advisor: error: nope.yaml: file not found; check the path"


def test_progress_bars_only_on_a_terminal_and_never_with_quiet(monkeypatch):
    assert show_progress(True) is True and show_progress(False) is False  # --progress / --no-progress win
    assert show_progress(None) is False  # pytest captures stdout: not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show_progress(None) is True
    with click.Context(main) as ctx:
        ctx.meta["advisor.verbosity"] = -1
        assert show_progress(None) is False


def test_quiet_keeps_only_failures_of_the_run_lines(capsys):
    lines = ["prompt 0-shot: ok: accuracy 0.5", "lora r8: FAILED: worker process killed", "full: STOPPED: budget"]
    with click.Context(main) as ctx:
        ctx.meta["advisor.verbosity"] = -1
        for line in lines:
            cli._compare_log(line)
    assert capsys.readouterr().err.splitlines() == lines[1:]


def test_quiet_and_verbose_are_options_of_every_command_and_contradict():
    for name, command in main.commands.items():
        opts = {o for p in command.params for o in p.opts}
        assert {"--quiet", "--verbose", "-q", "-v"} <= opts, name
    both = invoke("-q", "validate", "--verbose", TASK)
    assert both.exit_code == 2 and "contradict" in both.output
    quiet = invoke("validate", TASK, "--quiet")
    assert quiet.exit_code == 0 and quiet.output.count(": ok") == 1
    verbose = invoke("--verbose", "validate", TASK, "--set", "strategies.lora.rank=16")
    assert verbose.exit_code == 0 and '"rank": 16' in verbose.output and "strategies.lora:" in verbose.output


def test_set_on_validate_and_plan():
    ok = invoke("validate", TASK, "--set", "strategies.prompt.shots=[0]", "--set", "goals.quality=0.9")
    assert ok.exit_code == 0 and "runs: prompt 0-shot, rag" in ok.output
    planned = invoke("plan", TASK, "--gpu", "a10g", "--gpus", "1", "--only", "lora", "--set", "strategies.lora.rank=4")
    assert planned.exit_code == 0 and "r4" in planned.output
    for bad, said in [
        ("noequals", "--set noequals: expected KEY=VALUE"),
        ("=1", "--set =1: the key is empty"),
        ("strategies.lora.rnak=4", "(from --set strategies.lora.rnak=4)"),
    ]:
        for command in (["validate", TASK], ["plan", TASK, "--gpu", "a10g", "--gpus", "1"]):
            result = invoke(*command, "--set", bad)
            assert result.exit_code == 2 and said in result.output, result.output
            assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [["--help"], ["validate", TASK], ["schema", "--format", "json"], ["report", "--help"], ["estimate", "--help"]],
    ids=lambda a: " ".join(a[:2]).replace(TASK, "TASK"),
)
def test_light_commands_start_fast_without_torch(args, tmp_path):
    """As test_estimate_cli's timed test: the best of three, in the process (import + the command), bytecode
    cached as an installed advisor has it; `bench/startup.py` prints the wall times."""
    code = (
        "import sys, time; start = time.perf_counter(); from advisor.cli import main; "
        f"main({args!r}, standalone_mode=False); "
        "assert 'torch' not in sys.modules, 'torch was imported'; "
        "print(time.perf_counter() - start, file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    inside = []
    for attempt in range(4):  # the first fills the bytecode cache; then the best of three
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        if attempt:
            inside.append(float(proc.stderr.strip().splitlines()[-1]))
            if inside[-1] < 0.5:
                break
    assert min(inside) < 0.5


def test_compare_checks_its_overrides_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    for bad, said in [("noequals", "expected KEY=VALUE"), ("strategies.lora.rank=0", "below the minimum 1")]:
        result = invoke("compare", TASK, "--out", str(out), "--set", bad)
        assert result.exit_code == 2 and said in result.output and f"--set {bad}" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
