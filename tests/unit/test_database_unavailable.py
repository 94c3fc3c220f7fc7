"""Which database errors are "unavailable, retry" (503) and which are bugs (500)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from fpslink.db import database_unavailable, invalid_text


class TooManyConnectionsError(Exception):
    """Stands in for asyncpg's error of that name: the check goes by the driver error's name."""


def _wrapped(cause: BaseException) -> DBAPIError:
    orig = Exception("driver error")
    orig.__cause__ = cause
    return DBAPIError("SELECT 1", None, orig)


def test_connection_level_failures_are_unavailable() -> None:
    assert database_unavailable(_wrapped(TooManyConnectionsError("sorry, too many clients already")))
    assert database_unavailable(_wrapped(ConnectionRefusedError(111, "refused")))
    assert database_unavailable(OperationalError("SELECT 1", None, Exception("database is locked")))


def test_query_failures_and_other_errors_are_not() -> None:
    assert not database_unavailable(IntegrityError("INSERT", None, Exception("duplicate key")))
    assert not database_unavailable(_wrapped(ValueError("bad value")))
    assert not database_unavailable(RuntimeError("a bug"))


def test_a_connection_lost_mid_request_is_unavailable_raw_or_wrapped() -> None:
    """What asyncpg raises when the server ends a connection (restart, failover, pg_terminate_backend),
    raw from the asyncpg lane or wrapped by SQLAlchemy: each used to be a 500."""
    lost = [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
    ]
    for error in lost:
        assert database_unavailable(error), error
        assert database_unavailable(_wrapped(error)), error
        assert database_unavailable(ExceptionGroup("batch", [error])), error


def test_misuse_and_bad_text_are_not_unavailable() -> None:
    busy = asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress")
    nul = asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
    assert not database_unavailable(busy)
    assert not database_unavailable(nul)
    assert invalid_text(nul) and invalid_text(_wrapped(nul))
    assert not invalid_text(busy)
