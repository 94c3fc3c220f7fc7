"""`fpslink loadtest` end to end on PostgreSQL: a small run whose output directory holds locust's
CSV and HTML, the reconciliation reports and a summary with no violation, no break and payments
settled; its databases are gone afterwards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pgtest
import pytest
from gw_support import free_port

ROOT = Path(__file__).resolve().parents[2]


def _clean_env() -> dict[str, str]:
    """This environment less any setting that would change the run under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_", "FPSLINK_"))}


@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
async def test_a_small_load_test_settles_payments_and_reconciles(tmp_path: Path) -> None:
    name = f"fpslink_t_load_{os.getpid()}"
    output = tmp_path / "run"
    result = await _run_loadtest(_loadtest_command(name, tmp_path, "8s", users=5), tmp_path, timeout_s=150)
    shown = f"{result.stdout}\n{result.stderr}"
    if output.is_dir():
        log = output / "locust.log"
        shown += "\n--- locust.log ---\n" + (log.read_text()[-3000:] if log.is_file() else "(none)")
    assert result.returncode == 0, shown
    assert "settled payments per second" in result.stdout
    assert "OK: no failures, no violations, no breaks" in result.stdout

    for produced in ("locust_stats.csv", "locust_failures.csv", "locust.html", "summary.json"):
        assert (output / produced).is_file(), f"{produced} missing from {sorted(os.listdir(output))}"
    assert "<html" in (output / "locust.html").read_text(encoding="utf-8").lower()

    summary = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    assert summary["ok"] is True, summary["problems"]
    assert summary["settled"] > 0 and summary["settled_per_s"] > 0
    # the rate is over the time payments were sent, not Locust's start-up and set-up
    assert 0 < summary["payment_window_s"] <= 8 + 1
    assert summary["settled_per_s"] >= summary["settled"] / 8
    assert summary["invariant_violations"] == []
    assert summary["breaks"] == 0
    assert summary["failures"] == 0 and summary["requests"] > 0
    post = summary["payments_endpoint"]
    assert post["requests"] > 0 and post["failures"] == 0 and post["p50_ms"] is not None

    assert summary["reconciliations"], "no business date reconciled"
    for recon in summary["reconciliations"]:
        assert recon["break_count"] == 0
        report = json.loads((output / recon["json_report"]).read_text(encoding="utf-8"))
        assert report["break_count"] == 0
        assert report["business_date"] == recon["business_date"]
        assert "<html" in (output / recon["html_report"]).read_text(encoding="utf-8").lower()

    admin = await asyncpg.connect(pgtest.dsn("postgres"), timeout=10)
    try:
        left = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{name}%")
    finally:
        await admin.close()
    assert not left, f"the run left its databases behind: {[r['datname'] for r in left]}"


