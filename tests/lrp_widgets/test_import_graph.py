"""The import graph of ``lrp_widgets``, read from the source with ``ast``: no cycles, and no
module imports a private module of a package it is not part of.

Every import counts, also those inside functions (lazy imports only hide a cycle at run time)
and those under ``if TYPE_CHECKING:`` (they still tie the two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lrp_widgets

ROOT = Path(lrp_widgets.__file__).resolve().parent
#: private lrp_core modules still imported until lrp_core's new layout gives them a public door
PENDING_LRP_CORE = {"lrp_core._live_editing"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from a.b import c``: ``a.b``, and
    ``a.b.c`` too when that is a module)."""
    names: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def all_imports() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in ROOT.rglob("*.py")}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], path[len(path) :] = 1, [node]
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def private_owner(module: str) -> str | None:
    """The package whose private module ``module`` is (``a.b._c.d`` -> ``a.b``), or None."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_the_graph_sees_the_package():
    edges = graph()
    assert "lrp_widgets.compare._widget" in edges["lrp_widgets.compare"]
    assert "lrp_widgets._base" in edges["lrp_widgets.explorer._traits"]


def test_finds_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


def test_no_import_cycles_inside_lrp_widgets():
    assert find_cycle(graph()) is None


def test_no_module_imports_another_packages_private_module():
    wrong = []
    for name, imports in all_imports().items():
        for target in imports:
            owner = private_owner(target)
            pending = any(target.startswith(p) for p in PENDING_LRP_CORE)
            if owner is None or pending:
                continue
            if not (name == owner or name.startswith(owner + ".")):
                wrong.append(f"{name} imports {target}")
    assert wrong == []
