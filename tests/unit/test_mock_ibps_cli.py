"""The ``mock-ibps`` command line: its commands, options, defaults and exit codes, with nothing started.

The migration and uvicorn are replaced by recorders; tests/mock_ibps/test_ibps_migrate.py migrates a
real database through the same command.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from ibps_wire.credentials import new_secret
from mock_ibps import cli

runner = CliRunner()
DATABASE = "postgresql+asyncpg://postgres@db.example/ibps"


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch) -> str:
    """Both commands need MOCK_IBPS_DATABASE_URL, and `serve` a token of the install's own; a test
    that wants either unset deletes it."""
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", DATABASE)
    monkeypatch.setenv("MOCK_IBPS_TOKEN", new_secret("cli_test_"))
    return DATABASE


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The database URLs the command migrated, in order; nothing is migrated for real."""
    calls: list[str] = []
    monkeypatch.setattr("mock_ibps.migrate.upgrade", lambda url: calls.append(url))
    return calls


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of each uvicorn.run call; nothing listens."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


def test_help_lists_both_commands() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0, result.output
    for text in ("serve", "migrate", "migrate the database, then serve HTTP", "MOCK_IBPS_DATABASE_URL"):
        assert text in result.output
    assert runner.invoke(cli.app, ["-h"]).output == result.output


def test_serve_help_names_its_options() -> None:
    result = runner.invoke(cli.app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for text in ("--host", "--port", "--no-migrate", "do not run migrations before serving"):
        assert text in result.output


@pytest.mark.parametrize(
    "args", [[], ["bogus"], ["serve", "--port", "x"], ["serve", "--nope"], ["migrate", "extra"]]
)
def test_usage_errors_exit_2(args: list[str], upgrades: list[str], served: list[dict[str, Any]]) -> None:
    assert runner.invoke(cli.app, args).exit_code == 2
    assert upgrades == [] and served == []


def test_migrate_upgrades_the_configured_database(
    monkeypatch: pytest.MonkeyPatch, upgrades: list[str], served: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", "postgresql+asyncpg://db.example/ibps")
    result = runner.invoke(cli.app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert upgrades == ["postgresql+asyncpg://db.example/ibps"]
    assert served == []


def test_serve_migrates_then_serves_on_the_configured_address(
    monkeypatch: pytest.MonkeyPatch, upgrades: list[str], served: list[dict[str, Any]]
) -> None:
    # read when the command runs, not when the module was imported
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", "postgresql+asyncpg://postgres@elsewhere/x")
    monkeypatch.setenv("MOCK_IBPS_HOST", "0.0.0.0")
    monkeypatch.setenv("MOCK_IBPS_PORT", "18001")
    monkeypatch.setenv("MOCK_IBPS_LOG_LEVEL", "info")
    result = runner.invoke(cli.app, ["serve"])
    assert result.exit_code == 0, result.output
    assert upgrades == ["postgresql+asyncpg://postgres@elsewhere/x"]
    assert served == [
        {
            "app": "mock_ibps.app:serve_app",
            "factory": True,
            "host": "0.0.0.0",
            "port": 18001,
            "log_level": "info",
        }
    ]


def test_serve_options_win_over_the_settings(
    monkeypatch: pytest.MonkeyPatch, upgrades: list[str], served: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("MOCK_IBPS_PORT", "18001")
    result = runner.invoke(cli.app, ["serve", "--host", "127.0.0.2", "--port", "9001", "--no-migrate"])
    assert result.exit_code == 0, result.output
    assert upgrades == []
    assert [(s["host"], s["port"], s["log_level"]) for s in served] == [("127.0.0.2", 9001, "warning")]


def test_serve_defaults_come_from_the_settings(upgrades: list[str], served: list[dict[str, Any]]) -> None:
    assert runner.invoke(cli.app, ["serve", "--no-migrate"]).exit_code == 0
    assert [(s["host"], s["port"]) for s in served] == [("127.0.0.1", 8001)]


def test_main_returns_0_and_usage_errors_raise_system_exit(upgrades: list[str]) -> None:
    assert cli.main(["migrate"]) == 0
    assert upgrades == [DATABASE]
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["serve", "--no-migrate"]])
def test_no_database_url_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, command: list[str], upgrades: list[str], served: list[dict[str, Any]]
) -> None:
    monkeypatch.delenv("MOCK_IBPS_DATABASE_URL")
    result = runner.invoke(cli.app, command)
    assert result.exit_code == 2
    assert "MOCK_IBPS_DATABASE_URL" in result.output
    assert upgrades == [] and served == []


def _loaded(modules: str, packages: tuple[str, ...]) -> str:
    """Which modules of `packages` a fresh interpreter holds after importing `modules`."""
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def test_the_command_and_the_app_import_nothing_from_the_gateway() -> None:
    assert _loaded("mock_ibps.cli, mock_ibps.app, mock_ibps.migrate", ("fpslink",)) == "[]"


def test_the_shared_wire_package_imports_neither_service() -> None:
    modules = "ibps_wire.amounts, ibps_wire.enums, ibps_wire.schemas, ibps_wire.pg, ibps_wire.migrate"
    assert _loaded(modules, ("fpslink", "mock_ibps")) == "[]"
