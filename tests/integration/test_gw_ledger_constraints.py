"""The FPS ledger refuses rows its own code never writes (migration 0008), and a balance update that
misses an account it names raises `LedgerStateError` with nothing written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from gw_support import Harness
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.errors import LedgerStateError
from fpslink.fx.domain import AmountType
from fpslink.ledger import repository as ledger
from fpslink.ledger.domain import Transfer
from fpslink.ledger.models import ledger_accounts, ledger_transfers
from fpslink.money import Currency
from fpslink.payments import repository as payments_repo
from fpslink.payments.domain import Payment, TimelineEntry
from fpslink.payments.models import payment_events, payments
from fpslink.vocabulary import Direction, State, TransferKind

GHOST = "FPS-NO-SUCH-ACCOUNT"


@pytest.fixture
async def account(harness: Harness) -> str:
    """A customer account holding 100.00 HKD, nothing held."""
    return await harness.account(await harness.bank("FPS"), "HKD", "100.00")


@pytest.fixture
async def conn(harness: Harness) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back, whatever the test wrote."""
    async with harness.gw.engine.connect() as connection:
        await connection.begin()
        try:
            yield connection
        finally:
            await connection.rollback()


def payment(payment_id: str, now: datetime) -> Payment:
    """An accepted northbound payment, as acceptance writes it."""
    return Payment(
        payment_id=payment_id,
        participant_id="HKLEDGERTEST",
        creditor_participant_id=None,
        direction=Direction.NORTHBOUND,
        state=State.ACCEPTED,
        debtor_account_id=GHOST,
        creditor_account_id=None,
        creditor_proxy=None,
        creditor_masked_name=None,
        source_minor=500,
        source_currency=Currency.HKD,
        target_minor=None,
        target_currency=None,
        amount_type=AmountType.SEND,
        mid_rate=None,
        rate=None,
        spread_bps=None,
        quote_id=None,
        purpose="FAMILY_SUPPORT",
        remittance_info=None,
        end_to_end_id=None,
        reason_code=None,
        reason=None,
        business_date=now.date(),
        limit_minor=500,
        limit_currency=Currency.HKD,
        attempts=0,
        created_at=now,
        updated_at=now,
        decided_at=None,
        settled_at=None,
    )


def opening(account: str, now: datetime, **changes: Any) -> dict[str, Any]:
    """A valid transfer (an opening balance of 1.00 HKD), with `changes`."""
    return {
        "payment_id": None,
        "kind": "OPENING",
        "debit_account_id": "FPS-FUNDING-HKD",
        "credit_account_id": account,
        "currency": "HKD",
        "amount_minor": 100,
        "status": "POSTED",
        "created_at": now,
        "resolved_at": now,
        **changes,
    }


