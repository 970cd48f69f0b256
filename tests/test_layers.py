"""The library's imports point one way: no module imports, directly or through others, a module that
imports it, and no stage package imports one that imports it back.

The graph is read from the source with ``ast`` (nothing is imported), counting every import statement,
those inside functions too: a lazy import hides a circle from Python's start-up, not from a reader.
An import names the module it imports (``from synthdistill.a.b import c`` counts ``a.b``, and ``a.b.c``
too when that is a module). A submodule is not counted as importing its own package: Python runs the
package's ``__init__`` first, but that is where a package keeps what it offers (``teachers`` picks a
backend among its own modules), not an arrow back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

SRC = REPO / "src"
PACKAGE = "synthdistill"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module's dotted name -> (file, whether it is a package's ``__init__``)."""
    modules = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The dotted names one import statement imports (``from x import y``: x, and x.y in case it is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the importing module's package, up level - 1 packages
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Each module of the library -> the library's modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[name].update(m for m in _imported(node, package) if m in modules and m != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan): each a set of modules every
    one of which imports, directly or through others, every other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _top_level(module: str) -> str:
    """The stage package or shared module a module belongs to: ``synthdistill.students.predict`` -> students."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_the_graph_sees_imports_inside_functions_and_the_known_edges():
    graph = import_graph()
    # A module-level import and one inside a function (settings.check_first_token_scores).
    assert "synthdistill.tasks.base" in graph["synthdistill.annotation.parsing"]
    assert "synthdistill.annotation.teachers.chat_api" in graph["synthdistill.settings"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_a_module_that_imports_it():
    assert circles(import_graph()) == []


def test_no_stage_package_imports_one_that_imports_it_back():
    """The same at the level of annotation/, labels/, students/, evaluation/, ... and the shared modules:
    a stage imports earlier stages and the modules below them, never a later one."""
    packages: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        packages.setdefault(_top_level(module), set()).update(
            _top_level(other) for other in imported if _top_level(other) != _top_level(module)
        )
    assert circles(packages) == []


def test_no_function_in_the_library_is_over_80_lines():
    """A function that long does several jobs: split it into helpers that each do one (issue 26)."""
    long = [
        f"{path.relative_to(SRC)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in (SRC / PACKAGE).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert long == []
