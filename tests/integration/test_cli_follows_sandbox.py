"""The CLI beside a running sandbox: from its directory, with no variable set, on whatever ports it was
given; and every command's exit code says fine (0), found something (1) or could not run (2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from gw_support import free_port, sandbox_in_tmp, user_environment

from fpslink_tools.sandbox import SandboxProcess

HK = timedelta(hours=8)


def _cli(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fpslink.cli", *args],
        cwd=workdir,
        env={**user_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Path, SandboxProcess, int]]:
    with sandbox_in_tmp("fpslink-cli-") as running:
        yield running


def test_check_and_recon_follow_the_sandbox_with_no_variable_set(
    sandbox: tuple[Path, SandboxProcess, int],
) -> None:
    workdir, _, ibps_port = sandbox
    state = json.loads((workdir / ".fpslink" / "sandbox.json").read_text())
    assert state["ibps_url"] == f"http://127.0.0.1:{ibps_port}"
    assert "operator_key" not in state and "ibps_token" not in state, "no key in the state file"
    assert (workdir / ".fpslink" / "sandbox.json").stat().st_mode & 0o077 == 0

    check = _cli(workdir, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all invariants hold" in check.stdout

    today = (datetime.now(UTC) + HK).date().isoformat()
    report = workdir / "recon.json"
    recon = _cli(workdir, "recon", "--date", today, "--format", "json", "--output", str(report))
    assert recon.returncode == 0, recon.stdout + recon.stderr
    assert json.loads(report.read_text())["break_count"] == 0
    assert "Traceback" not in recon.stdout + recon.stderr


def test_a_command_that_cannot_run_says_why_in_one_line_and_exits_2(
    sandbox: tuple[Path, SandboxProcess, int],
) -> None:
    workdir, _, _ = sandbox
    unreachable = {"FPSLINK_IBPS_URL": f"http://127.0.0.1:{free_port()}"}
    check = _cli(workdir, "check", env=unreachable)
    assert check.returncode == 2, check.stdout + check.stderr
    assert "could not read mock_ibps" in check.stderr and "Traceback" not in check.stderr

    elsewhere = Path(tempfile.mkdtemp(prefix="fpslink-nosandbox-"))
    try:
        today = (datetime.now(UTC) + HK).date().isoformat()
        recon = _cli(elsewhere, "recon", "--date", today, "--output", str(elsewhere / "r.html"))
        assert recon.returncode == 2, recon.stdout + recon.stderr
        assert "no sandbox data" in recon.stderr and "Traceback" not in recon.stdout + recon.stderr
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)

    broken = {"FPSLINK_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"}
    quiet = _cli(workdir, "check", env=broken)
    assert quiet.returncode == 2, quiet.stdout + quiet.stderr
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "could not run" in lines[0] and "--debug" in lines[0], quiet.stderr
    loud = _cli(workdir, "check", "--debug", env=broken)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_the_banner_check_command_runs_as_printed(sandbox: tuple[Path, SandboxProcess, int]) -> None:
    workdir, running, _ = sandbox
    line = next(line for line in running.lines if "check every ledger invariant" in line)
    command = line.split(":", 1)[1].split()
    assert command[-1] == "check", line
    executable = command[0] if os.path.isabs(command[0]) else shutil.which(command[0]) or command[0]
    if not os.path.isabs(executable):  # a path relative to where the banner was printed
        executable = str((workdir / executable).resolve())
    done = subprocess.run(
        [executable, *command[1:]], cwd=workdir, env=user_environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    gateway = json.loads((workdir / ".fpslink" / "sandbox.json").read_text())["gateway_url"]
    assert httpx.get(f"{gateway}/healthz", timeout=10).status_code == 200


def test_a_second_sandbox_in_the_same_directory_refuses_and_leaves_the_first_running(
    sandbox: tuple[Path, SandboxProcess, int],
) -> None:
    """`python3 tasks.py sandbox` typed again in another terminal: one line and exit 2, before it
    starts anything; no banner of a sandbox that is not there, and the running one's record stays."""
    workdir, running, ibps_port = sandbox
    record = workdir / ".fpslink" / "sandbox.json"
    before = record.read_text()
    port = urlsplit(json.loads(before)["gateway_url"]).port
    again = _cli(workdir, "sandbox", "--port", str(port), "--ibps-port", str(ibps_port))
    assert again.returncode == 2, again.stdout + again.stderr
    assert "is running" not in again.stdout
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port} is in use" in lines[0], again.stderr
    assert "the sandbox of this directory" in lines[0] and "--port" in lines[0], lines[0]
    assert record.read_text() == before
    assert running.process.poll() is None
    assert _cli(workdir, "check").returncode == 0
