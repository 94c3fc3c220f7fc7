"""Fixtures: one migrated database per backend named in FPSLINK_TEST_DATABASES, an app on it, a client.

Every test runs on each backend (SQLite file, real PostgreSQL); nothing fakes the database. A missing
PostgreSQL fails the run instead of skipping, so a green run always means both backends were tested.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from ibps_support import TOKEN, Bank, client_for

from mock_ibps.app import create_app
from mock_ibps.config import Settings
from mock_ibps.migrate import upgrade

PG_DATABASE = f"fpslink_t_mock_ibps_{os.getpid()}"  # per run: concurrent runs never collide
PG_SERVER = os.environ.get("FPSLINK_TEST_POSTGRES_SERVER", "postgres@127.0.0.1:5432")
DATABASES = [
    name.strip()
    for name in os.environ.get("FPSLINK_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


async def _recreate_postgres_database() -> str:
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
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://{PG_SERVER}/{PG_DATABASE}"


@pytest.fixture(scope="session", params=DATABASES)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    backend = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("mock_ibps") / "ibps.db"
        url = f"sqlite+aiosqlite:///{path}"
    elif backend == "postgresql":
        url = await _recreate_postgres_database()
    else:
        pytest.fail(f"unknown database {backend!r} in FPSLINK_TEST_DATABASES", pytrace=False)
    await asyncio.to_thread(upgrade, url)
    yield url
    if backend == "postgresql":
        admin = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(Settings(database_url=database_url, token=TOKEN))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app; after the test the ledger's invariants must still hold."""
    async with client_for(app) as http:
        yield http
        check = (await http.get("/ibps/v1/ledger/check")).json()
        assert check["ok"], check["violations"]
        assert check["balances"] == {"CNY": "0.00"}


@pytest.fixture
async def bank(client: httpx.AsyncClient) -> Bank:
    return await Bank.create(client)
