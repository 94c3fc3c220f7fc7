"""The batch statements' lane: plain asyncpg with constant SQL, in SQLAlchemy's transaction.

Through SQLAlchemy a batch statement costs an expanded IN list (a new SQL text, so a new server-side
prepare, for every batch size), per-row parameter processing in Python, and executemany runs once
per row on the server. The lane passes whole columns as arrays (``= ANY``, ``unnest``), so each
statement's SQL is the same for any batch and asyncpg prepares it once per connection. It runs on
the asyncpg connection under the caller's SQLAlchemy connection, inside its transaction, so it
commits or rolls back with it.

The gateway has its own lane (``fpslink.pg``); this service must not import the gateway.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection


async def raw(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, inside its transaction if ``conn`` has begun one."""
    fairy = await conn.get_raw_connection()
    adapted: Any = fairy.dbapi_connection
    if conn.in_transaction() and getattr(adapted, "_transaction", None) is None:
        # SQLAlchemy sends BEGIN with the first statement it runs itself. Start it now, so that a
        # lane statement that comes first is inside the transaction the caller commits or rolls
        # back, not autocommitted on its own.
        await adapted._start_transaction()
    driver: asyncpg.Connection = fairy.driver_connection
    return driver


def row_count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``, which ``execute`` answers."""
    return int(status.rpartition(" ")[2])
