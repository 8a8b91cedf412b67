"""The layout is one-way: every import points down the stack edgepose <- compress <- deploy <- quickstart <- benchmarks.

Walks every module's imports with ``ast`` (module level and inside functions alike, since a function-level import is
still a dependency) and fails on an import that points up the stack or on any import cycle between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STACK = ("edgepose", "compress", "deploy", "quickstart", "benchmarks")
LAYER = {name: level for level, name in enumerate(STACK)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for package in STACK for p in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports, resolved to the deepest module that exists (``from a import b`` -> a.b)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in LAYER:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None; iterative depth-first search."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_every_import_points_down_the_stack() -> None:
    graph = import_graph()
    assert len(graph) > 100, "the walk found too few modules: is ROOT right?"
    upward = [
        f"{src} imports {dst}"
        for src, targets in sorted(graph.items())
        for dst in sorted(targets)
        if LAYER[dst.split(".")[0]] > LAYER[src.split(".")[0]]
    ]
    assert not upward, "imports pointing up the stack " + " <- ".join(STACK) + ":\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"a2"}, "a2": set(), "b": {"c"}, "c": {"b"}}, True),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], has_cycle: bool) -> None:
    assert (find_cycle(graph) is not None) is has_cycle


def test_resolves_from_imports_to_submodules(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("from edgepose import card\nfrom edgepose.cuda import crop as c\nimport edgepose.io.x\n")
    known = {"edgepose", "edgepose.card", "edgepose.cuda", "edgepose.cuda.crop", "edgepose.io"}
    assert imported_modules("edgepose.mod", source, known) == {"edgepose.card", "edgepose.cuda.crop", "edgepose.io"}
