"""The package's shape holds: no import cycle (function-level imports included), no module
over 400 lines, the layers import-linter checks named by folders that exist."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

import chatmagic

PACKAGE = Path(chatmagic.__file__).parent
#: STYLE.md's bound: no file over ~400 lines without a reason.
MAX_LINES = 400


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if not imported.startswith("chatmagic"):
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module.startswith("chatmagic") and module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = grimp.build_graph("chatmagic")  # every import statement, in functions too
    assert len([m for m in graph.modules if m.startswith("chatmagic.")]) > 50
    assert _cycles(graph) == []


def test_a_circle_would_be_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("chatmagic.a", "chatmagic.b", "chatmagic.c"):
        graph.add_module(module)
    graph.add_import(importer="chatmagic.a", imported="chatmagic.b")
    graph.add_import(importer="chatmagic.b", imported="chatmagic.a")
    graph.add_import(importer="chatmagic.b", imported="chatmagic.c")
    assert _cycles(graph) == [["chatmagic.a", "chatmagic.b"]]


def test_no_module_is_over_400_lines() -> None:
    long = {str(path.relative_to(PACKAGE)): lines for path in PACKAGE.rglob("*.py")
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_has_its_layer() -> None:
    """Each subpackage but testing/ (which stands apart) is in the layers contract, and the
    contract names no package that is gone."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    config = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"]
                    if c["type"] == "layers")
    named = {name.strip().removeprefix("chatmagic.") for layer in contract["layers"]
             for name in layer.split("|")}
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert named == packages - {"testing"}
