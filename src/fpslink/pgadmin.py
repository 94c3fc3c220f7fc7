"""Creating and dropping PostgreSQL databases, for the commands that build their own stack."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import make_url


@contextlib.asynccontextmanager
async def server(url: str) -> AsyncIterator[Any]:
    """An asyncpg connection to the `postgres` database of the server that `url` names."""
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        yield conn
    finally:
        await conn.close()


async def ensure_database(url: str) -> None:
    """Create the database named in `url` unless it exists; nothing for a non-PostgreSQL URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
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
