"""Async engine factory.

SQLite: WAL, a 30 s busy timeout and ``BEGIN IMMEDIATE`` for every write transaction, so concurrent
writers (other processes included) queue for the write lock instead of failing half-way with
"database is locked". Read-only work asks for ``READ_ONLY`` and gets a deferred ``BEGIN``: a
consistent WAL snapshot that does not block writers. PostgreSQL goes through asyncpg, without a
ping before each checkout: that was one more round trip on every call. A connection the server has
dropped fails its one request (a 5xx, which callers repeat, every transfer call being idempotent)
and SQLAlchemy then replaces the pool's connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_SIZE = 10
POOL_MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 30.0


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: str | URL) -> None:
    """Create the parent directory of a SQLite file, so a fresh checkout starts without set-up."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_engine(database_url: str) -> AsyncEngine:
    """Build the engine with the locking discipline described in the module docstring."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            pool_size=POOL_SIZE,
            max_overflow=POOL_MAX_OVERFLOW,
            pool_timeout=POOL_TIMEOUT_S,
            pool_pre_ping=False,
            pool_recycle=3600,
        )
    ensure_sqlite_directory(url)
    engine = create_async_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    _use_immediate_transactions(engine)
    return engine


def _use_immediate_transactions(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from issuing its own deferred BEGIN; "begin" below issues ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("mock_ibps_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
