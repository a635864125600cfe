"""The import contract: the arrows of docs/architecture.md, checked on the source, not on trust.

Every import counts, including those inside functions (a late import hides a
cycle, it does not remove it); only `if TYPE_CHECKING:` blocks are left out.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = {"crdt": "preau.crdt", "protocol": "preau.protocol", "node": "preau.node", "cli": "preau.cli"}
# Modules that do I/O or run an event loop: the pure cores never import them.
IO_MODULES = {"asyncio", "socket", "sqlite3", "sqlite_utils", "aiohttp", "subprocess", "threading", "logging",
              "urllib", "http", "select", "selectors", "ssl", "shutil", "tempfile", "zeroconf", "time", "random",
              "secrets"}


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    top = LAYERS[parts[0]]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([top, *parts[1:]])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: frozenset[str] = frozenset()) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)] if child.level > 1 else base
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # `from P import x`: an edge to the module P.x when x is one, to P otherwise
                found.update(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target
                             for alias in child.names)
            visit(child)

    visit(tree)
    return found


def import_graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """module -> the preau modules it imports (resolved to modules that exist)."""
    sources: dict[str, tuple[ast.AST, bool]] = {}
    for folder in LAYERS:
        for path in sorted((root / folder).rglob("*.py")):
            sources[_module_name(path, root)] = (ast.parse(path.read_text(encoding="utf-8")), path.name == "__init__.py")
    graph: dict[str, set[str]] = {}
    for name, (tree, is_package) in sources.items():
        known = frozenset(sources)
        graph[name] = {t for t in _imports(tree, name, is_package, known) if t in sources and t != name}
    return graph


def external_imports(root: pathlib.Path, folder: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((root / folder).rglob("*.py")):
        name = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out[name] = {t.split(".")[0] for t in _imports(tree, name, path.name == "__init__.py")}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def violations(graph: dict[str, set[str]], root: pathlib.Path = ROOT) -> list[str]:
    problems = []
    for cycle in cycles(graph):
        problems.append("import cycle: " + " -> ".join(cycle))
    for module, targets in graph.items():
        for target in targets:
            if module.startswith(("preau.crdt", "preau.protocol")) and target.startswith(("preau.node", "preau.cli")):
                problems.append(f"{module} (pure) imports {target}")
            if module.startswith("preau.crdt") and target.startswith("preau.protocol"):
                problems.append(f"{module} imports {target}: crdt/ and protocol/ do not know each other")
            if module.startswith("preau.protocol") and target.startswith("preau.crdt"):
                problems.append(f"{module} imports {target}: crdt/ and protocol/ do not know each other")
            if module.startswith("preau.node") and target.startswith("preau.cli"):
                problems.append(f"{module} imports {target}: node/ never imports the command line")
            if module.startswith("preau.node.web") and target.startswith("preau.cli"):
                problems.append(f"{module} imports {target}")
            if module.startswith("preau.cli") and target.startswith("preau.node.web"):
                problems.append(f"{module} imports {target}: the command line never imports the web pages "
                                "(words both say live in node/codes.py)")
            if module.startswith("preau.node.records") and target.startswith(("preau.node.federation", "preau.node.web")):
                problems.append(f"{module} imports {target}: records/ knows nothing of the federation or the web")
            if module.startswith("preau.node.federation") and target.startswith(("preau.node.records", "preau.node.web")):
                problems.append(f"{module} imports {target}: federation/ knows nothing of the records or the web")
    for folder in ("crdt", "protocol"):
        for module, tops in external_imports(root, folder).items():
            bad = sorted(tops & IO_MODULES)
            if bad:
                problems.append(f"{module} (pure) imports {', '.join(bad)}")
    return sorted(set(problems))


def test_the_tree_keeps_its_import_contract():
    assert violations(import_graph()) == []


@pytest.mark.parametrize("plant", ["cycle", "web_imports_cli", "cli_imports_web", "pure_does_io"])
def test_the_contract_test_fails_on_a_planted_violation(tmp_path, plant):
    import shutil

    for folder in LAYERS:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    if plant == "cycle":
        with open(tmp_path / "node" / "errors.py", "a", encoding="utf-8") as f:
            f.write("\n\ndef _planted():\n    from preau.node import actions  # noqa\n")
    elif plant == "web_imports_cli":
        with open(tmp_path / "node" / "web" / "grid.py", "a", encoding="utf-8") as f:
            f.write("\nfrom preau.cli import main  # noqa\n")
    elif plant == "cli_imports_web":
        with open(tmp_path / "cli" / "commands" / "releases.py", "a", encoding="utf-8") as f:
            f.write("\n\ndef _planted():\n    from preau.node.web.render import render  # noqa\n")
    else:
        with open(tmp_path / "crdt" / "statistics.py", "a", encoding="utf-8") as f:
            f.write("\nimport sqlite3  # noqa\n")
    assert violations(import_graph(tmp_path), tmp_path) != []
