"""Naming, creating and dropping PostgreSQL databases, for the sandbox and the commands that build
their own stack."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import make_url


def ibps_database_url(gateway_url: str, explicit: str | None = None) -> str:
    """mock_ibps's database: `explicit` if given, else `<name>_ibps` beside the gateway's on its server.

    The sandbox passes MOCK_IBPS_DATABASE_URL as `explicit`; chaos and loadtest pass none, since they
    drop and recreate the database and must never reach one named elsewhere.
    """
    if explicit:
        return explicit
    url = make_url(gateway_url)
    return url.set(database=f"{url.database}_ibps").render_as_string(hide_password=False)


def admin_dsn(url: str) -> str:
    """An asyncpg DSN for the `postgres` database of the server that `url` names (TCP or socket)."""
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def server(url: str) -> AsyncIterator[Any]:
    """An asyncpg connection to the `postgres` database of the server that `url` names."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn(url), timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


async def ensure_database(url: str) -> None:
    """Create the database named in `url` unless it exists."""
    parsed = make_url(url)
    async with server(url) as conn:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')


async def drop_database(url: str) -> None:
    async with server(url) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


MARK = "made by fpslink loadtest or chaos: the next run drops and recreates it"
"""The comment on the databases `recreate_database` makes: only those may be dropped again."""


class ForeignDatabase(Exception):
    """A database of that name exists and these commands did not make it."""


async def recreate_database(url: str) -> None:
    """Drop and create the database, marked as ours; refuses to drop one that is not.

    A mistyped `--database-url` must never cost someone their data.
    """
    name = make_url(url).database
    async with server(url) as conn:
        found = await conn.fetchrow(
            "SELECT shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE datname = $1", name
        )
        if found is not None and found["mark"] != MARK:
            raise ForeignDatabase(
                f"database {name} exists and was not made by fpslink loadtest or chaos; "
                "name another one, or drop it yourself"
            )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{MARK}'")
