"""The house rules that keep the code navigable, checked on every run (issue 24):

* imports between the top-level packages of ``gatortron_jax`` run one way: the package graph
  (an edge for every ``import``/``from`` of another package, at module level or inside a
  function) has no cycle, so there is an order from ``core`` at the bottom to ``cli`` at the top;
* no library file grows past 600 lines (split a room by concern before it does).
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

MAX_LINES = 600


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "gatortron_jax" else None


def _package_edges(root: pathlib.Path) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted((root / "gatortron_jax").rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        here = _package_of(".".join(rel.parts))
        if here is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names]
                                         if node.module == "gatortron_jax" else [])
            for name in names:
                there = _package_of(name)
                if there and there != here:
                    edges[here].add(there)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(edges):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_imports_between_packages_run_one_way(repo_root):
    edges = _package_edges(repo_root)
    assert edges["cli"] and "cli" not in {p for vs in edges.values() for p in vs}, "cli is the top: nothing imports it"
    cycle = _cycle(edges)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_library_file_over_600_lines(repo_root):
    long = {str(p.relative_to(repo_root)): n for p in (repo_root / "gatortron_jax").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these by concern: {long}"
