"""Commands that read what a sandbox wrote refuse, with a clear message, where no sandbox ran; a
sandbox or gateway whose port is taken refuses in one line before it starts anything."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fpslink.cli import app
from fpslink_tools.local_secrets import forget_sandbox, write_sandbox


@pytest.mark.parametrize("command", [["check"], ["recon", "--date", "2026-06-22", "--output", "r.html"]])
def test_no_sandbox_data_here_says_where_to_run_it(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FPSLINK_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "no sandbox data in" in result.output and "FPSLINK_DATABASE_URL" in result.output
    assert not (tmp_path / ".fpslink").exists(), "nothing is initialized where no sandbox ran"


@pytest.mark.parametrize("command", [["sandbox"], ["serve", "--insecure-local"]])
def test_a_port_in_use_is_one_line_and_exit_2_before_anything_starts(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not uvicorn's exit 3 after a banner that announced a sandbox that never bound."""
    monkeypatch.chdir(tmp_path)
    for name in ("FPSLINK_DATABASE_URL", "FPSLINK_OPERATOR_KEY", "FPSLINK_IBPS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, [*command, "--port", str(port)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"127.0.0.1:{port} is in use" in lines[0] and "--port" in lines[0], lines[0]
    assert not (tmp_path / ".fpslink" / "pg").exists(), "no database was started"


def test_a_sandbox_forgets_only_its_own_record(tmp_path: Path) -> None:
    """A second start that failed leaves the running sandbox's record for check and recon to follow."""
    record = write_sandbox(
        tmp_path, gateway_url="http://127.0.0.1:1", ibps_url="http://127.0.0.1:2", database_url=""
    )
    state = json.loads(record.read_text())
    record.write_text(json.dumps({**state, "pid": os.getppid()}))  # another process's, alive
    forget_sandbox(tmp_path)
    assert record.exists()
    record.write_text(json.dumps(state))  # this process's
    forget_sandbox(tmp_path)
    assert not record.exists()
