"""Alembic environment: the URL comes from ``mock_ibps.migrate`` (or the settings); async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from mock_ibps.config import Settings
from mock_ibps.db import create_engine, require_database_url
from mock_ibps.migrate import VERSION_TABLE
from mock_ibps.models import metadata

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return require_database_url(str(url) if url else Settings().database_url)


def run_migrations_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    asyncio.run(_run_async(_database_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
