"""`fpslink loadtest` end to end on PostgreSQL: a small run whose output directory holds locust's
CSV and HTML, the reconciliation reports and a summary with no violation, no break and payments
settled; its databases are gone afterwards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from conftest import DATABASES, PG_SERVER
from gw_support import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif("postgresql" not in DATABASES, reason="fpslink loadtest runs on PostgreSQL")
@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
async def test_a_small_load_test_settles_payments_and_reconciles(tmp_path: Path) -> None:
    name = f"fpslink_t_load_{os.getpid()}"
    output = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_", "FPSLINK_"))}
    command = [
        sys.executable,
        "-m",
        "fpslink.cli",
        "loadtest",
        "--workers",
        "1",
        "--users",
        "5",
        "--duration",
        "8s",
        "--database-url",
        f"postgresql+asyncpg://{PG_SERVER}/{name}",
        "--port",
        str(free_port()),
        "--ibps-port",
        str(free_port()),
        "--output",
        str(output),
    ]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env={**env, "COLUMNS": "120"},
        cwd=tmp_path,
    )
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

    admin = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
    try:
        left = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{name}%")
    finally:
        await admin.close()
    assert not left, f"the run left its databases behind: {[r['datname'] for r in left]}"
