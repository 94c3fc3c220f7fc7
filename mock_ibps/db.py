"""Async engine factory: PostgreSQL 14+ through asyncpg.

There is no ping before each checkout: that was one more round trip on every call. A connection the
server has dropped fails its one request (a 5xx, which callers repeat, every transfer call being
idempotent) and SQLAlchemy then replaces the pool's connections.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

POOL_SIZE = 10
POOL_MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 30.0

NO_DATABASE_URL: Final = (
    "MOCK_IBPS_DATABASE_URL is not set: set it to a PostgreSQL 14+ URL "
    "(postgresql+asyncpg://user@host:port/db). `fpslink sandbox` sets it for its embedded server."
)


class DatabaseNotConfigured(RuntimeError):
    """No database URL: the service has no database of its own to fall back on."""


def require_database_url(database_url: str) -> str:
    """``database_url`` itself, or ``DatabaseNotConfigured`` saying how to set one if it is empty."""
    if not database_url.strip():
        raise DatabaseNotConfigured(NO_DATABASE_URL)
    return database_url


def create_engine(database_url: str) -> AsyncEngine:
    """The engine and its pool, sized for one service process."""
    return create_async_engine(
        require_database_url(database_url),
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
        pool_pre_ping=False,
        pool_recycle=3600,
    )
