"""The package's shape (docs/architecture.md): no import circles between modules, and imports point down the
layers. Every import counts, including those inside functions and under TYPE_CHECKING: a circle hidden there
still means two modules each own half of one thing."""

from __future__ import annotations

import ast
from pathlib import Path

import testbed

PACKAGE = Path(testbed.__file__).resolve().parent
# Top to bottom, as in docs/architecture.md; a layer may import only the layers after it.
LAYERS = ("cli", "experiment", "emu", "node", "policy", "learning", "control", "link", "phy", "radio", "channel")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("testbed", *path.relative_to(PACKAGE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    """module -> the testbed modules it imports (``from pkg import name`` counts as pkg.name if that is a module)."""
    modules = _modules()

    def known(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.startswith("testbed.")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("testbed."):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else known(node.module))
        graph[name] = targets - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_finder_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert _cycles(_import_graph()) == []


def test_imports_point_down_the_layers():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = []
    for module, targets in _import_graph().items():
        here = (module.split(".") + [""])[1]
        for target in targets:
            there = (target.split(".") + [""])[1]
            if here in rank and there in rank and rank[there] < rank[here]:
                upward.append(f"{module} -> {target}")
    assert sorted(upward) == []
