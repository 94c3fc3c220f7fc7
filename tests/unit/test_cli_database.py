"""Commands that read what a sandbox wrote refuse, with a clear message, where no sandbox ran."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fpslink.cli import app


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
