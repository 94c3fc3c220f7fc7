"""The PostgreSQL server the tests run on, and the per-run databases they make there.

The server at 127.0.0.1:5432 when it answers (FPSLINK_TEST_POSTGRES_SERVER names another, as
`user@host:port`); otherwise an embedded one that this test session starts in a temporary
directory and stops at the end (tests/conftest.py), so the suite needs nothing but Python. With
CI set, the server at 5432 must answer: CI proves the suite against the machine's own server.
Nothing fakes the database.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
import sys
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest

SERVER_ENV = "FPSLINK_TEST_POSTGRES_SERVER"
DSN_ENV = "FPSLINK_TEST_POSTGRES_DSN"
"""Set by tests/conftest.py for the session: a DSN with `{database}` for the database's name."""
DEFAULT_SERVER = "postgres@127.0.0.1:5432"
RUN = f"{os.getpid()}"
"""Databases are named per test run, so concurrent runs on one server never drop each other's."""


def server_answers(server: str) -> bool:
    """Whether something listens at the `user@host:port` of `server`."""
    host, _, port = server.rpartition("@")[2].partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=2):
            return True
    except OSError:
        return False


def dsn(database: str) -> str:
    """An asyncpg DSN for `database` on the test server."""
    template = os.environ.get(DSN_ENV)
    if not template:
        template = f"postgresql://{os.environ.get(SERVER_ENV, DEFAULT_SERVER)}/{{database}}"
    return template.format(database=database)


def url(database: str) -> str:
    """A SQLAlchemy URL (asyncpg) for `database` on the test server."""
    return dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)


async def admin() -> asyncpg.Connection:
    try:
        conn: asyncpg.Connection = await asyncpg.connect(dsn("postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"the test PostgreSQL ({dsn('postgres')}) is unreachable: {exc!r}", pytrace=False)
    return conn


async def recreate(name: str) -> str:
    """An empty database `name`; returns its SQLAlchemy URL."""
    conn = await admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url(name)


async def drop(name: str) -> None:
    conn = await admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


ROUNDTRIPS = Path(__file__).resolve().parents[1] / "benchmarks" / "roundtrips.py"


@functools.cache
def roundtrips() -> ModuleType:
    """benchmarks/roundtrips.py, whose relay counts a client's round trips on the wire: what a test
    asks of a unit of work or a request is checked there, not by timing it."""
    spec = importlib.util.spec_from_file_location("fpslink_bench_roundtrips_relay", ROUNDTRIPS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
