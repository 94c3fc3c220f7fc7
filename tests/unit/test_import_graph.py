"""No import cycle among the project's modules, not even one hidden behind `if TYPE_CHECKING:`.

A cycle makes import order matter and hides which module is the lower layer; one behind
TYPE_CHECKING is still a cycle in the design. Imports inside functions are left out: they run when
called, after every module has loaded (the CLI's lazy imports of its tools are such).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (ROOT / "src", ROOT)
NAMES = ("fpslink", "fpslink_tools", "ibps_wire", "mock_ibps")


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in PACKAGES:
        for top in NAMES:
            for path in (base / top).rglob("*.py") if (base / top).is_dir() else ():
                parts = list(path.relative_to(base).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


def module_level_imports(tree: ast.Module) -> list[str]:
    """What a module imports as it loads: top level, and inside module-level if/try blocks."""
    names: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.append(node.module)
                names.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)

    visit(tree.body)
    return names


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    return {
        name: {
            dep for dep in module_level_imports(ast.parse(path.read_text())) if dep in found and dep != name
        }
        for name, path in found.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
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


def test_no_module_imports_itself_back_through_others() -> None:
    found = modules()
    assert "fpslink.app" in found and "mock_ibps.app" in found and "ibps_wire.schemas" in found
    assert cycles(graph(found)) == []


@pytest.mark.parametrize(
    ("source_a", "source_b"),
    [
        ("from pkg import b\n", "from pkg.a import X\n"),
        ("import pkg.b\n", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import X\n"),
    ],
)
def test_the_check_sees_a_cycle_even_behind_type_checking(
    tmp_path: Path, source_a: str, source_b: str
) -> None:
    (tmp_path / "a.py").write_text(source_a)
    (tmp_path / "b.py").write_text(source_b)
    found = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    assert cycles(graph(found)) == [["pkg.a", "pkg.b"]]


def test_an_import_inside_a_function_is_no_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from pkg import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from pkg import a\n")
    found = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    assert cycles(graph(found)) == []
