"""The unit of work on PostgreSQL: what it leaves behind, and what it costs on the wire.

The round trips are counted by the relay of benchmarks/roundtrips.py, which reads the protocol as it
passes: a unit of work must cost what the engine's own `connect()` and `begin()` cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pgtest
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from fpslink.db import create_engine
from fpslink.uow import UnitsOfWork, units_of_work

DATABASE = f"fpslink_t_uow_{pgtest.RUN}"


@dataclass
class Wire:
    engine: AsyncEngine
    uow: UnitsOfWork
    relay: Any

    async def trips(self, work: Callable[[], Awaitable[object]]) -> list[tuple[str, int]]:
        """(kind, statements) of each round trip `work` makes, once its statements are prepared."""
        await work()  # the first run prepares the statements on the pooled connection
        await self.relay.quiet(0.05)
        self.relay.trips.clear()
        await work()
        await self.relay.quiet(0.05)
        return [(t.kind, t.statements) for t in self.relay.trips]


@pytest.fixture(scope="module")
async def wire() -> AsyncIterator[Wire]:
    url = make_url(await pgtest.recreate(DATABASE))
    roundtrips = pgtest.roundtrips()
    relay = roundtrips.Relay(roundtrips.upstream(url))
    port = await relay.start()
    engine = create_engine(roundtrips.through(url, port), pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE probe (id integer PRIMARY KEY, note text NOT NULL)"))
        yield Wire(engine, units_of_work(engine), relay)
    finally:
        await engine.dispose()
        await relay.close()
        await pgtest.drop(DATABASE)


async def _rows(engine: AsyncEngine) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        return [(r[0], r[1]) for r in await conn.execute(text("SELECT id, note FROM probe ORDER BY id"))]


@pytest.fixture
async def clean(wire: Wire) -> Wire:
    async with wire.engine.begin() as conn:
        await conn.execute(text("DELETE FROM probe"))
    return wire


async def test_an_uncommitted_unit_of_work_leaves_no_row(clean: Wire) -> None:
    async with clean.uow() as tx:
        await tx.conn.execute(text("INSERT INTO probe VALUES (1, 'never committed')"))
        assert (await tx.conn.execute(text("SELECT count(*) FROM probe"))).scalar_one() == 1
    assert await _rows(clean.engine) == []


async def test_a_committed_unit_of_work_leaves_its_row(clean: Wire) -> None:
    async with clean.uow() as tx:
        await tx.conn.execute(text("INSERT INTO probe VALUES (2, 'committed')"))
        await tx.commit()
    assert await _rows(clean.engine) == [(2, "committed")]


async def test_an_exception_rolls_back_what_the_block_wrote(clean: Wire) -> None:
    with pytest.raises(LookupError):
        async with clean.uow() as tx:
            await tx.conn.execute(text("INSERT INTO probe VALUES (3, 'then refused')"))
            raise LookupError("refused after writing")
    assert await _rows(clean.engine) == []


async def test_the_raw_lane_runs_inside_the_same_transaction(clean: Wire) -> None:
    async with clean.uow() as tx:
        # first statement of the block, on the lane: it must not autocommit on its own
        await (await tx.raw()).execute("INSERT INTO probe VALUES (4, 'lane, rolled back')")
    async with clean.uow() as tx:
        await (await tx.raw()).execute("INSERT INTO probe VALUES (5, 'lane, committed')")
        await tx.conn.execute(text("INSERT INTO probe VALUES (6, 'SQLAlchemy, committed')"))
        await tx.commit()
    assert await _rows(clean.engine) == [(5, "lane, committed"), (6, "SQLAlchemy, committed")]


async def test_a_read_costs_what_engine_connect_cost(wire: Wire) -> None:
    query = text("SELECT count(*) FROM probe")

    async def by_engine() -> None:
        async with wire.engine.connect() as conn:
            await conn.execute(query)

    async def by_uow() -> None:
        async with wire.uow() as tx:
            await tx.conn.execute(query)

    expected = [("BEGIN", 1), ("SELECT", 1), ("ROLLBACK", 1)]
    assert await wire.trips(by_engine) == expected
    assert await wire.trips(by_uow) == expected


async def test_a_committed_write_costs_what_engine_begin_cost(wire: Wire) -> None:
    upsert = text("INSERT INTO probe VALUES (7, 'x') ON CONFLICT (id) DO UPDATE SET note = 'y'")

    async def by_engine() -> None:
        async with wire.engine.begin() as conn:
            await conn.execute(upsert)

    async def by_uow() -> None:
        async with wire.uow() as tx:
            await tx.conn.execute(upsert)
            await tx.commit()

    expected = [("BEGIN", 1), ("INSERT", 1), ("COMMIT", 1)]
    assert await wire.trips(by_engine) == expected
    assert await wire.trips(by_uow) == expected


async def test_a_unit_of_work_that_runs_nothing_costs_nothing(wire: Wire) -> None:
    async def idle() -> None:
        async with wire.uow():
            pass

    assert await wire.trips(idle) == []
