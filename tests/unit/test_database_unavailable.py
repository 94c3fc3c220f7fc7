"""Which database errors are "unavailable, retry" (503) and which are bugs (500)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from fpslink.api.problems import database_unavailable


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