async def test_a_valid_transfer_is_accepted(harness: Harness, account: str, conn: AsyncConnection) -> None:
    """The baseline the refusals below change one field of."""
    await conn.execute(insert(ledger_transfers).values(opening(account, harness.clock())))


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"amount_minor": -100}, "ck_ledger_transfers_amount_positive"),
        ({"amount_minor": 0}, "ck_ledger_transfers_amount_positive"),
        ({"status": "SETTLED"}, "ck_ledger_transfers_status"),
        ({"kind": "REFUND"}, "ck_ledger_transfers_kind"),
        ({"currency": "USD"}, "ck_ledger_transfers_currency"),
        ({"debit_account_id": "{account}"}, "ck_ledger_transfers_distinct_accounts"),
        ({"status": "PENDING"}, "ck_ledger_transfers_resolved_iff_final"),
        ({"resolved_at": None}, "ck_ledger_transfers_resolved_iff_final"),
        ({"debit_account_id": GHOST}, "fk_ledger_transfers_debit_account_id_ledger_accounts"),
        ({"credit_account_id": GHOST}, "fk_ledger_transfers_credit_account_id_ledger_accounts"),
        ({"payment_id": "{payment}"}, "fk_ledger_transfers_payment_id_payments"),
    ],
)
async def test_a_bad_transfer_is_refused(
    harness: Harness, account: str, conn: AsyncConnection, changes: dict[str, Any], constraint: str
) -> None:
    filled = {
        key: value.format(account=account, payment=uuid.uuid4()) if isinstance(value, str) else value
        for key, value in changes.items()
    }
    with pytest.raises(IntegrityError, match=constraint):
        await conn.execute(insert(ledger_transfers).values(opening(account, harness.clock(), **filled)))


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"held_minor": 10_001}, "ck_ledger_accounts_held_within_balance"),
        ({"held_minor": -1}, "ck_ledger_accounts_held_not_negative"),
        ({"balance_minor": -1}, "ck_ledger_accounts_balance_not_negative"),
        ({"kind": "SAVINGS"}, "ck_ledger_accounts_kind"),
        ({"currency": "USD"}, "ck_ledger_accounts_currency"),
    ],
)
async def test_a_bad_customer_account_is_refused(
    account: str, conn: AsyncConnection, values: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(IntegrityError, match=constraint):
        await conn.execute(
            update(ledger_accounts).where(ledger_accounts.c.account_id == account).values(**values)
        )


async def test_a_hold_of_the_whole_balance_is_accepted(account: str, conn: AsyncConnection) -> None:
    await conn.execute(
        update(ledger_accounts).where(ledger_accounts.c.account_id == account).values(held_minor=10_000)
    )


@pytest.mark.parametrize("values", [{"balance_minor": -5}, {"balance_minor": 5}, {"held_minor": 5}])
async def test_link_and_funding_rows_keep_no_balance(conn: AsyncConnection, values: dict[str, int]) -> None:
    """Their balances are derived from the postings (negative for funding, by design): the row stays 0."""
    for system in ("FPS-LINK-HKD", "FPS-FUNDING-CNY"):
        savepoint = await conn.begin_nested()
        with pytest.raises(IntegrityError, match="ck_ledger_accounts_system_balance_derived"):
            await conn.execute(
                update(ledger_accounts).where(ledger_accounts.c.account_id == system).values(**values)
            )
        await savepoint.rollback()


async def test_an_account_with_transfers_cannot_be_deleted(account: str, conn: AsyncConnection) -> None:
    with pytest.raises(IntegrityError, match="fk_ledger_transfers_credit_account_id_ledger_accounts"):
        await conn.execute(delete(ledger_accounts).where(ledger_accounts.c.account_id == account))


async def test_an_unknown_payment_state_is_refused(harness: Harness, conn: AsyncConnection) -> None:
    with pytest.raises(IntegrityError, match="ck_payments_state"):
        row = payment(str(uuid.uuid4()), harness.clock()).values()
        await conn.execute(insert(payments).values({**row, "state": "LOST"}))


async def test_acceptance_may_write_a_transfer_before_its_payment_in_one_statement(
    harness: Harness, account: str, conn: AsyncConnection
) -> None:
    """`write_accepted` inserts the transfers, then the payments, in one statement: the foreign key
    is checked at its end, so it sees the payment, and still refuses a payment that is not there."""
    now = harness.clock()
    paid, absent = str(uuid.uuid4()), str(uuid.uuid4())

    def transfer(payment_id: str) -> Transfer:
        return ledger.pending_transfer(
            payment_id=payment_id,
            kind=TransferKind.DEBIT,
            debit=account,
            credit="FPS-LINK-HKD",
            currency=Currency.HKD,
            amount_minor=500,
            now=now,
        )

    async def write(transfers: list[Transfer]) -> None:
        await payments_repo.write_accepted(
            await pg.raw(conn),
            usage={},
            holds={account: 500},
            transfers=transfers,
            rows=[payment(paid, now)],
            events=[(paid, TimelineEntry(now, "ACCEPTED"))],
        )

    savepoint = await conn.begin_nested()
    await write([transfer(paid)])
    assert (
        await conn.execute(select(ledger_transfers.c.status).where(ledger_transfers.c.payment_id == paid))
    ).scalar_one() == "PENDING"
    assert await ledger.LedgerRepository(conn).balances(account) == (10_000, 500)
    await savepoint.rollback()
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="fk_ledger_transfers_payment_id_payments"):
        await write([transfer(paid), transfer(absent)])


