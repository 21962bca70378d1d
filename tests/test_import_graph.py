"""The import graph of ``harness/`` has no cycle, and ``harness.config`` sits on leaf modules only.

Every module is parsed with :mod:`ast` (nothing is imported): module-level imports, imports inside
functions and ``if TYPE_CHECKING:`` blocks all count, and relative imports are resolved.
``import a.b.c`` is an edge to ``a.b.c``; ``from a.b import c`` is an edge to ``a.b`` (its namespace
is read) and, when ``a.b.c`` is a module, to ``a.b.c`` too. So ``from harness.fleet import queue`` in a
module that ``harness/fleet/__init__.py`` imports is a cycle, and ``import harness.fleet.queue as queue``
is not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: modules that import nothing of the harness but ``harness.errors`` (which imports nothing of it)
LEAF_ROOTS = frozenset({"harness.errors"})
#: the leaf modules ``harness.config`` is built on
CONFIG_LEAVES = {"harness.errors", "harness.metric_catalog", "harness.model_names"}


def discover(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir`` (a package)."""
    base = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _target(name: str, modules: Iterable[str], *, nearest: bool) -> str | None:
    """``name`` if it is a known module; with ``nearest``, else its nearest known ancestor; else None."""
    known = set(modules)
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        if not nearest:
            return None
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The known modules ``module`` (its file at ``path``) imports, anywhere in the file."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    deps: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named = [_target(alias.name, modules, nearest=True) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            named = [_target(source, modules, nearest=True),
                     *(_target(f"{source}.{alias.name}", modules, nearest=False) for alias in node.names)]
        else:
            continue
        deps.update(t for t in named if t is not None and t != module)
    return deps


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    modules = discover(package_dir)
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; components sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return sorted(components)


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the first module of ``component``: ``[a, b, ..., a]`` (shortest, by BFS)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is not strongly connected")


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b -> a`` for each strongly connected component of more than one module, with its members."""
    return [f"{' -> '.join(a_cycle(graph, c))} (component: {', '.join(c)})"
            for c in strongly_connected(graph) if len(c) > 1]


def _leaves(graph: dict[str, set[str]], roots: set[str] | frozenset[str]) -> set[str]:
    found = {m for m in roots if m in graph and not graph[m]}
    return found | {m for m, deps in graph.items() if deps <= found}


def leaves(graph: dict[str, set[str]]) -> set[str]:
    """Modules whose imports of the package are only :data:`LEAF_ROOTS`, and the roots themselves."""
    return _leaves(graph, LEAF_ROOTS)


GRAPH = import_graph(ROOT / "harness")


def test_the_harness_has_no_import_cycle():
    found = cycles(GRAPH)
    assert not found, "import cycles in harness/:\n" + "\n".join(found)


def test_config_imports_only_leaf_modules():
    leaf = leaves(GRAPH)
    assert CONFIG_LEAVES <= leaf, f"not leaves: {sorted(CONFIG_LEAVES - leaf)}"
    assert GRAPH["harness.config"] <= CONFIG_LEAVES, sorted(GRAPH["harness.config"] - CONFIG_LEAVES)
    assert GRAPH["harness.config"] <= leaf


@pytest.mark.parametrize("module", ["harness.errors", "harness.metric_catalog", "harness.model_names",
                                    "harness.validation", "harness.hashing", "harness.sparsity"])
def test_the_shared_helpers_are_leaves(module):
    assert module in leaves(GRAPH), sorted(GRAPH[module])


# ------------------------------------------------------------------ the checker itself


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "pkg"


def test_a_cycle_through_a_function_local_relative_import_is_found(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "def f():\n    from ..c import thing\n",
        "c.py": "import pkg.a as a\n",
        "d.py": "from . import c\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"} and graph["pkg.d"] == {"pkg", "pkg.c"}
    assert cycles(graph) == ["pkg.a -> pkg.sub.b -> pkg.c -> pkg.a (component: pkg.a, pkg.c, pkg.sub.b)"]


def test_a_type_checking_import_counts(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.y import Y\n",
        "y.py": "from pkg.x import X\n",
    })
    assert cycles(import_graph(pkg)) == ["pkg.x -> pkg.y -> pkg.x (component: pkg.x, pkg.y)"]


@pytest.mark.parametrize(("line", "cyclic"), [("from pkg import queue\n", True),
                                               ("import pkg.queue as queue\n", False)])
def test_importing_a_sibling_through_the_package_that_imports_you_is_a_cycle(tmp_path, line, cyclic):
    pkg = _package(tmp_path, {"__init__.py": "from pkg.worker import work\n", "worker.py": line, "queue.py": ""})
    expected = ["pkg -> pkg.worker -> pkg (component: pkg, pkg.worker)"] if cyclic else []
    assert cycles(import_graph(pkg)) == expected


def test_a_leaf_imports_only_the_errors_module(tmp_path):
    pkg = _package(tmp_path, {"__init__.py": "", "errors.py": "import os\n", "leaf.py": "from pkg.errors import E\n",
                              "mid.py": "from pkg import leaf\n"})
    graph = import_graph(pkg)
    found = _leaves(graph, {"pkg.errors"})
    assert {"pkg.errors", "pkg.leaf"} <= found and "pkg.mid" not in found
