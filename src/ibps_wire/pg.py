"""The raw asyncpg lane of both services' batch statements: constant SQL inside SQLAlchemy's transaction.

Through SQLAlchemy a batch statement costs a compile of an expanded IN list (a new SQL text, so a new
server-side prepare, for every batch size), per-row parameter processing in Python, and executemany
runs once per row on the server. The lane passes whole columns as arrays (``unnest``, ``= ANY``), so
each statement's SQL is the same for any batch and asyncpg prepares it once per connection. It runs
on the asyncpg connection under the caller's SQLAlchemy connection, inside its transaction, so it
commits or rolls back with it (docs/decisions/0003-raw-asyncpg-lane.md).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Final

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
ADAPTER_ONLY: Final = ("async_creator_fn", "prepared_statement_cache_size", "prepared_statement_name_func")
"""Connect arguments that SQLAlchemy's asyncpg adapter takes for itself; asyncpg.connect refuses them."""


def connect_options(engine: AsyncEngine) -> tuple[list[Any], dict[str, Any]]:
    """The engine's own connect arguments (host, socket, credentials, TLS) for ``asyncpg.connect``
    or ``asyncpg.create_pool``: for connections held outside its pool."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    return list(args), {k: v for k, v in kwargs.items() if k not in ADAPTER_ONLY}


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


async def alone(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, without beginning a transaction: for a statement that
    is its block's only one, a read or a write that stands alone.

    Sent first, it runs on its own (a read in its own snapshot; a write commits by itself, whatever
    the block does after), in one round trip where BEGIN, the statement and ROLLBACK or COMMIT took
    three: SQLAlchemy's adapter ends no transaction it never began. After a statement that began the
    block's transaction, it runs inside that.
    """
    fairy = await conn.get_raw_connection()
    driver: asyncpg.Connection = fairy.driver_connection
    return driver


def row_count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``, which ``execute`` answers."""
    return int(status.rpartition(" ")[2])


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def array_type(table: Table, column: str) -> str:
    """The PostgreSQL array type of a column, for ``$n::type[]`` casts."""
    return f"{table.c[column].type.compile(dialect=_DIALECT)}[]"


@functools.cache
def insert_sql(table: Table, columns: tuple[str, ...], suffix: str) -> str:
    """The constant INSERT of whole columns as arrays; cached, so each is built once per process."""
    names = ", ".join(ident(c) for c in columns)
    arrays = ", ".join(f"${i}::{array_type(table, c)}" for i, c in enumerate(columns, 1))
    return f"INSERT INTO {ident(table.name)} ({names}) SELECT * FROM unnest({arrays}){suffix}"


async def insert_rows(
    raw: asyncpg.Connection, table: Table, rows: Sequence[Mapping[str, Any]], suffix: str = ""
) -> list[asyncpg.Record]:
    """Insert rows (all with the same keys) in one execution, in their order; ``suffix`` may add
    ON CONFLICT and RETURNING clauses.

    Without a suffix the rows go by binary COPY: it costs half the CPU of the arrays, in this
    process and on the server, because asyncpg encodes array elements one by one with type checks.
    """
    columns = tuple(rows[0])
    if not suffix:
        await raw.copy_records_to_table(
            table.name, records=[tuple(row[c] for c in columns) for row in rows], columns=columns
        )
        return []
    arrays = [[row[c] for row in rows] for c in columns]
    records: list[asyncpg.Record] = await raw.fetch(insert_sql(table, columns, suffix), *arrays)
    return records
