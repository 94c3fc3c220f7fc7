"""Database plumbing: one metadata, the engine factory, and the UTC timestamp type.

The gateway uses SQLAlchemy Core (no ORM) on PostgreSQL: the payment path issues a handful of
statements per step on an `AsyncConnection`, and every durable step is its own short transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SeqId = BigInteger()
"""An auto-incrementing key (BIGINT identity)."""


class UtcDateTime(TypeDecorator[datetime]):
    """TIMESTAMPTZ, always timezone-aware UTC in Python: a naive datetime is refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]
"""What a service asks the time of: `utcnow` in a process, a fake clock in tests."""


class DatabaseNotConfigured(RuntimeError):
    """No database URL was given to a process that needs one."""


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine on PostgreSQL (asyncpg), its pool sized for one worker's batches."""
    if not url:
        raise DatabaseNotConfigured(
            "FPSLINK_DATABASE_URL is not set: run `fpslink sandbox`, which starts an embedded "
            "PostgreSQL, or point it at a PostgreSQL 14+ (postgresql+asyncpg://user@host:port/db)"
        )
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=3600,
    )
