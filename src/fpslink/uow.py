"""The unit of work: one connection and one transaction, rolled back unless committed.

A service takes a `UnitsOfWork` factory, built once from the engine, and uses it as

    async with self._uow() as tx:
        found = await tx.participants.account(account_id)
        ...
        await tx.commit()

Leaving the block without `commit()` rolls back: a read, a refusal raised half-way, any exception.
So a service cannot half-write by forgetting to roll back, and a fake factory (in-memory
repositories behind the same attributes) tests a service without a database.

The transaction costs no round trip of its own: asyncpg sends BEGIN with the first statement, and
ROLLBACK only if one was sent, so a read costs what `engine.connect()` cost (BEGIN, its statements,
ROLLBACK) and a committed write what `engine.begin()` cost (BEGIN, its statements, COMMIT);
tests/integration/test_uow.py counts them on the wire. A read that is the block's only statement can
skip even those two: on `pg.alone`'s connection it is one round trip, in its own snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fpslink import pg
from fpslink.certification.repository import CertificationsRepository
from fpslink.clock.repository import ClockRepository
from fpslink.directory.repository import ProxiesRepository
from fpslink.fx.repository import QuotesRepository
from fpslink.idempotency.repository import IdempotencyRepository
from fpslink.iso20022.repository import Iso20022Repository
from fpslink.ledger.repository import LedgerRepository
from fpslink.limits.repository import LimitsRepository
from fpslink.participants.repository import ParticipantsRepository
from fpslink.ratelimit.repository import RateLimitsRepository
from fpslink.reconciliation.repository import ReconciliationRepository
from fpslink.retention.repository import HorizonRepository
from fpslink.webhooks.repository import WebhooksRepository


class UnitOfWork:
    """One use: `async with`, reads and writes through its repositories, then `commit()` or not."""

    __slots__ = ("_committed", "_conn", "_engine", "_used")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._committed = False
        self._used = False

    async def __aenter__(self) -> UnitOfWork:
        if self._used:
            raise RuntimeError("a unit of work is entered once; ask the factory for another")
        self._used = True
        conn = self._engine.connect()
        await conn.start()
        try:
            # Sends nothing: SQLAlchemy's transaction begins here, asyncpg's with the first statement.
            # Begun explicitly so that `raw()` joins it even before SQLAlchemy has run a statement.
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        late = self._committed and conn.in_transaction()
        try:
            if conn.in_transaction():
                await conn.rollback()
        except Exception:
            if exc is None:
                raise
            # the body's own error says what went wrong; closing below discards the connection
        finally:
            await conn.close()
        if late and exc is None:
            # a repository taken before commit() ran a statement after it: that write is lost, so
            # say so rather than let the block end as if it had been kept
            raise RuntimeError("a statement ran after commit(); it was rolled back")

    @property
    def conn(self) -> AsyncConnection:
        """The connection, for the repositories; refused outside the block and after `commit()`, where
        a statement would begin a second transaction that nobody commits."""
        if self._conn is None or self._committed:
            raise RuntimeError("this unit of work is not open: it has committed or its block has ended")
        return self._conn

    async def raw(self) -> asyncpg.Connection:
        """The asyncpg connection under `conn`, inside this transaction (the hot path's lane)."""
        return await pg.raw(self.conn)

    async def ping(self) -> None:
        """Raises unless the database answers a statement on this connection."""
        await self.conn.execute(text("SELECT 1"))

    async def commit(self) -> None:
        """Make the writes durable; the unit of work ends here, and its block only closes it."""
        await self.conn.commit()
        self._committed = True

    # the repositories, on this unit of work's connection

    @property
    def participants(self) -> ParticipantsRepository:
        return ParticipantsRepository(self.conn)

    @property
    def ledger(self) -> LedgerRepository:
        return LedgerRepository(self.conn)

    @property
    def quotes(self) -> QuotesRepository:
        return QuotesRepository(self.conn)

    @property
    def proxies(self) -> ProxiesRepository:
        return ProxiesRepository(self.conn)

    @property
    def limits(self) -> LimitsRepository:
        return LimitsRepository(self.conn)

    @property
    def idempotency(self) -> IdempotencyRepository:
        return IdempotencyRepository(self.conn)

    @property
    def iso20022(self) -> Iso20022Repository:
        return Iso20022Repository(self.conn)

    @property
    def webhooks(self) -> WebhooksRepository:
        return WebhooksRepository(self.conn)

    @property
    def reconciliation(self) -> ReconciliationRepository:
        return ReconciliationRepository(self.conn)

    @property
    def clock(self) -> ClockRepository:
        return ClockRepository(self.conn)

    @property
    def rate_limits(self) -> RateLimitsRepository:
        return RateLimitsRepository(self.conn)

    @property
    def certifications(self) -> CertificationsRepository:
        return CertificationsRepository(self.conn)

    @property
    def retention(self) -> HorizonRepository:
        return HorizonRepository(self.conn)


UnitsOfWork = Callable[[], UnitOfWork]
"""Opens a unit of work: what a service holds instead of the engine."""


Connections = Callable[[], AsyncConnection]
"""A connection of its own that the holder begins and commits transactions on (`engine.connect`):
only for work whose session outlives one transaction: the reconciliation's matcher (its temporary
tables) and the retention job (its advisory lock)."""


def units_of_work(engine: AsyncEngine) -> UnitsOfWork:
    """The factory of units of work on `engine`."""

    def open_one() -> UnitOfWork:
        return UnitOfWork(engine)

    return open_one
