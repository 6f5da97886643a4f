"""The package's import graph has no cycle, counting every import in the code: module level, inside
functions (lazy) and under ``if TYPE_CHECKING:`` alike."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "similarity"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Project modules that ``name`` imports: ``from X import y`` counts X.y when that is a module, else X."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(p): p for p in paths}
    return {
        name: imported(ast.parse(path.read_text()), name, path.name == "__init__.py", set(modules))
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_finder_sees_a_cycle_and_a_lazy_import():
    tree = ast.parse("from .b import x\ndef f():\n    from . import c\nif TYPE_CHECKING:\n    from .d import y\n")
    modules = {"p", "p.a", "p.b", "p.c", "p.d"}
    assert imported(tree, "p.a", False, modules) == {"p.b", "p.c", "p.d"}
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}) == ["p.a", "p.b", "p.c", "p.a"]
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": set()}) is None


def test_the_package_imports_run_one_way():
    graph = import_graph()
    assert {"similarity.tagging.clip", "similarity.index.ann", "similarity.store.mongo.store"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_backends_never_import_their_package():
    graph = import_graph()
    for backend in ("similarity.tagging.clip", "similarity.tagging.gemini", "similarity.tagging.enrich"):
        assert "similarity.tagging" not in graph[backend], backend
    assert "similarity.index.store_index" not in graph["similarity.index.ann"]
