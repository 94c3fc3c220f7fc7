"""The unit of work rolls back unless committed, on a fake connection that records what it is asked.

tests/integration/test_uow.py checks the same on PostgreSQL, rows and round trips included.
"""

from __future__ import annotations

from typing import Any

import pytest

from fpslink.uow import UnitOfWork, units_of_work


class FakeConnection:
    """What SQLAlchemy's AsyncConnection does that the unit of work relies on, as a call log."""

    def __init__(self, *, fail_rollback: bool = False) -> None:
        self.calls: list[str] = []
        self.open_transaction = False
        self.fail_rollback = fail_rollback

    async def start(self) -> FakeConnection:
        self.calls.append("start")
        return self

    async def begin(self) -> None:
        self.calls.append("begin")
        self.open_transaction = True

    def in_transaction(self) -> bool:
        return self.open_transaction

    async def commit(self) -> None:
        self.calls.append("commit")
        self.open_transaction = False

    async def rollback(self) -> None:
        self.calls.append("rollback")
        self.open_transaction = False
        if self.fail_rollback:
            raise ConnectionError("the connection broke during ROLLBACK")

    async def close(self) -> None:
        self.calls.append("close")


class FakeEngine:
    def __init__(self, **options: Any) -> None:
        self.options = options
        self.connections: list[FakeConnection] = []

    def connect(self) -> FakeConnection:
        conn = FakeConnection(**self.options)
        self.connections.append(conn)
        return conn


def open_uow(engine: FakeEngine) -> UnitOfWork:
    return units_of_work(engine)()


async def test_a_block_left_without_commit_rolls_back() -> None:
    engine = FakeEngine()
    async with open_uow(engine) as tx:
        assert tx.conn is engine.connections[0]
    assert engine.connections[0].calls == ["start", "begin", "rollback", "close"]


async def test_a_committed_block_commits_and_only_closes() -> None:
    engine = FakeEngine()
    async with open_uow(engine) as tx:
        await tx.commit()
    assert engine.connections[0].calls == ["start", "begin", "commit", "close"]


async def test_an_exception_rolls_back_and_goes_on_up() -> None:
    engine = FakeEngine()
    with pytest.raises(LookupError, match="refused half-way"):
        async with open_uow(engine):
            raise LookupError("refused half-way")
    assert engine.connections[0].calls == ["start", "begin", "rollback", "close"]


async def test_an_exception_after_commit_keeps_the_commit() -> None:
    engine = FakeEngine()
    with pytest.raises(LookupError):
        async with open_uow(engine) as tx:
            await tx.commit()
            raise LookupError("after the commit")
    assert engine.connections[0].calls == ["start", "begin", "commit", "close"]


async def test_a_failed_rollback_does_not_hide_the_bodys_error() -> None:
    engine = FakeEngine(fail_rollback=True)
    with pytest.raises(LookupError, match="the real cause"):
        async with open_uow(engine):
            raise LookupError("the real cause")
    assert engine.connections[0].calls == ["start", "begin", "rollback", "close"]


async def test_a_failed_rollback_of_a_clean_block_is_reported() -> None:
    engine = FakeEngine(fail_rollback=True)
    with pytest.raises(ConnectionError):
        async with open_uow(engine):
            pass
    assert engine.connections[0].calls[-1] == "close"


async def test_the_connection_is_refused_after_commit_and_outside_the_block() -> None:
    engine = FakeEngine()
    uow = open_uow(engine)
    with pytest.raises(RuntimeError):
        _ = uow.conn
    async with uow as tx:
        await tx.commit()
        with pytest.raises(RuntimeError, match="committed"):
            _ = tx.conn  # a statement here would begin a transaction that nobody commits
    with pytest.raises(RuntimeError):
        _ = uow.conn


async def test_a_unit_of_work_is_entered_once() -> None:
    engine = FakeEngine()
    uow = open_uow(engine)
    async with uow:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with uow:
            pass
    assert len(engine.connections) == 1


async def test_each_call_of_the_factory_is_its_own_connection() -> None:
    engine = FakeEngine()
    factory = units_of_work(engine)
    async with factory() as first, factory() as second:
        assert first.conn is not second.conn
    assert [c.calls[-1] for c in engine.connections] == ["close", "close"]


async def test_a_statement_after_commit_through_a_connection_taken_before_is_refused_loudly() -> None:
    engine = FakeEngine()
    with pytest.raises(RuntimeError, match="after commit"):
        async with open_uow(engine) as tx:
            conn = tx.conn  # a repository holds its connection from here
            await tx.commit()
            conn.open_transaction = True  # what SQLAlchemy's autobegin does on its next statement
    assert engine.connections[0].calls == ["start", "begin", "commit", "rollback", "close"]
