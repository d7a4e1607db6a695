"""The import graph: no cycles, and each layer of the package imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("musictag", "datamodules")
#: The layers, each with the module prefixes it holds and the layers it may import (bottom to top, as
#: ``docs/architecture.md`` draws them). Within a layer, modules import each other freely (the cycle test
#: still holds). The package's own ``musictag/__init__.py`` (lazy ``musictag.load`` / ``TaggingModule``)
#: is no layer.
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "base": (
        ("musictag.types", "musictag.files", "musictag.audio", "musictag.chunks", "musictag.guards"),
        (),
    ),
    "stages": (("musictag.stages",), ("base",)),
    "datamodules": (("datamodules",), ("base",)),
    "models": (("musictag.models",), ("base", "stages")),
    "training": (("musictag.training",), ("base", "stages", "models")),
    "convert": (("musictag.convert",), ("base", "stages", "models", "training")),
    "inference": (("musictag.inference",), ("base", "stages", "models", "training")),
    "analysis": (("musictag.analysis",), ("base",)),
    "bench": (("musictag.bench",), ("base", "stages", "models", "training", "datamodules")),
    "cli": (
        ("musictag.cli", "musictag.__main__"),
        ("base", "stages", "datamodules", "models", "training", "convert", "inference", "analysis", "bench"),
    ),
    # test doubles: may use anything; nothing of the product imports them
    "testing": (
        ("musictag.testing",),
        (
            "base",
            "stages",
            "datamodules",
            "models",
            "training",
            "convert",
            "inference",
            "analysis",
            "bench",
            "cli",
        ),
    ),
}
#: What no module of the product imports: pytest and the tests' own plumbing.
TEST_ONLY = ("pytest", "_pytest", "helpers", "conftest", "tests")


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module → the project modules it imports, anywhere in its file (functions and ``TYPE_CHECKING``
    blocks included: a cycle that only a lazy import hides is still a cycle in the design)."""
    files = {module_name(p, root): p for package in PACKAGES for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import submodule` imports the submodule
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert (
        "musictag.training.module" in graph and "musictag.training.callbacks" in graph
    )  # the scan sees the project
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def layer_of(module: str) -> str | None:
    for layer, (prefixes, _) in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    return None


def layer_violations(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Module → the project modules it imports from a layer it may not import (higher, or beside it)."""
    found: dict[str, list[str]] = {}
    for module, targets in graph.items():
        layer = layer_of(module)
        if layer is None:
            continue
        allowed = {layer, *LAYERS[layer][1]}
        bad = sorted(t for t in targets if (other := layer_of(t)) is not None and other not in allowed)
        if bad:
            found[module] = bad
    return found


def test_every_module_has_a_layer_and_imports_only_the_layers_below_it():
    graph = import_graph()
    assert len(graph) > 60  # the scan sees the project
    assert [m for m in graph if layer_of(m) is None] == ["musictag"]
    assert layer_violations(graph) == {}


def test_the_product_never_imports_test_code():
    """No module of musictag/ or datamodules/ imports pytest or the tests' plumbing (anywhere in its file)."""
    offending = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and not node.level
                    else []
                )
                bad = [n for n in names if n.split(".")[0] in TEST_ONLY]
                if bad:
                    offending.setdefault(str(path.relative_to(REPO)), []).extend(bad)
    assert offending == {}


def test_the_top_level_holds_the_base_modules_only():
    top = sorted(p.name for p in (REPO / "musictag").glob("*.py"))
    assert len(top) <= 8, top
    assert top == [
        "__init__.py",
        "__main__.py",
        "analysis.py",
        "audio.py",
        "chunks.py",
        "files.py",
        "guards.py",
        "types.py",
    ]


def test_the_checks_catch_a_cycle_and_a_lower_layer_importing_a_higher(tmp_path):
    """The scan itself: a planted cycle and planted imports against the layers are found."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for sub in ("training", "stages", "cli"):
        (tmp_path / "musictag" / sub).mkdir()
        (tmp_path / "musictag" / sub / "__init__.py").write_text("")
    (tmp_path / "musictag" / "training" / "module.py").write_text("from musictag.training.metrics import x\n")
    (tmp_path / "musictag" / "training" / "metrics.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from musictag.training.module import y\n"
    )
    # a stage importing the training layer (lazily), the training layer importing a corpus
    (tmp_path / "musictag" / "stages" / "registry.py").write_text(
        "def f():\n    from musictag.training import module\n"
    )
    (tmp_path / "musictag" / "training" / "callbacks.py").write_text("from datamodules import base\n")
    (tmp_path / "musictag" / "cli" / "tag.py").write_text("import musictag.training.module\n")  # allowed
    (tmp_path / "datamodules" / "base.py").write_text("")
    graph = import_graph(tmp_path)
    assert find_cycle(graph) in (
        ["musictag.training.metrics", "musictag.training.module", "musictag.training.metrics"],
        ["musictag.training.module", "musictag.training.metrics", "musictag.training.module"],
    )
    assert layer_violations(graph) == {
        "musictag.stages.registry": ["musictag.training.module"],
        "musictag.training.callbacks": ["datamodules.base"],
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_on_its_own(package):
    """Every module the scan sees is importable (the scan names real modules)."""
    import importlib

    for path in sorted((REPO / package).rglob("*.py")):
        if path.name != "__main__.py":  # running it is the command line
            importlib.import_module(module_name(path))