async def test_a_hold_on_an_unknown_account_raises(harness: Harness, account: str) -> None:
    gw = harness.gw
    async with gw.engine.connect() as conn:
        transaction = await conn.begin()
        with pytest.raises(LedgerStateError, match=GHOST):
            await ledger.add_held(conn, {account: 500, GHOST: 500})
        await transaction.rollback()
    async with gw.engine.connect() as conn:
        assert await ledger.LedgerRepository(conn).balances(account) == (10_000, 0)


async def test_acceptance_raises_when_a_hold_misses_its_account(
    harness: Harness, conn: AsyncConnection
) -> None:
    now = harness.clock()
    paid = str(uuid.uuid4())
    with pytest.raises(LedgerStateError, match="reached 0 of the 1 accounts"):
        await payments_repo.write_accepted(
            await pg.raw(conn),
            usage={},
            holds={GHOST: 500},
            transfers=[],
            rows=[payment(paid, now)],
            events=[(paid, TimelineEntry(now, "ACCEPTED"))],
        )


async def test_a_commit_decision_that_misses_an_account_changes_nothing(harness: Harness) -> None:
    """A ledger the foreign keys were switched off for (a restore without triggers, say) holds a
    pending transfer of an account that does not exist: the single-statement decision raises, and
    neither the payment, its transfer nor its timeline changes."""
    gw = harness.gw
    now = harness.clock()
    payment_id = str(uuid.uuid4())
    async with gw.engine.begin() as conn:
        await payments_repo.insert_payment(conn, payment(payment_id, now))
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            insert(ledger_transfers).values(
                ledger.pending_transfer(
                    payment_id=payment_id,
                    kind=TransferKind.DEBIT,
                    debit=GHOST,
                    credit="FPS-LINK-HKD",
                    currency=Currency.HKD,
                    amount_minor=500,
                    now=now,
                ).values()
            )
        )
    try:
        async with gw.engine.connect() as conn:
            with pytest.raises(LedgerStateError, match="a commit decision changed 0 of the 1 accounts"):
                await payments_repo.decide_commits(
                    await pg.raw(conn),
                    [payment_id],
                    [(payment_id, TimelineEntry(now, "DECIDED_COMMIT"))],
                    now,
                )
        async with gw.engine.connect() as conn:
            state = await conn.scalar(select(payments.c.state).where(payments.c.payment_id == payment_id))
            status = await conn.scalar(
                select(ledger_transfers.c.status).where(ledger_transfers.c.payment_id == payment_id)
            )
            events = await payments_repo.events_of(conn, payment_id)
        assert (state, status, events) == ("ACCEPTED", "PENDING", [])
    finally:
        async with gw.engine.begin() as conn:
            await conn.execute(delete(ledger_transfers).where(ledger_transfers.c.payment_id == payment_id))
            await conn.execute(delete(payment_events).where(payment_events.c.payment_id == payment_id))
            await conn.execute(delete(payments).where(payments.c.payment_id == payment_id))


async def test_an_account_locked_for_its_balance_still_takes_new_transfers(
    harness: Harness, account: str
) -> None:
    """A batch holding an account's lock (`lock_balances`) must not block another inserting a
    transfer of that account, whose foreign key takes a key-share lock on it: FOR UPDATE would, and
    batches crediting and debiting each other's accounts could deadlock."""
    gw = harness.gw
    async with gw.engine.connect() as holder, gw.engine.connect() as other:
        held = await holder.begin()
        assert (await ledger.lock_balances(holder, [account]))[account][1:] == (10_000, 0)
        inserting = await other.begin()
        await other.execute(text("SET LOCAL lock_timeout = '2s'"))
        try:
            await other.execute(insert(ledger_transfers).values(opening(account, harness.clock())))
        except DBAPIError as exc:
            pytest.fail(f"a transfer insert waited for the balance lock: {exc}")
        finally:
            await inserting.rollback()
            await held.rollback()
