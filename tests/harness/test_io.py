"""Paths as records show them: inside the working directory, relative (a committed record names no machine's
folders); elsewhere, as given. Loading keeps the full path."""

from pathlib import Path

from harness.catalog import ModelRef
from harness.io import display_path


def test_paths_inside_the_working_directory_are_shown_relative(tmp_path, monkeypatch):
    (tmp_path / "models" / "m").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "models" / "m") == str(Path("models") / "m")
    assert display_path("/elsewhere/model") == "/elsewhere/model"
    ref = ModelRef(name="m", source="package", location=str(tmp_path / "models" / "m"))
    assert ref.shown().location == str(Path("models") / "m") and ref.location.startswith(str(tmp_path))
    hub = ModelRef(name="org/m", source="hub", location="org/m")
    assert hub.shown() is hub
