"""The gateway never loads the tooling beside it.

`fpslink_tools` (embedded PostgreSQL, sandbox, chaos and load stacks) may import the gateway; the
gateway may not import it, so that a worker serving payments carries no subprocess launcher or
database dropper. `fpslink.cli` is the one exception, inside the commands that run a tool.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parents[2] / "src" / "fpslink"
TOOLS = re.compile(r"fpslink_tools(?:[.:]|$)")
CLI = re.compile(r"fpslink\.cli(?:[.:]|$)")

PROBE = """
import json, os, sys
os.environ.setdefault("FPSLINK_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/unused")
os.environ["FPSLINK_OPERATOR_KEY"] = "probe_operator_" + os.urandom(24).hex()
os.environ["FPSLINK_IBPS_TOKEN"] = "probe_ibps_" + os.urandom(24).hex()
import fpslink.app
imported = sorted(m for m in sys.modules if m.startswith(("fpslink", "mock_ibps")))
fpslink.app.app_from_env()
built = sorted(m for m in sys.modules if m.startswith(("fpslink", "mock_ibps")))
print(json.dumps({"imported": imported, "built": built}))
"""


def loaded_by_the_gateway() -> dict[str, list[str]]:
    """The fpslink and mock_ibps modules a fresh interpreter holds after importing fpslink.app, and
    after building the app the way a serving worker does."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=120
    )
    found: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_the_gateway_runtime_loads_no_tool_and_no_cli() -> None:
    found = loaded_by_the_gateway()
    assert "fpslink.app" in found["imported"] and "fpslink.api.sandbox_routes" in found["imported"]
    for stage, modules in found.items():
        assert [m for m in modules if m.startswith("fpslink_tools") or m == "fpslink.cli"] == [], stage


def imports_of(
    target: re.Pattern[str], source: str, *, package: str = "fpslink", allow_in_functions: bool = False
) -> list[str]:
    """Each import of `target` in `source` (a module of `package`) as "line: what", wherever it hides
    (module level, `if TYPE_CHECKING:`, a class, a relative import, importlib with a literal name);
    inside a function only if allowed."""
    found: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):
            names = [
                arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            ]
        for name in names:
            if target.match(name) and not (allow_in_functions and in_function):
                found.append(f"{getattr(node, 'lineno', '?')}: {name}")
        inside = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def gateway_modules() -> list[Path]:
    modules = sorted(GATEWAY.rglob("*.py"))
    assert len(modules) > 50, f"no gateway sources under {GATEWAY}"
    return modules


def package_of(path: Path) -> str:
    return ".".join(("fpslink", *path.parent.relative_to(GATEWAY).parts))


def test_no_gateway_module_imports_the_tools() -> None:
    offenders = {
        str(path.relative_to(GATEWAY)): found
        for path in gateway_modules()
        if (
            found := imports_of(
                TOOLS, path.read_text(), package=package_of(path), allow_in_functions=path.name == "cli.py"
            )
        )
    }
    assert offenders == {}, "the gateway imports fpslink_tools (only cli.py may, inside a command)"


def test_only_the_entry_point_imports_the_cli() -> None:
    importers = [
        str(path.relative_to(GATEWAY))
        for path in gateway_modules()
        if imports_of(CLI, path.read_text(), package=package_of(path))
    ]
    assert importers == ["__main__.py"]


@pytest.mark.parametrize(
    ("source", "allowed", "caught"),
    [
        ("from fpslink_tools import sandbox\n", True, ["1: fpslink_tools.sandbox"]),
        ("import fpslink_tools.stack as s\n", False, ["1: fpslink_tools.stack"]),
        (
            "if TYPE_CHECKING:\n    from fpslink_tools.chaos import Cfg\n",
            True,
            ["2: fpslink_tools.chaos.Cfg"],
        ),
        ("class C:\n    from fpslink_tools import pgadmin\n", True, ["2: fpslink_tools.pgadmin"]),
        ("def f():\n    from fpslink_tools import chaos\n", False, ["2: fpslink_tools.chaos"]),
        ("def f():\n    from fpslink_tools import chaos\n", True, []),
        ("importlib.import_module('fpslink_tools.loadtest')\n", False, ["1: fpslink_tools.loadtest"]),
        ("serve('fpslink_tools.x:app')\n", False, ["1: fpslink_tools.x:app"]),
        ("from fpslink import toolsy\nimport fpslink_toolsmith\n", False, []),
    ],
)
def test_the_check_sees_every_kind_of_import(source: str, allowed: bool, caught: list[str]) -> None:
    assert imports_of(TOOLS, source, allow_in_functions=allowed) == caught


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from fpslink import __version__, cli, logs\n", ["1: fpslink.cli"]),
        ("from fpslink.cli import main\n", ["1: fpslink.cli.main"]),
        ("import fpslink.cli\n", ["1: fpslink.cli"]),
        ("from fpslink import client\nimport fpslink.clinic\n", []),
    ],
)
def test_the_check_sees_the_cli_imported(source: str, caught: list[str]) -> None:
    assert imports_of(CLI, source) == caught


@pytest.mark.parametrize(
    ("package", "source", "caught"),
    [
        ("fpslink", "from . import cli\n", ["1: fpslink.cli"]),
        ("fpslink.api", "from ..cli import main\n", ["1: fpslink.cli.main"]),
        ("fpslink.api", "from . import cli\n", []),
    ],
)
def test_the_check_resolves_relative_imports(package: str, source: str, caught: list[str]) -> None:
    assert imports_of(CLI, source, package=package) == caught
