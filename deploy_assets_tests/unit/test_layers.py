"""The package's shape, held by a test: the code location imports no CLI or local-stack module,
the root keeps the definitions and the pure core, and functions and modules stay short.

Read from the source with `ast` (nothing is imported), so a new import path from definitions.py
into cli/ fails here in milliseconds, naming the chain, instead of in a slow deployment check.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "deploy_assets"
ROOT_MODULES = {
    "__init__",
    "definitions",
    "tags",
    "config",
    "gitops_config",
    "names",
    "matrix",
    "plan",
}
NEVER_IN_THE_CODE_LOCATION = ("deploy_assets.cli", "deploy_assets.local")
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 300


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    resolved = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            resolved.add(name)
    return resolved


def chain_to(start: str, bad: tuple[str, ...]) -> list[str] | None:
    known = modules()
    graph = {m: imports_of(p, known) for m, p in known.items()}
    parents, todo = {start: None}, [start]
    while todo:
        current = todo.pop(0)
        if current.startswith(bad):
            chain = [current]
            while parents[chain[-1]]:
                chain.append(parents[chain[-1]])
            return chain[::-1]
        for nxt in sorted(graph[current] - parents.keys()):
            parents[nxt] = current
            todo.append(nxt)
    return None


def test_the_code_location_imports_no_cli_or_local_module():
    chain = chain_to("deploy_assets.definitions", NEVER_IN_THE_CODE_LOCATION)
    assert chain is None, " -> ".join(chain)


def test_the_root_holds_the_definitions_and_the_pure_core_only():
    assert {p.stem for p in PACKAGE.glob("*.py")} <= ROOT_MODULES


@pytest.mark.parametrize("kind", ["function", "module"])
def test_functions_and_modules_stay_short(kind):
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        if kind == "module" and len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)) if kind == "function" else ():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.name}: {length} lines"
                    )
    assert not too_long, "\n".join(too_long)
