"""The package structure of ``lrp_core`` and ``lrp_widgets``, read from their source.

Every module of the two packages is parsed with ``ast`` (imports inside functions and classes
included; relative imports resolved against the importing module's package) to build the import
graph. Three rules are checked on it:

1. **No import cycles.** An edge ``A -> B`` means that running ``A`` imports module ``B``: the
   module an ``import`` or ``from ... import`` statement names, the submodule a
   ``from package import name`` names when ``name`` is a module, and every package on the way
   down to it that is not already a package of ``A`` (importing ``a.b.c`` runs ``a/b/__init__``,
   but a module never "imports" the packages it lives in: they are initialised first). Imports
   under ``if TYPE_CHECKING:`` count too: they never run, but a cycle through one still ties
   two modules' responsibilities together (a lazy or type-only import hides a cycle, it does not
   remove it). A cycle is reported as the chain of modules that closes it.

2. **No module imports another package's private module.** A *package* is a directory with an
   ``__init__.py``; a module belongs to the package of its directory (``lrp_core/core.py`` and
   ``lrp_core/_engine/__init__.py`` belong to ``lrp_core`` and ``lrp_core._engine``). A dotted
   name component that starts with one underscore (``_engine``, ``_commands``, not
   ``__init__``) is private to the package that contains it, that package's subpackages
   included. So a module may import ``owner._x`` only when it lies in ``owner`` (or below), and
   may import a module *inside* a private package ``owner._x.y`` only when it lies in
   ``owner._x`` itself: ``lrp_core.live.dispatch`` may import ``lrp_core._engine`` (the
   package's one door) but not ``lrp_core._engine.hook_function``, and ``lrp_widgets`` may not
   import ``lrp_core._anything``. Type-only imports count here as well.

3. **``import lrp_core`` stays light**: importing every module of ``lrp_core`` in a fresh
   interpreter loads no widget code and none of the optional or test-only libraries.

Each rule is checked for ``lrp_core`` and ``lrp_widgets`` separately, so that a problem is
reported under the package that has it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lrp_core", "lrp_widgets")
#: never loaded by any ``lrp_core`` module (widget code, optional extras, test-only oracles)
HEAVY = (
    "lrp_widgets",
    "anywidget",
    "ipywidgets",
    "torchvision",
    "zennit",
    "h5py",
    "ray",
    "transformers",
    "lxt",
)


@dataclass(frozen=True)
class Import:
    """One module named by an import statement of ``importer``."""

    importer: str
    target: str
    line: int
    type_only: bool


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the two packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def package_of(module: str) -> str:
    """The package a module belongs to: itself for a package, else its parent."""
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def within(module_package: str, owner: str) -> bool:
    return module_package == owner or module_package.startswith(owner + ".")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, type_only: bool = False):
    """(import statement, under ``if TYPE_CHECKING``) for every import anywhere in ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_only
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _statements(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _statements(ast.Module(body=[child], type_ignores=[]), type_only)
        else:
            yield from _statements(node, type_only)


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = package_of(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[Import]:
    """The modules of the two packages that ``module`` names in its import statements."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node, type_only in _statements(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            source = _absolute(module, node)
            targets = [source]
            targets += [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in MODULES]
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                found.append(Import(module, target, node.lineno, type_only))
    return found


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (see the module docstring, rule 1)."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in ALL_IMPORTS:
        parts = imp.target.split(".")
        own = package_of(imp.importer)
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in MODULES and name != imp.importer and not within(own, name):
                graph[imp.importer].add(name)
    return graph


def tangles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closing chain of modules per group of ``tangles``."""
    return [_closing_chain(graph, group) for group in tangles(graph)]


def _closing_chain(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """A shortest path from the group's first module back to itself inside the group."""
    start, members = group[0], set(group)
    paths = {nxt: [start, nxt] for nxt in sorted(graph[start] & members)}
    frontier = list(paths)
    while start not in paths:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    return paths[start]


def private_violations(imp: Import) -> str | None:
    """Why ``imp`` reaches into another package's private module, or None (rule 2)."""
    parts = imp.target.split(".")
    own = package_of(imp.importer)
    for i, part in enumerate(parts):
        if not part.startswith("_") or part.startswith("__"):
            continue
        owner = ".".join(parts[:i])
        private = ".".join(parts[: i + 1])
        if not within(own, owner):
            return f"{private} is private to {owner}"
        if i < len(parts) - 1 and not within(own, private):
            return f"{imp.target} is inside the private package {private}: import {private}"
    return None


def _in(package: str, module: str) -> bool:
    return module.split(".")[0] == package


def test_the_graph_sees_every_kind_of_import():
    """The parser finds relative, nested and type-only imports (so the checks below can fail)."""
    edges = {(imp.importer, imp.target, imp.type_only) for imp in ALL_IMPORTS}
    assert ("lrp_core.core", "lrp_core._engine", False) in edges  # relative, top level
    assert ("lrp_core._engine.gamma", "lrp_core._engine.protocols", True) in edges  # type-only
    assert ("lrp_core.live.editing", "lrp_core.live.config", False) in edges  # package import
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    door = Import("lrp_core.live.dispatch", "lrp_core._engine", 1, False)
    assert private_violations(door) is None
    assert private_violations(
        Import("lrp_core.live.dispatch", "lrp_core._engine.relevance", 1, False)
    )
    assert private_violations(Import("lrp_widgets.explorer", "lrp_core._engine", 1, False))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    graph = import_graph()
    found = [
        f"{' -> '.join(_closing_chain(graph, group))}  (group: {', '.join(group)})"
        for group in tangles(graph)
        if _in(package, group[0])
    ]
    assert not found, f"import cycles in {package}:\n" + "\n".join(found)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_another_packages_private_module(package):
    found = [
        f"{imp.importer}:{imp.line} imports {imp.target} ({why})"
        for imp in ALL_IMPORTS
        if _in(package, imp.importer) and (why := private_violations(imp))
    ]
    assert not found, "\n".join(found)


def test_importing_lrp_core_loads_no_widget_or_optional_code():
    core_modules = sorted(m for m in MODULES if _in("lrp_core", m))
    program = (
        "import importlib, json, sys\n"
        f"for name in {core_modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert "lrp_core.live" in loaded and "lrp_core._engine" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert not heavy, f"importing lrp_core loads {heavy}"
