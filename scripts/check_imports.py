"""Fail when hotline's modules import each other in a circle, or when a room imports the web pages or webhooks.

Every import counts, at the top of a module or inside a function: a cycle hidden in a function is still
one concept split in the wrong place. `from hotline.x import y` names the submodule hotline.x.y when there
is one, else the module hotline.x. Run from the repository root: `python scripts/check_imports.py`
(CI runs it before the tests). Prints each cycle and exits 1, or prints a summary and exits 0.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hotline"
# Only the app factory may import these rooms: nothing else depends on a page or a webhook.
TOP_ROOMS = ("hotline.web", "hotline.webhooks")
FACTORY = "hotline"


def module_names() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "versions" in path.relative_to(PACKAGE).parts:  # Alembic's migration scripts are loaded by path
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "hotline"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "hotline":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {target for target in found if target != name and target in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports of the web pages or webhooks from outside their own room (the app factory aside)."""
    wrong = []
    for source, targets in graph.items():
        for target in targets:
            room = next((r for r in TOP_ROOMS if target == r or target.startswith(r + ".")), None)
            if room and source != FACTORY and not (source == room or source.startswith(room + ".")):
                wrong.append((source, target))
    return sorted(wrong)


def main() -> int:
    modules = module_names()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    problems = 0
    for component in cycles(graph):
        problems += 1
        inside = {m: sorted(graph[m] & set(component)) for m in component}
        print("import cycle: " + "; ".join(f"{m} -> {', '.join(t)}" for m, t in inside.items()))
    for source, target in upward(graph):
        problems += 1
        print(f"{source} imports {target}: only the app factory may import the web pages and webhooks")
    if problems:
        return 1
    edges = sum(len(t) for t in graph.values())
    print(f"imports: {len(modules)} modules, {edges} imports between them, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
