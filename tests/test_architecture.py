"""The layering in docs/architecture.md, checked on the source: no import cycles, harness never imports advisor,
and imports inside functions only for modules that load heavy libraries.

The import graph is built with ``ast`` from every module of ``advisor/`` and ``harness/``, counting imports inside
functions too (deferring an import hides a cycle from Python, not from this test). Importing ``a.b.c`` also runs
``a/__init__`` and ``a/b/__init__``, so those are edges as well. Imports under ``if TYPE_CHECKING:`` never run
and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("advisor", "harness")
# Libraries that take seconds to import (torch and what sits on it) or are optional extras: the only imports a
# function may defer, so that `advisor estimate`, `validate` and `report` start without them.
TORCH_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "sentence_transformers", "faiss")
# openai (half a second: pydantic and its HTTP stack) and the llama.cpp server load only for endpoint runs and
# `advisor serve`
# numpy (80 ms) is needed only once a retriever embeds texts
# pandas, pyarrow (and the optional datasets) only read a dataset that is not JSONL, or write the results tables
HEAVY_LIBRARIES = (
    *TORCH_LIBRARIES,
    "numpy",
    "pandas",
    "pyarrow",
    "datasets",
    "matplotlib",
    "mlflow",
    "ray",
    "openai",
    "llama_cpp",
    "uvicorn",
    "fastapi",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import that runs."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for grandchild in child.orelse:
                    visit(grandchild, in_function)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                # `from harness import catalog` imports the module harness.catalog
                submodules = [
                    f"{child.module}.{alias.name}" for alias in child.names if f"{child.module}.{alias.name}" in MODULES
                ]
                if len(submodules) < len(child.names):
                    found.append((child.module, in_function))
                found.extend((module, in_function) for module in submodules)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def graph() -> dict[str, set[str]]:
    """module -> the project modules its imports run. A module's own parent packages are left out: Python
    initialises them before the module itself, so they never wait on it."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        own_parents = set(with_parents(name))
        for target, _ in imports(path):
            edges[name].update(m for m in with_parents(target) if m in MODULES and m not in own_parents)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def heavy_modules(libraries: tuple[str, ...] = HEAVY_LIBRARIES) -> set[str]:
    """Project modules that load one of ``libraries`` when imported (at their top level, directly or through
    another project module)."""
    heavy: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, path in MODULES.items():
            if name in heavy:
                continue
            top = [target for target, in_function in imports(path) if not in_function]
            if any(t.split(".")[0] in libraries or t in heavy for t in top):
                heavy.add(name)
                changed = True
    return heavy


def test_the_graph_sees_imports_inside_functions():
    """The checker itself: a deferred import is an edge."""
    source = "def f():\n    from harness import catalog\n    import torch\n"
    path = ROOT / "harness" / "__probe__.py"
    try:
        path.write_text(source)
        assert ("harness.catalog", True) in imports(path) and ("torch", True) in imports(path)
    finally:
        path.unlink()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles (move the shared code to where both can import it): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_harness_never_imports_advisor():
    offenders = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name.startswith("harness")
        for target, _ in imports(path)
        if target.split(".")[0] == "advisor"
    ]
    assert not offenders, offenders


def test_imports_inside_functions_are_only_for_heavy_modules():
    heavy = heavy_modules()
    offenders = [
        f"{name}: {target}"
        for name, path in MODULES.items()
        for target, in_function in imports(path)
        if in_function
        and target.split(".")[0] not in HEAVY_LIBRARIES
        and target not in heavy
        and not any(parent in heavy for parent in with_parents(target))
    ]
    assert not offenders, "import these at the top of the module: " + ", ".join(offenders)


def test_advisor_decides_without_torch():
    """No advisor module loads torch (or what sits on it) when imported: estimate, validate and report start fast."""
    heavy = heavy_modules(TORCH_LIBRARIES)
    offenders = [name for name in heavy if name.startswith("advisor")]
    assert not offenders, f"advisor modules that load torch or another heavy library when imported: {offenders}"
