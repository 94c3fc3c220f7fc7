"""Async engine factory: PostgreSQL 14+ through asyncpg; and the transfer path's lane beside it.

There is no ping before each checkout: that was one more round trip on every call. A connection the
server has dropped fails its one request (a 5xx, which callers repeat, every transfer call being
idempotent) and the pool then replaces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ibps_wire import pg

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


async def _as_left(_conn: asyncpg.Connection) -> None:
    """A released connection is kept as it is: the lane sets nothing on a session, and asyncpg's
    own reset (a statement of its own on each release) would cost a round trip per call. An open
    transaction is still rolled back by asyncpg before this."""


class Lane:
    """Plain asyncpg connections to the engine's database, for the transfer path and the proxy look-up.

    Those run constant SQL and nothing else, so SQLAlchemy's connection and transaction handling
    around them (a greenlet per step, its pool's bookkeeping) was pure cost: about as much CPU as
    their statements. The pool opens connections as they are needed, up to ``POOL_SIZE``, with the
    engine's connect arguments (``ibps_wire.pg.connect_options``). ``init`` runs on each new
    connection (tests count statements with it).
    """

    def __init__(
        self, engine: AsyncEngine, *, init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
    ) -> None:
        args, options = pg.connect_options(engine)
        self._pool = asyncpg.create_pool(
            *args,
            **options,
            min_size=0,
            max_size=POOL_SIZE,
            init=init,
            reset=_as_left,
            max_inactive_connection_lifetime=3600,
        )
        self._started = False
        self._starting = asyncio.Lock()

    async def _start(self) -> None:
        if self._started:
            return
        async with self._starting:
            if not self._started:
                await self._pool
                self._started = True

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool, outside any transaction: a single statement commits by itself."""
        await self._start()
        async with self._pool.acquire(timeout=POOL_TIMEOUT_S) as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction that commits when the block ends and rolls back if it raises."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        if self._started:
            await self._pool.close()
