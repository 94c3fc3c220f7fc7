"""The asyncpg lane (`fpslink.pg`): plain asyncpg statements inside SQLAlchemy's transactions."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from gateway_stack import Harness, Stack
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.idempotency import repository as idem_repo
from fpslink.ledger import repository as ledger
from fpslink.limits import repository as limits_repo
from fpslink.payments import repository
from fpslink.settlement import coordinator
from fpslink.vocabulary import State


async def test_a_first_statement_through_the_lane_rolls_back_with_the_transaction(harness: Harness) -> None:
    gw = harness.gw
    bank = await harness.bank("FPS")
    account = await harness.account(bank, opening="100.00")
    async with gw.engine.connect() as conn:
        transaction = await conn.begin()
        # nothing has run through SQLAlchemy yet: the lane must open the transaction itself
        await ledger.add_held(conn, {account: 4_000})
        assert await ledger.LedgerRepository(conn).balances(account) == (10_000, 4_000)
        await transaction.rollback()
    async with gw.engine.connect() as conn:
        assert await ledger.LedgerRepository(conn).balances(account) == (10_000, 0)


async def test_a_committed_lane_statement_is_durable_and_a_repeat_is_seen(harness: Harness) -> None:
    gw = harness.gw
    now = gw.clock()
    row = {
        "participant_id": "LANE",
        "key": "lane-key-1",
        "endpoint": "POST /v1/payments",
        "fingerprint": "f" * 64,
        "payment_id": None,
        "created_at": now,
        "lease_until": now,
        "completed_at": None,
        "expires_at": now.replace(year=now.year + 1),
    }
    async with gw.engine.begin() as conn:
        assert await idem_repo.bind_many(conn, [row]) == {("LANE", "lane-key-1")}
    async with gw.engine.begin() as conn:
        # the key is taken: ON CONFLICT DO NOTHING returns nothing for it, and binds the new one
        bound = await idem_repo.bind_many(conn, [row, {**row, "key": "lane-key-2"}])
        assert bound == {("LANE", "lane-key-2")}
        await idem_repo.complete_many(conn, [("LANE", "lane-key-1")], now=now)
    async with gw.engine.connect() as conn:
        found = await idem_repo.IdempotencyRepository(conn).find(scope="LANE", key="lane-key-1", now=now)
    assert found is not None and found.completed_at == now


async def test_rows_updated_once_leave_room_on_their_pages(stack: Stack) -> None:
    """A ledger transfer (gateway) and an IBPS transfer are each updated once, changing no indexed
    column: on pages with room the update is HOT, so it adds no index entries."""
    for url, table in ((stack.gateway_db, "ledger_transfers"), (stack.ibps_db, "transfers")):
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = $1", table)
            indexed = await conn.fetch(
                "SELECT a.attname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
                " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)"
                " WHERE t.relname = $1",
                table,
            )
        finally:
            await conn.close()
        assert options == ["fillfactor=50"], table
        assert not {"status", "resolved_at", "reason_code"} & {row["attname"] for row in indexed}, table


async def test_acceptance_locks_usage_rows_before_accounts(harness: Harness) -> None:
    """One statement locks a batch's usage rows and its accounts; it must take them in the order
    every writer does (usage first), or two batches could deadlock. Hold the account elsewhere:
    the statement waits for it while already holding the usage row."""
    gw = harness.gw
    bank = await harness.bank("FPS")
    account = await harness.account(bank, opening="100.00")
    key = (account, "NORTHBOUND", "DAY", "2026-01-01")
    wanted: dict[tuple[str, str, str, str], tuple[str, int | None]] = {key: ("HKD", None)}
    async with gw.engine.begin() as conn:
        await limits_repo.lock_usage(conn, wanted)  # the usage row exists from now on
    async with gw.engine.connect() as holder, gw.engine.connect() as probe:
        held = await holder.begin()
        await holder.execute(
            text("SELECT 1 FROM ledger_accounts WHERE account_id = :a FOR UPDATE"), {"a": account}
        )

        async def batch() -> None:
            async with gw.engine.begin() as conn:
                usage, funds = await limits_repo.lock_usage_and_accounts(conn, wanted, [account])
                assert usage == {key: 0} and funds[account][1:] == (10_000, 0)

        waiting = asyncio.create_task(batch())
        await _until_waiting_for_a_lock(probe)
        await _assert_locked(probe, "SELECT 1 FROM limit_usage WHERE account_id = :a", account)
        await held.rollback()
        await asyncio.wait_for(waiting, 10)


async def test_the_commit_decision_locks_accounts_in_account_order(harness: Harness) -> None:
    """The decision moves balances in one statement; it must lock the accounts in account order,
    as every writer does. Hold the later account elsewhere: the statement waits for it while
    already holding the earlier one."""
    gw = harness.gw
    hk, cn = await harness.bank("FPS"), await harness.bank("IBPS")
    first, second = sorted([await harness.account(hk, "HKD", "100.00") for _ in range(2)])
    creditor = await harness.account(cn, "CNY", "0.00")

    def crash(point: str) -> None:
        if point == "ibps_prepared":
            raise Stopped(point)

    gw.crash_hook = crash
    for debtor in (first, second):
        with pytest.raises(Stopped):
            await harness.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD")
    gw.crash_hook = lambda point: None
    async with gw.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT payment_id FROM payments WHERE debtor_account_id IN (:a, :b)"),
                {"a": first, "b": second},
            )
        ).all()
        batch = [
            coordinator.Tracked(payment)
            for payment in (await repository.get_many(conn, [r[0] for r in rows])).values()
        ]
    async with gw.engine.connect() as holder, gw.engine.connect() as probe:
        held = await holder.begin()
        await holder.execute(
            text("SELECT 1 FROM ledger_accounts WHERE account_id = :a FOR UPDATE"), {"a": second}
        )
        waiting = asyncio.create_task(coordinator.decide_many(gw.settlement, commits=batch, aborts=[]))
        await _until_waiting_for_a_lock(probe)
        await _assert_locked(probe, "SELECT 1 FROM ledger_accounts WHERE account_id = :a", first)
        await held.rollback()
        await asyncio.wait_for(waiting, 10)
    assert {t.state for t in batch} == {State.COMMITTING}
    assert await harness.balance(first) == await harness.balance(second) == ("90.00", "0.00")
    await coordinator.finish_many(gw.settlement, batch)
    assert {t.state for t in batch} == {State.SETTLED}


class Stopped(BaseException):
    """Stands for the process dying at a step."""


async def _until_waiting_for_a_lock(probe: AsyncConnection) -> None:
    """Until a backend of this database waits for a lock (at most 5 s)."""
    for _ in range(500):
        found = await probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
        await probe.rollback()
        if found:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing ever waited for the lock")


async def _assert_locked(probe: AsyncConnection, select: str, key: str) -> None:
    with pytest.raises(DBAPIError, match="could not obtain lock"):
        await probe.execute(text(f"{select} FOR UPDATE NOWAIT"), {"a": key})
    await probe.rollback()
