"""Gateway fixtures (a pytest plugin of the whole suite): the gateway in-process on PostgreSQL, mock_ibps as a
real HTTP server. tests/integration and tests/security use them; nothing starts until a test asks.

The session has one pair of databases on the test server (tests/pgtest.py) and one mock_ibps
process. Every scenario ends with the invariant check (I1-I6).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pgtest
import pytest
from gw_support import (
    IBPS_TOKEN,
    OPERATOR_KEY,
    FakeClock,
    Harness,
    free_port,
    start_process,
    stop_process,
)

from fpslink import migrate
from fpslink.app import create_app
from fpslink.config import Settings
from fpslink.invariants import check_invariants
from mock_ibps import migrate as ibps_migrate


@dataclass(frozen=True)
class Stack:
    gateway_db: str
    ibps_db: str
    ibps_url: str
    logs: Path
    process: Popen[bytes]


GATEWAY_DB = f"fpslink_t_gw_{pgtest.RUN}"
IBPS_DB = f"fpslink_t_gw_ibps_{pgtest.RUN}"


@contextlib.asynccontextmanager
async def stack_on(workdir: Path, gateway_name: str, ibps_name: str) -> AsyncIterator[Stack]:
    """Fresh, migrated databases of these names and a mock_ibps process on the second; all gone after."""
    gateway_db = await pgtest.recreate(gateway_name)
    ibps_db = await pgtest.recreate(ibps_name)
    await asyncio.to_thread(migrate.upgrade, gateway_db)
    await asyncio.to_thread(ibps_migrate.upgrade, ibps_db)
    port = free_port()
    log = workdir / "mock_ibps.log"
    process = await asyncio.to_thread(
        start_process,
        ["-m", "mock_ibps.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
        env={"MOCK_IBPS_DATABASE_URL": ibps_db, "MOCK_IBPS_TOKEN": IBPS_TOKEN},
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=log,
    )
    try:
        yield Stack(gateway_db, ibps_db, f"http://127.0.0.1:{port}", workdir, process)
    finally:
        await asyncio.to_thread(stop_process, process)
        await pgtest.drop(gateway_name)
        await pgtest.drop(ibps_name)


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack_on(tmp_path_factory.mktemp("stack"), GATEWAY_DB, IBPS_DB) as made:
        yield made


@contextlib.asynccontextmanager
async def served_gateway(
    stack: Stack, log_name: str, *, workers: int | None = None, **env: str
) -> AsyncIterator[str]:
    """`fpslink serve` as deployed, on the session's databases and a free port of 127.0.0.1 (its base URL),
    its output in `log_name`-PORT.log; `env` adds FPSLINK_* settings."""
    port = free_port()
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        serve += ["--workers", str(workers)]
    process = await asyncio.to_thread(
        start_process,
        ["-m", "fpslink.cli", *serve, "--no-migrate"],
        env={
            "FPSLINK_DATABASE_URL": stack.gateway_db,
            "FPSLINK_IBPS_URL": stack.ibps_url,
            "FPSLINK_IBPS_TOKEN": IBPS_TOKEN,
            "FPSLINK_OPERATOR_KEY": OPERATOR_KEY,
            **env,
        },
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=stack.logs / f"{log_name}-{port}.log",
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await asyncio.to_thread(stop_process, process)


def settings_for(stack: Stack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": stack.gateway_db,
        "ibps_url": stack.ibps_url,
        "ibps_token": IBPS_TOKEN,
        "operator_key": OPERATOR_KEY,
        "recovery_enabled": False,
        "ibps_timeout_s": 5.0,
        # the tests' banks send in bursts of hundreds; tests/security/test_ratelimit*.py set quotas
        "rate_limit_quota": 1_000_000,
        "rate_limit_window_s": 1,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def harness(request: pytest.FixtureRequest, stack: Stack) -> AsyncIterator[Harness]:
    """The gateway with a fake clock (noon in Hong Kong) and no background recovery.

    `@pytest.mark.settings(name=value, ...)` overrides settings for one test.
    """
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    clock = FakeClock()
    app = create_app(settings_for(stack, **overrides), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as http:
            h = Harness(app=app, http=http, clock=clock)
            yield h
            report = await check_invariants(h.gw)
            assert report.ok, "\n".join(report.violations)


@pytest.fixture
async def faults(harness: Harness) -> AsyncIterator[Any]:
    """Adds fault rules to the session's one mock_ibps; none is left in force before or after."""

    async def add(**rule: Any) -> dict[str, Any]:
        response = await harness.http.post("/v1/sandbox/faults", json=rule, headers=harness.operator)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    await harness.http.delete("/v1/sandbox/faults", headers=harness.operator)
    try:
        yield add
    finally:
        await harness.http.delete("/v1/sandbox/faults", headers=harness.operator)
