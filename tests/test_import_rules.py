"""The house rules of DESIGN.md, checked on the source: the legacy core knows no plugins,
the engine does not import its surfaces (admin, API, CLI), and plugins import only the SDK."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import BUNDLED, FIXTURES, ROOT

SURFACES = ("stonks_plugins.admin", "stonks_plugins.api", "stonks_plugins.management")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module or ""]).rstrip(".")
            else:
                yield node.lineno, node.module or ""


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{f.relative_to(ROOT)}:{line} imports {name}"
        for f in files
        for line, name in _imports(f)
        if name.startswith(forbidden)
    ]


def test_core_imports_nothing_from_the_plugin_system() -> None:
    files = sorted((ROOT / "stonks_overwatch" / "core").rglob("*.py"))
    assert files
    assert _violations(files, ("stonks_plugins",)) == []


def test_engine_does_not_import_its_surfaces() -> None:
    pkg = ROOT / "stonks_plugins"
    # The surfaces are packages, whose folders the filter skips; every other module is engine.
    assert all((pkg / surface / "__init__.py").is_file() for surface in ("admin", "api"))
    files = [
        f
        for f in sorted(pkg.rglob("*.py"))
        if f.relative_to(pkg).parts[0] not in ("admin", "api", "management", "migrations")
    ]
    assert _violations(files, SURFACES) == []


SDK = "stonks_plugins.sdk"


def _is_public_sdk(module: str) -> bool:
    """``stonks_plugins.sdk`` or one of its public submodules (``stonks_plugins.sdk.exports``),
    never a private one (``stonks_plugins.sdk._deprecated``)."""
    if module == SDK:
        return True
    inside = module.removeprefix(f"{SDK}.")
    return inside != module and not any(part.startswith("_") for part in inside.split("."))


def _plugin_violations(files: list[Path]) -> list[str]:
    return [
        f"{f.relative_to(ROOT)}:{line} imports {name}"
        for f in files
        for line, name in _imports(f)
        if name.startswith(("stonks_plugins", "stonks_overwatch")) and not _is_public_sdk(name)
    ]


@pytest.mark.parametrize("where", [BUNDLED, FIXTURES], ids=["bundled", "fixtures"])
def test_plugins_import_only_the_sdk_from_the_project(where: Path) -> None:
    files = sorted(where.rglob("*.py"))
    assert files
    assert _plugin_violations(files) == []


def test_the_plugin_rule_allows_the_sdk_and_its_public_submodules_only() -> None:
    allowed = ["stonks_plugins.sdk", "stonks_plugins.sdk.exports"]
    refused = [
        "stonks_plugins.sdk._deprecated",
        "stonks_plugins.interface_adapters",
        "stonks_plugins.sdkx",
        "stonks_plugins",
        "stonks_overwatch.core.data",
    ]
    assert [m for m in allowed + refused if _is_public_sdk(m)] == allowed


# -- no import cycles among stonks_plugins modules ----------------------------------------------
#
# The graph counts what actually runs: every import statement anywhere in a module (module
# level, and inside functions, methods and classes - an import in a function is a cycle that
# merely waits for its first call), plus ``importlib.import_module("literal")``. Imports under
# ``if TYPE_CHECKING:`` never run and are left out. A package is a node of its own (its
# ``__init__.py``): importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those
# are edges too - except the importer's own enclosing packages, which Python has already
# started before the importer runs. ``from pkg import name`` imports ``pkg.name`` when that is
# a module, else it reads ``name`` from ``pkg/__init__`` (an edge to ``pkg``).

PLUGINS = "stonks_plugins"
Edge = tuple[str, str, str]  # (importer, imported, "file:line")


def _module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted((ROOT / PLUGINS).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _executed_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` but the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend([node.test, *node.orelse])
        else:
            stack.extend(ast.iter_child_nodes(node))


def _runtime_imports(module: str, path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names taken from it) for each import that can run."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _executed_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).rstrip(".")
            yield node.lineno, base, [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "import_module")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            yield node.lineno, node.args[0].value, []


def _import_graph() -> dict[str, dict[str, list[str]]]:
    """importer -> imported -> ["file:line", ...], for stonks_plugins modules only."""
    files = _module_files()
    graph: dict[str, dict[str, list[str]]] = {m: {} for m in files}
    for module, path in files.items():
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        where = f"{path.relative_to(ROOT)}"
        for line, target, names in _runtime_imports(module, path):
            targets = [f"{target}.{n}" if f"{target}.{n}" in files else target for n in names]
            for full in targets or [target]:
                parts = full.split(".")
                # the module itself, and every enclosing package it runs on the way
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    explicit = i == len(parts)
                    if step in files and step != module and (explicit or step not in own_packages):
                        lines = graph[module].setdefault(step, [])
                        if f"{where}:{line}" not in lines:
                            lines.append(f"{where}:{line}")
    for targets in graph.values():
        for lines in targets.values():
            lines.sort(key=lambda at: int(at.rpartition(":")[2]))
    return graph


def _strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): components with a cycle, each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return sorted(found, key=lambda c: (-len(c), c))


def _shortest_path(
    graph: dict[str, dict[str, list[str]]], start: str, goal: str, within: set[str] | None = None
) -> list[str] | None:
    """Breadth-first: the fewest imports from ``start`` to ``goal`` (both included)."""
    previous: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child in previous or (within is not None and child not in within):
                    continue
                previous[child] = node
                if child == goal:
                    path = [goal]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(child)
        frontier = following
    return None


def _describe(graph: dict[str, dict[str, list[str]]], path: list[str]) -> str:
    """``a -> b -> a`` and, under it, where each of those imports is written."""
    lines = [" -> ".join(path)]
    for a, b in pairwise(path):
        lines.append(f"      {a} -> {b}: {', '.join(graph[a][b])}")
    return "\n".join(lines)


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Enough cycles to show every import that keeps a component cyclic: for each edge inside
    a component not yet shown, the shortest cycle through it."""
    cycles: list[list[str]] = []
    for component in _strongly_connected(graph):
        members = set(component)
        shown: set[tuple[str, str]] = set()
        for a in component:
            for b in sorted(graph[a]):
                if b not in members or (a, b) in shown:
                    continue
                back = [a] if a == b else _shortest_path(graph, b, a, members)
                assert back is not None  # same component
                cycle = [a, *back]
                shown.update(pairwise(cycle))
                cycles.append(cycle)
    return cycles


