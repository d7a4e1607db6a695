"""The import graph: no cycles between modules, and the core never imports the data packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("musictag", "datamodules")
#: The model and evaluation core: usable without any corpus code.
CORE = (
    "musictag.representations",
    "musictag.frontends",
    "musictag.backends",
    "musictag.heads",
    "musictag.models",
    "musictag.registry",
    "musictag.types",
    "musictag.module",
    "musictag.metrics",
    "musictag.callbacks",
    "musictag.schedules",
)


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
    assert "musictag.module" in graph and "musictag.callbacks" in graph  # the scan sees the project
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_core_imports_nothing_from_datamodules():
    graph = import_graph()
    core = [m for m in graph if any(m == c or m.startswith(c + ".") for c in CORE)]
    assert len(core) > 20
    offending = {m: sorted(t for t in graph[m] if t.split(".")[0] == "datamodules") for m in core}
    assert {m: t for m, t in offending.items() if t} == {}


def test_the_checks_catch_a_cycle_and_a_core_import(tmp_path):
    """The scan itself: a planted cycle and a planted datamodules import are found."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "musictag" / "module.py").write_text("from musictag.metrics import x\n")
    (tmp_path / "musictag" / "metrics.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from musictag.module import y\n"
    )
    (tmp_path / "musictag" / "registry.py").write_text("def f():\n    from datamodules import base\n")
    (tmp_path / "datamodules" / "base.py").write_text("")
    graph = import_graph(tmp_path)
    assert find_cycle(graph) in (
        ["musictag.metrics", "musictag.module", "musictag.metrics"],
        ["musictag.module", "musictag.metrics", "musictag.module"],
    )
    assert graph["musictag.registry"] == {"datamodules.base"}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_on_its_own(package):
    """Every module the scan sees is importable (the scan names real modules)."""
    import importlib

    for path in sorted((REPO / package).rglob("*.py")):
        if path.name != "__main__.py":  # running it is the command line
            importlib.import_module(module_name(path))
