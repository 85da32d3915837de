"""The architecture, checked: no first-party import cycle, and no import hidden in a function.

The layer contracts themselves are import-linter's (pyproject.toml, run by scripts/test as
`lint-imports`); these two checks are what it does not state.
"""

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("paas", "apps", "deployments")
# A function-local import needs its reason on the same line, after this marker.
LOCAL_IMPORT_REASON = "# local import:"


def _is_facade_edge(importer: str, imported: str) -> bool:
    """A package's __init__ re-exporting its own modules is not a cycle of design."""
    return imported.startswith(importer + ".")


def _first_party_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*FIRST_PARTY, include_external_packages=False, cache_dir=None)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        if ".migrations" in module:
            continue
        edges[module] = {
            target
            for target in graph.find_modules_directly_imported_by(module)
            if not _is_facade_edge(module, target) and ".migrations" not in target
        }
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_first_party_import_cycle():
    assert _cycles(_first_party_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _local_first_party_imports(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
            )
            first_party = any(n.split(".")[0] in (*FIRST_PARTY, "tests") for n in names)
            if first_party and LOCAL_IMPORT_REASON not in lines[node.lineno - 1]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(found))


def test_no_function_local_first_party_import():
    sources = [
        path
        for folder in (*FIRST_PARTY, "tests")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
    ]
    hidden = [place for path in sources for place in _local_first_party_imports(path)]
    assert hidden == []
