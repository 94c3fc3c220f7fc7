"""`fpslink sandbox` as a new user runs it: no database given, so the embedded PostgreSQL.

The banner's curl settles, `fpslink check` beside the running sandbox finds every invariant
holding, Ctrl-C stops the sandbox and its PostgreSQL, and the next start finds the same data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from gw_support import free_port

from fpslink.demo import demo_key
from fpslink_tools.embedded_pg import EmbeddedPostgres
from fpslink_tools.sandbox import SandboxProcess

START_TIMEOUT_S = 120.0


class Sandbox(SandboxProcess):
    """The sandbox on free ports, with the default number of workers unless one is given."""

    def __init__(self, workdir: Path, port: int, *, workers: int | None = None) -> None:
        options = ["--port", str(port), "--ibps-port", str(free_port())]
        super().__init__(workdir, options + ([] if workers is None else ["--workers", str(workers)]))

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> str:
        banner = super().wait_ready(timeout_s)
        assert "fpslink sandbox is running" in banner, banner[-3000:]
        return banner


def pay_demo(port: int, operator_key: str) -> dict[str, object]:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/v1/payments",
        headers={
            "Authorization": f"Bearer {demo_key(operator_key, 'HARBOURHK')}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
        json={
            "debtor_account_id": "HKDEMO0001",
            "creditor": {"proxy_type": "MOBILE", "proxy_value": "+86 138 0013 8000"},
            "amount": "1000.00",
            "currency": "HKD",
            "purpose": "FAMILY_SUPPORT",
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def assert_every_worker_runs_a_day_ahead(port: int, operator_key: str) -> None:
    """The moved time survived the restart, and a move reaches every worker within a second: each
    answer, over new connections that the kernel spreads over both workers, carries the new time."""
    url = f"http://127.0.0.1:{port}"
    seen = httpx.get(
        f"{url}/v1/sandbox/clock", headers={"Authorization": f"Bearer {operator_key}"}, timeout=30
    )
    assert seen.json()["offset_seconds"] >= 86400, seen.json()
    moved = httpx.post(
        f"{url}/v1/sandbox/clock/advance",
        headers={"Authorization": f"Bearer {operator_key}"},
        json={"seconds": 3600},
        timeout=30,
    )
    assert moved.status_code == 200, moved.text
    expected = datetime.fromisoformat(moved.json()["now"])
    time.sleep(1.0)
    for _ in range(16):
        with httpx.Client(base_url=url, timeout=30) as fresh:  # a new connection each time
            shown = datetime.fromisoformat(fresh.get("/healthz").headers["Fpslink-Sandbox-Time"])
        assert shown >= expected.replace(microsecond=0), (shown, expected)


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the sandbox runs; whatever happens, no embedded PostgreSQL is left running there."""
    yield tmp_path
    server = EmbeddedPostgres(tmp_path / ".fpslink" / "pg")
    if server.running() is not None:
        server.stop()


def test_the_sandbox_runs_on_its_embedded_postgresql_and_stops_it_on_ctrl_c(sandbox_dir: Path) -> None:
    """One worker the first time (uvicorn in the sandbox's process), the default two the second
    (the supervisor): Ctrl-C must end both cleanly."""
    tmp_path = sandbox_dir
    port = free_port()
    first = Sandbox(tmp_path, port, workers=1)
    try:
        banner = first.wait_ready()
        operator_key = re.search(r"operator key\s+(\S+)", banner)
        assert operator_key is not None, banner
        assert re.search(r"ready: database [\d.]+ s, migrations", banner), banner
        server = EmbeddedPostgres(tmp_path / ".fpslink" / "pg")
        assert server.running() is not None, "no embedded PostgreSQL in .fpslink/pg"

        paid = pay_demo(port, operator_key.group(1))
        assert paid["status"] == "SETTLED", paid
        assert paid["target_amount"] == "917.70" and paid["target_currency"] == "CNY", paid
        # the sandbox turns the test clock on: a day ahead, for the gateway and its mock_ibps
        moved = httpx.post(
            f"http://127.0.0.1:{port}/v1/sandbox/clock/advance",
            headers={"Authorization": f"Bearer {operator_key.group(1)}"},
            json={"seconds": 86400},
            timeout=30,
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["offset_seconds"] == moved.json()["ibps_offset_seconds"] >= 86400, moved.json()

        # a second command beside the running sandbox attaches to its server and leaves it running
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FPSLINK_", "MOCK_IBPS_"))}
        ibps_url = re.search(r"mock_ibps (http://\S+)", banner)
        assert ibps_url is not None, banner
        env["FPSLINK_IBPS_URL"] = ibps_url.group(1)
        check = subprocess.run(
            [sys.executable, "-m", "fpslink.cli", "check"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "all invariants hold" in check.stdout
        assert server.running() is not None
    finally:
        code = first.interrupt()
    assert code == 0, first.output[-3000:]
    assert EmbeddedPostgres(tmp_path / ".fpslink" / "pg").running() is None, "Ctrl-C left PostgreSQL running"

    again = Sandbox(tmp_path, port)
    try:
        banner = again.wait_ready()
        assert f"operator key   {operator_key.group(1)}" in banner, "the data directory was not reused"
        listed = httpx.get(
            f"http://127.0.0.1:{port}/v1/payments",
            headers={"Authorization": f"Bearer {operator_key.group(1)}"},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
        assert [p["payment_id"] for p in listed.json()["items"]] == [paid["payment_id"]]
        assert_every_worker_runs_a_day_ahead(port, operator_key.group(1))
    finally:
        code = again.interrupt()
    assert code == 0, again.output[-3000:]