def test_import_graph_sees_imports_inside_functions_and_skips_type_checking(
    tmp_path: Path,
) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import a.b\n"
        "if TYPE_CHECKING:\n"
        "    import hidden\n"
        "else:\n"
        "    import shown\n"
        "def f():\n"
        "    from . import sibling\n"
        "    from ..up import name\n"
        "class C:\n"
        "    def m(self):\n"
        "        importlib.import_module('dyn.mod')\n"
    )
    found = {(m, tuple(n)) for _, m, n in _runtime_imports("p.q.mod", source)}
    assert found == {
        ("typing", ("TYPE_CHECKING",)),
        ("a.b", ()),
        ("shown", ()),
        ("p.q", ("sibling",)),
        ("p.up", ("name",)),
        ("dyn.mod", ()),
    }


def test_cycle_finder_reports_each_cycle_with_its_lines() -> None:
    graph = {
        "a": {"b": ["a.py:1"]},
        "b": {"c": ["b.py:2"], "a": ["b.py:9"]},
        "c": {"a": ["c.py:3"]},
        "d": {"d": ["d.py:4"]},
        "e": {"a": ["e.py:5"]},
    }
    assert _strongly_connected(graph) == [["a", "b", "c"], ["d"]]
    assert _cycles(graph) == [["a", "b", "a"], ["b", "c", "a", "b"], ["d", "d"]]
    assert _describe(graph, ["a", "b", "a"]).splitlines()[1:] == [
        "      a -> b: a.py:1",
        "      b -> a: b.py:9",
    ]


def test_no_import_cycles_among_plugin_system_modules() -> None:
    graph = _import_graph()
    assert "stonks_plugins.sandbox.process.child" in graph
    cycles = _cycles(graph)
    components = _strongly_connected(graph)
    message = "\n".join(
        [
            f"{len(components)} import cycle(s) among stonks_plugins modules "
            "(imports inside functions count; move the shared piece into a lower module, pass "
            "a callable in, or put a typing-only import under `if TYPE_CHECKING:`):",
            *(f"  component: {', '.join(c)}" for c in components),
            "cycles (each import that keeps a component cyclic is shown at least once):",
            *(f"  {_describe(graph, c)}" for c in cycles),
        ]
    )
    assert not cycles, message


def test_the_child_process_does_not_import_the_registry() -> None:
    """A process-isolated plugin's child runs plugin code beside nothing of the host: it must
    not reach the registry (and with it Django, the database, the other plugins). The child
    is spawned to run ``stonks_plugins.sandbox.process.child.serve``, so it starts by importing
    ``stonks_plugins``, ``stonks_plugins.sandbox``, ``stonks_plugins.sandbox.process`` and
    ``stonks_plugins.sandbox.process.child``."""
    graph = _import_graph()
    child = "stonks_plugins.sandbox.process.child"
    starts = ["stonks_plugins", "stonks_plugins.sandbox", "stonks_plugins.sandbox.process", child]
    forbidden = "stonks_plugins.registry"
    chains = [p for s in starts if (p := _shortest_path(graph, s, forbidden)) is not None]
    assert not chains, "the child process imports the registry:\n" + "\n".join(
        f"  {_describe(graph, p)}" for p in chains
    )
