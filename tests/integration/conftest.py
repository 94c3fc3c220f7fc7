"""Integration fixtures: the gateway in-process on a real database, mock_ibps as a real HTTP server.

Each backend named in FPSLINK_TEST_DATABASES (default: sqlite,postgresql) gets its own pair of
databases and its own mock_ibps process; every test runs on each. A PostgreSQL that cannot be
reached fails the run, never skips it. Every scenario ends with the invariant check (I1-I6).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import asyncpg
import httpx
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

PG_SERVER = os.environ.get("FPSLINK_TEST_POSTGRES_SERVER", "postgres@127.0.0.1:5432")
DATABASES = [
    name.strip()
    for name in os.environ.get("FPSLINK_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


@dataclass(frozen=True)
class Stack:
    backend: str
    gateway_db: str
    ibps_db: str
    ibps_url: str
    logs: Path
    process: Popen[bytes]


RUN = f"{os.getpid()}"
"""Databases are named per test run, so concurrent runs on one server never drop each other's."""


async def drop_pg(name: str) -> None:
    admin = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def recreate_pg(name: str) -> str:
    try:
        admin = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL was requested (FPSLINK_TEST_DATABASES={','.join(DATABASES)}) but "
            f"postgresql://{PG_SERVER} is unreachable: {exc!r}. Start it, or set "
            "FPSLINK_TEST_DATABASES=sqlite to test SQLite only.",
            pytrace=False,
        )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://{PG_SERVER}/{name}"


@pytest.fixture(scope="session", params=DATABASES)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend = request.param
    workdir = tmp_path_factory.mktemp(f"stack-{backend}")
    if backend == "sqlite":
        gateway_db = f"sqlite+aiosqlite:///{workdir / 'gateway.db'}"
        ibps_db = f"sqlite+aiosqlite:///{workdir / 'ibps.db'}"
    elif backend == "postgresql":
        gateway_db = await recreate_pg(f"fpslink_t_gw_{RUN}")
        ibps_db = await recreate_pg(f"fpslink_t_gw_ibps_{RUN}")
    else:
        pytest.fail(f"unknown database {backend!r} in FPSLINK_TEST_DATABASES", pytrace=False)
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
        yield Stack(backend, gateway_db, ibps_db, f"http://127.0.0.1:{port}", workdir, process)
    finally:
        await asyncio.to_thread(stop_process, process)
        if backend == "postgresql":
            await drop_pg(f"fpslink_t_gw_{RUN}")
            await drop_pg(f"fpslink_t_gw_ibps_{RUN}")


def settings_for(stack: Stack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": stack.gateway_db,
        "ibps_url": stack.ibps_url,
        "ibps_token": IBPS_TOKEN,
        "operator_key": OPERATOR_KEY,
        "recovery_enabled": False,
        "ibps_timeout_s": 5.0,
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