@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
@pytest.mark.skipif(os.name == "nt", reason="locust forks its workers")
async def test_locust_runs_distributed_a_master_and_its_workers(tmp_path: Path) -> None:
    name = f"fpslink_t_load_dist_{os.getpid()}"
    command = _loadtest_command(name, tmp_path, "8s", users=4, extra=("--locust-processes", "2"))
    result = await _run_loadtest(command, tmp_path, timeout_s=150)
    log = (tmp_path / "run" / "locust.log").read_text(errors="replace")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log[-3000:]}"
    assert "2 workers connected" in log, log[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["ok"] is True and summary["settled"] > 0, summary["problems"]
    assert summary["p99_by_minute"], "no p99 per minute from the stats history"
    assert "p99 of each minute" in result.stdout
    # the gateway's own view of the same run, from its /metrics when the run began and ended
    assert len(summary["gateway_p99_by_minute"]) == 1 and summary["gateway_p99_by_minute"][0] > 0
    assert "the same, in the gateway" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
async def test_the_simulated_day_moves_the_gateways_clock_hour_by_hour(tmp_path: Path) -> None:
    """A day of 24 s: the gateway's hours and business date are the simulated day's, so southbound
    payments settle in its afternoon whatever the time in Hong Kong, none is refused for its hours,
    and the day reconciled is the simulated one."""
    name = f"fpslink_t_load_day_{os.getpid()}"
    began = datetime.now(UTC)  # near 16:00 UTC, midnight in Hong Kong, the day may be the next
    command = _loadtest_command(name, tmp_path, "24s", users=6, extra=("--shape",))
    result = await _run_loadtest(command, tmp_path, timeout_s=150)
    log = (tmp_path / "run" / "locust.log").read_text(errors="replace")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log[-3000:]}"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["ok"] is True, summary["problems"]
    assert log.count("sandbox clock moved to") >= 20, log[-3000:]  # one move a simulated hour
    assert "OUTSIDE_SERVICE_HOURS" not in log, log[-3000:]
    assert "SOUTHBOUND SETTLED" in log, log[-3000:]
    # the first move is to 00:00 (UTC+8) of the day after the sandbox's, the day reconciled
    first = re.search(r"sandbox clock moved to (\S+) \(simulated day 1, 00:00\)", log)
    assert first is not None, log[-3000:]
    simulated = datetime.fromisoformat(first.group(1))
    assert simulated.utcoffset() == timedelta(hours=8) and simulated.time() == time(0, 0)
    assert simulated.date() == (began + timedelta(hours=8)).date() + timedelta(days=1) or began.hour == 15
    assert [r["business_date"] for r in summary["reconciliations"]] == [simulated.date().isoformat()]
    assert summary["clock_moved_s"] > 22 * 3600
    assert 12 <= summary["payment_window_s"] <= 24  # from the first payment sent to the last


async def _run_loadtest(
    command: list[str], cwd: Path, *, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """The command run to its end in a clean environment, its output kept; wide enough that rich
    does not wrap the lines the tests look for."""
    return await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**_clean_env(), "COLUMNS": "200"},
        cwd=cwd,
    )


def _loadtest_command(
    name: str, tmp_path: Path, duration: str, *, users: int = 2, extra: tuple[str, ...] = ()
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fpslink.cli",
        "loadtest",
        "--workers",
        "1",
        "--users",
        str(users),
        "--duration",
        duration,
        "--database-url",
        pgtest.url(name),
        "--port",
        str(free_port()),
        "--ibps-port",
        str(free_port()),
        "--output",
        str(tmp_path / "run"),
        *extra,
    ]


async def _database_exists(name: str) -> bool:
    admin = await asyncpg.connect(pgtest.dsn("postgres"), timeout=10)
    try:
        return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await admin.close()


@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
async def test_sigterm_stops_a_load_test_cleanly(tmp_path: Path) -> None:
    name = f"fpslink_t_load_term_{os.getpid()}"
    env = _clean_env()
    process = await asyncio.to_thread(
        subprocess.Popen,
        _loadtest_command(name, tmp_path, "5m"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "COLUMNS": "200"},
        cwd=tmp_path,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        while True:  # until locust is running against the stack
            line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=120)
            assert line, "the load test ended before locust started:\n" + "".join(seen)
            seen.append(line)
            if "locust:" in line:
                break
        await asyncio.sleep(3)
        process.terminate()
        rest, _ = await asyncio.to_thread(process.communicate, timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    shown = "".join(seen) + rest
    assert process.returncode == 143, shown
    assert "stopped by SIGTERM" in shown
    assert not await _database_exists(name) and not await _database_exists(f"{name}_ibps")


@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
async def test_a_database_the_load_test_did_not_make_is_never_dropped(tmp_path: Path) -> None:
    name = f"fpslink_t_someone_elses_{os.getpid()}"
    admin = await asyncpg.connect(pgtest.dsn("postgres"), timeout=10)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        result = await _run_loadtest(_loadtest_command(name, tmp_path, "5s"), tmp_path, timeout_s=120)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "was not made by fpslink loadtest or chaos" in result.stdout
        assert await _database_exists(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
