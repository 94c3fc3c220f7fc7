"""Database plumbing: one metadata, the engine factory, and the UTC timestamp type.

The gateway uses SQLAlchemy Core (no ORM) on PostgreSQL: the payment path issues a handful of
statements per step on an `AsyncConnection`, and every durable step is its own short transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, InvalidatePoolError, OperationalError
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
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=3600,
    )
    event.listen(engine.sync_engine.pool, "checkout", refuse_closed_connection)
    return engine


def refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """At checkout, a pooled connection the server has closed (a restart, a failover, an
    administrator's pg_terminate_backend) is replaced, and with it every connection as old.

    Without this, each dead connection failed the next statement run on it: one more 503 per pooled
    connection after the database came back, and the raw asyncpg lane's failures never told the
    pool at all. Reading the driver's own flag costs no round trip, unlike `pool_pre_ping`.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise InvalidatePoolError("the database closed this connection")


UNAVAILABLE_CAUSES = {
    "TooManyConnectionsError",
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "InterfaceError",
}
"""Driver errors, by name, that mean the database is out of reach or out of connections."""
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
"""Connection exceptions (class 08), the server shutting down or starting (57P01-57P03, what
pg_terminate_backend sends too), too many connections (53300)."""
INVALID_TEXT_SQLSTATES = frozenset({"22021", "22P05"})
"""Text PostgreSQL cannot store (a NUL character) or convert: the request's doing, not the database's."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error it wraps, their causes, and a group's members."""
    todo, seen = [exc], 0
    while todo and seen < 12:
        current = todo.pop()
        seen += 1
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (getattr(current, "orig", None), current.__cause__):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError):
        return True  # the driver's connect errors can arrive unwrapped (asyncpg: ConnectionRefusedError)
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str):
        return sqlstate.startswith(UNAVAILABLE_SQLSTATES)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # the driver lost track of the protocol: what happens when the server's farewell (a FATAL
        # error) reaches an idle connection before its end does; the connection is unusable
        return True
    # asyncpg says "connection is closed" of a connection whose server went away between statements
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


def database_unavailable(exc: BaseException) -> bool:
    """The database could not serve the request now (down, restarting, out of connections, or the
    connection lost mid-request), as opposed to a statement that failed: retrying can succeed.

    Errors come wrapped by SQLAlchemy or, from the raw asyncpg lane (`ibps_wire.pg`), as asyncpg
    raised them; both are recognised.
    """
    for current in _chain(exc):
        if isinstance(current, (OperationalError, InterfaceError)):
            return True
        if isinstance(current, DBAPIError) and (
            current.connection_invalidated or type(current.orig).__name__ in UNAVAILABLE_CAUSES
        ):
            return True
        if type(current).__name__ in UNAVAILABLE_CAUSES and not isinstance(current, asyncpg.InterfaceError):
            return True
        if _connection_lost(current):
            return True
    return False


def invalid_text(exc: BaseException) -> bool:
    """PostgreSQL refused text in the request (a NUL character): a bad request, never a 500."""
    return any(getattr(current, "sqlstate", None) in INVALID_TEXT_SQLSTATES for current in _chain(exc))


def one_line(exc: BaseException) -> str:
    """The error's type and the first line of its message, for a log line without a traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
