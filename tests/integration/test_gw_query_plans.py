"""The plans PostgreSQL picks for the payment path's state moves, on a table that has aged as a
busy day ages it: every settled payment's old ACCEPTED entry still in the state index, as they stay
until vacuum comes (an update of the state is never HOT)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from gateway_stack import Harness
from sqlalchemy import text

from fpslink import pg
from fpslink.payments import repository
from fpslink.vocabulary import State

STATE_INDEX = "ix_payments_state_updated"
SETTLED = 5_000
STILL_ACCEPTED = 32

_COPIES = """
INSERT INTO payments (payment_id, participant_id, direction, state, debtor_account_id, source_currency,
    amount_type, purpose, business_date, limit_minor, limit_currency, attempts, created_at, updated_at)
SELECT $1 || g, 'PLANBANK', 'NORTHBOUND', 'ACCEPTED', 'PLAN-ACCOUNT', 'HKD', 'SOURCE', 'OTHER',
    '2026-01-01', 100, 'HKD', 0, $2, $2
FROM generate_series(1, $3) AS g
"""


@pytest.fixture
async def aged(harness: Harness) -> AsyncIterator[list[str]]:
    """SETTLED payments that were ACCEPTED once, and the ids of STILL_ACCEPTED that are ACCEPTED now,
    with fresh statistics: few payments are ACCEPTED, which makes the state index look cheap to the
    planner, while it holds an entry for every settled payment's ACCEPTED version. Removed
    afterwards (they have no ledger side, which the invariants would miss)."""
    now = harness.gw.clock()
    try:
        async with harness.gw.engine.begin() as conn:
            raw = await pg.raw(conn)
            await raw.execute(_COPIES, "plan-old-", now, SETTLED)
            await raw.execute("UPDATE payments SET state = 'SETTLED' WHERE payment_id LIKE 'plan-old-%'")
            await raw.execute(_COPIES, "plan-new-", now, STILL_ACCEPTED)
        async with harness.gw.engine.connect() as conn:
            await conn.execute(text("ANALYZE payments"))
        yield [f"plan-new-{i}" for i in range(1, STILL_ACCEPTED + 1)]
    finally:
        async with harness.gw.engine.begin() as conn:
            await conn.execute(text("DELETE FROM payments WHERE payment_id LIKE 'plan-%'"))


async def _plans(raw: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> list[str]:
    """The plan PostgreSQL makes for these values, and the generic plan a prepared statement may
    switch to after five executions (made for any values, so NULLs stand for them)."""
    plans = []
    rows = await raw.fetch(f"EXPLAIN {sql}", *args)
    plans.append("\n".join(row[0] for row in rows))
    await raw.execute(f"PREPARE plan_of_test AS {sql}")
    try:  # no rollback undoes a PREPARE: left on the pool's connection, the next one would clash
        async with raw.transaction():
            await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            rows = await raw.fetch(f"EXPLAIN EXECUTE plan_of_test({', '.join(['NULL'] * len(args))})")
            plans.append("\n".join(row[0] for row in rows))
    finally:
        await raw.execute("DEALLOCATE plan_of_test")
    return plans


async def test_the_commit_decision_finds_its_payments_by_key_when_few_are_accepted(
    harness: Harness, aged: list[str]
) -> None:
    n = len(aged)
    args = (
        aged,
        ["COMMITTING"] * n,
        [None] * n,
        [None] * n,
        State.COMMITTING.value,
        harness.gw.clock(),
        State.ACCEPTED.value,
        "POSTED",
        "PENDING",
        "DEBIT",
        "CREDIT",
    )
    async with harness.gw.engine.connect() as conn:
        for plan in await _plans(await pg.raw(conn), repository._COMMIT, args):
            assert STATE_INDEX not in plan
            assert "pk_payments" in plan


async def test_a_move_of_many_finds_its_payments_by_key_when_few_are_in_its_state(
    harness: Harness, aged: list[str]
) -> None:
    now: datetime = harness.gw.clock()
    sql = repository._transition_sql(("state", "updated_at"))
    args = (State.ABORTING.value, now, aged, State.ACCEPTED.value)
    async with harness.gw.engine.connect() as conn:
        for plan in await _plans(await pg.raw(conn), sql, args):
            assert STATE_INDEX not in plan
            assert "pk_payments" in plan
