"""Fixtures: a migrated PostgreSQL database for the run, an app on it, a client.

Nothing fakes the database: it is the test server of tests/pgtest.py. An unreachable PostgreSQL fails
the run instead of skipping, so a green run always means the ledger was tested on the database it
runs on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pgtest
import pytest
from fastapi import FastAPI
from ibps_support import TOKEN, Bank, client_for

from mock_ibps.app import create_app
from mock_ibps.config import Settings
from mock_ibps.migrate import upgrade

PG_DATABASE = f"fpslink_t_mock_ibps_{pgtest.RUN}"  # per run: concurrent runs never collide


async def create_database(name: str) -> str:
    """An empty database ``name`` (dropped first if a crashed run left it); its SQLAlchemy URL."""
    return await pgtest.recreate(name)


async def drop_database(name: str) -> None:
    await pgtest.drop(name)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_database(PG_DATABASE)
    await asyncio.to_thread(upgrade, url)
    yield url
    await drop_database(PG_DATABASE)


@pytest.fixture
async def empty_database_url() -> AsyncIterator[str]:
    """A database of its own, not migrated: for the tests of migrating one."""
    name = f"{PG_DATABASE}_empty"
    yield await create_database(name)
    await drop_database(name)


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
