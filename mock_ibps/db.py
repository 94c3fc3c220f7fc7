"""Async engine factory: PostgreSQL 14+ through asyncpg; and the transfer path's lane beside it.

There is no ping before each checkout: that was one more round trip on every call. A connection the
server has dropped fails its one request (a 5xx, which callers repeat, every transfer call being
idempotent) and the pool then replaces it.
"""

from __future__ import annotations

import asyncio
from collections import deque
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


class Lane:
    """Plain asyncpg connections to the engine's database, for the transfer path and the proxy look-up.

    Those run constant SQL and nothing else, so SQLAlchemy's connection and transaction handling
    around them (a greenlet per step, its pool's bookkeeping) was pure cost: about as much CPU as
    their statements. asyncpg's own pool costs three times a statement per checkout (its release
    runs in a task of its own), so the lane keeps its connections itself: a stack of idle ones,
    opened as needed up to ``POOL_SIZE`` with the engine's connect arguments
    (``ibps_wire.pg.connect_options``), and a queue of callers waiting when all are busy.

    A connection whose block raised (cancellation included) is closed rather than reused: it may
    be mid-statement or mid-transaction, and closing it rolls the transaction back. ``init`` runs
    on each new connection (tests count statements with it).
    """

    def __init__(
        self, engine: AsyncEngine, *, init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
    ) -> None:
        self._args, self._options = pg.connect_options(engine)
        self._init = init
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        """Connections open, idle or in use, or being opened."""
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the lane, outside any transaction: a single statement commits by itself."""
        conn = await self._acquire()
        try:
            yield conn
        except BaseException:
            self._discard(conn)
            raise
        if self._closed or conn.is_closed() or conn.is_in_transaction():
            self._discard(conn)
        else:
            self._idle.append(conn)
            self._wake()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction that commits when the block ends and rolls back if it raises."""
        async with self.connection() as conn:
            await conn.execute("BEGIN")
            yield conn
            await conn.execute("COMMIT")

    async def close(self) -> None:
        """Close the idle connections now, and each busy one when its block ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._opened -= 1
            await conn.close()

    async def _acquire(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise RuntimeError("the lane is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._opened -= 1
            if self._opened < POOL_SIZE:
                return await self._open()
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                async with asyncio.timeout(POOL_TIMEOUT_S):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, but leaving: the next waiter takes the turn
                else:
                    waiter.cancel()  # out of the queue: `_wake` skips it
                if isinstance(exc, TimeoutError):
                    raise TimeoutError(f"no database connection free in {POOL_TIMEOUT_S:.0f} s") from None
                raise

    async def _open(self) -> asyncpg.Connection:
        self._opened += 1
        try:
            conn: asyncpg.Connection = await asyncpg.connect(*self._args, **self._options)
            if self._init is not None:
                await self._init(conn)
        except BaseException:
            self._opened -= 1
            self._wake()
            raise
        return conn

    def _discard(self, conn: asyncpg.Connection) -> None:
        self._opened -= 1
        conn.terminate()
        self._wake()

    def _wake(self) -> None:
        """Let the longest waiter try again: a connection is idle, or one may be opened."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
