"""The ledger check passes on a busy ledger and catches a balance changed behind its back; the reader
it and the statement exports use sees one snapshot and cannot write."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from ibps_support import Bank, new_payment_id
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from mock_ibps.db import create_engine
from mock_ibps.invariants import LedgerInvariantError, check_ledger
from mock_ibps.models import accounts


async def test_check_reports_conservation(bank: Bank) -> None:
    account_id = await bank.open_account("300.00")
    for kind, amount in (("CREDIT", "20.00"), ("DEBIT", "50.00")):
        payment_id = new_payment_id()
        await bank.prepare(payment_id, kind, account_id, amount)
        await bank.commit(payment_id)
    await bank.prepare(new_payment_id(), "CREDIT", account_id, "1.00")  # left pending
    body = (await bank.http.get("/ibps/v1/ledger/check")).json()
    assert body["ok"] is True
    assert body["violations"] == []
    assert body["balances"] == {"CNY": "0.00"}
    assert body["accounts"] >= 3


async def test_check_catches_corrupted_balance(
    client: httpx.AsyncClient, bank: Bank, database_url: str
) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(balance_minor=accounts.c.balance_minor + 1, held_minor=0)
            )
        body = (await client.get("/ibps/v1/ledger/check")).json()
        assert body["ok"] is False
        assert body["balances"] == {"CNY": "0.01"}
        joined = " | ".join(body["violations"])
        assert "CNY: balances sum to 0.01" in joined
        assert f"account {account_id}: cached balance 100.01" in joined
        assert f"account {account_id}: cached held 0.00 but pending debits give 10.00" in joined
        async with engine.connect() as conn:
            report = await check_ledger(conn)
        assert not report.ok
        with pytest.raises(LedgerInvariantError):
            report.raise_if_broken()
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(balance_minor=10000, held_minor=1000)
            )
        await engine.dispose()
    await bank.abort(payment_id)


async def test_the_reader_sees_one_snapshot_and_cannot_write(app: FastAPI, bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    funds = select(accounts.c.balance_minor, accounts.c.held_minor).where(accounts.c.account_id == account_id)
    reader = app.state.ledger.reader
    async with reader.begin() as conn:
        before = (await conn.execute(funds)).one()
        payment_id = new_payment_id()
        await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
        await bank.commit(payment_id)
        assert (await conn.execute(funds)).one() == before == (10_000, 0)
    async with reader.begin() as conn:
        assert (await conn.execute(funds)).one() == (9_000, 0)
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with reader.begin() as conn:
            await conn.execute(
                update(accounts).where(accounts.c.account_id == account_id).values(held_minor=1)
            )
