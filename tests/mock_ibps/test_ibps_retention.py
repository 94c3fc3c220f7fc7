"""mock_ibps's retention, moved through the days by IBPS's sandbox clock: a purged date's transfers go,
holds stay, every balance and the ledger's sum stay, the kept dates' camt.053 opens and closes as
before, and the purged dates' statements are refused.

A database and an app of its own: a purge moves the kept dates for every test on the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import asyncpg
import httpx
import pgtest
import pytest
from camt053_support import LINK, statement
from fastapi import FastAPI
from ibps_support import TOKEN, Bank, assert_problem, client_for, new_payment_id

from mock_ibps.app import create_app
from mock_ibps.config import Settings
from mock_ibps.db import create_engine
from mock_ibps.migrate import upgrade
from mock_ibps.retention import LOCK_KEY, IbpsRetention, PassReport
from mock_ibps.statement import BUSINESS_TZ

DATABASE = f"fpslink_t_mock_ibps_retention_{pgtest.RUN}"


@pytest.fixture
async def retained() -> AsyncIterator[tuple[FastAPI, str]]:
    url = await pgtest.recreate(DATABASE)
    await asyncio.to_thread(upgrade, url)
    app = create_app(Settings(database_url=url, token=TOKEN, retention_enabled=False))
    try:
        async with app.router.lifespan_context(app):
            yield app, url
    finally:
        await pgtest.drop(DATABASE)


async def move_to_noon(http: httpx.AsyncClient, days_ahead: int) -> datetime:
    """Set IBPS's time to noon (UTC+8) `days_ahead` days after today; that noon."""
    today = datetime.now(UTC).astimezone(BUSINESS_TZ).date()
    noon = datetime.combine(today + timedelta(days=days_ahead), time(12), tzinfo=BUSINESS_TZ)
    offset_us = (noon - datetime.now(UTC)) // timedelta(microseconds=1)
    moved = await http.put("/ibps/v1/sandbox/clock", json={"offset_us": offset_us})
    assert moved.status_code == 200, moved.text
    return noon


async def purge(app: FastAPI, url: str, *, days: int) -> PassReport:
    engine = create_engine(url)
    try:
        settings = Settings(database_url=url, token=TOKEN, retention_days=days, retention_batch_size=10)
        return await IbpsRetention(engine, clock=app.state.clock.now, settings=settings).run_once()
    finally:
        await engine.dispose()


async def carried_entries(url: str) -> list[str]:
    """The accounts that carried entries stand for."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [r[0] for r in await conn.fetch("SELECT account_id FROM transfers WHERE kind = 'CARRIED'")]
    finally:
        await conn.close()


REFERENCES = {
    "msg_id": "M-1",
    "instr_id": None,
    "end_to_end_id": "E-1",
    "tx_id": None,
    "uetr": None,
    "purpose_code": "FAMI",
    "purpose_proprietary": None,
    "unstructured": ["Tuition"],
    "structured": [],
    "instructed_amount": "108.97",
    "instructed_currency": "HKD",
    "exchange": {"source_currency": "HKD", "target_currency": "CNY", "rate": "0.917700"},
}
"""What a payment sent as a pacs.008 came with, as the gateway's prepare carries it."""


async def sent_with(url: str, payment_id: str) -> int:
    """How many rows of what a payment was sent with IBPS keeps (one, or none)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM transfer_references WHERE payment_id = $1", payment_id
        )
        return count
    finally:
        await conn.close()


async def test_a_purged_date_leaves_balances_holds_and_the_kept_statements_as_they_were(
    retained: tuple[FastAPI, str],
) -> None:
    app, url = retained
    async with client_for(app) as http:
        day_a = (await move_to_noon(http, 1)).date()
        bank = await Bank.create(http)
        payer, payee, poor = (
            await bank.open_account("1000.00"),
            await bank.open_account("0.00"),
            await bank.open_account("10.00"),
        )
        credited, debited, refused, aborted, held = (new_payment_id() for _ in range(5))
        await bank.prepare(credited, "CREDIT", payee, "100.00", references=REFERENCES)
        assert await sent_with(url, credited) == 1
        assert (await bank.commit(credited)).status_code == 200
        await bank.prepare(debited, "DEBIT", payer, "40.00")
        assert (await bank.commit(debited)).status_code == 200
        assert (await bank.prepare(refused, "DEBIT", poor, "50.00"))["outcome"] == "REFUSED"
        await bank.prepare(aborted, "DEBIT", payer, "30.00")
        assert (await bank.abort(aborted)).status_code == 200
        assert (await bank.abort(new_payment_id())).status_code == 200  # a tombstone
        await bank.prepare(held, "DEBIT", payer, "20.00")  # a hold, never resolved on day A
        for _ in range(11):  # with the five above, two batches of 10
            pid = new_payment_id()
            await bank.prepare(pid, "CREDIT", payee, "1.00")
            assert (await bank.commit(pid)).status_code == 200
        for days_ahead, amount in ((2, "70.00"), (3, "5.00")):  # days B and C
            await move_to_noon(http, days_ahead)
            for _ in range(2):
                pid = new_payment_id()
                await bank.prepare(pid, "CREDIT", payee, amount)
                assert (await bank.commit(pid)).status_code == 200
        day_b, day_c = day_a + timedelta(days=1), day_a + timedelta(days=2)
        balances = {account: await bank.balances(account) for account in (payer, payee, poor)}
        kept = {
            (day, scope): (await statement(http, day, **params))[2]
            for day in (day_b, day_c)
            for scope, params in (("link", {}), ("bank", {"participant_id": bank.participant_id}))
        }

        holder = await asyncpg.connect(pgtest.dsn(DATABASE))
        try:
            assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
            assert not (await purge(app, url, days=1)).ran
        finally:
            await holder.close()
        report = await purge(app, url, days=1)  # at day C: day B on are kept
        assert (report.ran, report.kept_from, report.transfers, report.finished) == (True, day_b, 16, True)
        carried = await carried_entries(url)
        assert sorted(carried) == sorted([payer, payee, LINK])

        assert {account: await bank.balances(account) for account in balances} == balances
        for day, scope in kept:
            params = {} if scope == "link" else {"participant_id": bank.participant_id}
            assert (await statement(http, day, **params))[2] == kept[(day, scope)], (day, scope)
        assert kept[(day_b, "link")][LINK].opening != 0  # day A's postings, carried into B's opening
        for path in ("", "/tsv", "/camt053"):
            gone = await http.get(f"/ibps/v1/statements/{day_a.isoformat()}{path}")
            assert assert_problem(gone, 409, "STATEMENT_PURGED")["kept_from"] == day_b.isoformat()
        for pid in (credited, debited, refused, aborted):
            assert (await http.get(f"/ibps/v1/transfers/{pid}")).status_code == 404
        assert await sent_with(url, credited) == 0  # what the payment was sent with went with it
        assert (await http.get(f"/ibps/v1/transfers/{held}")).json()["status"] == "PENDING"

        assert (await bank.commit(held)).status_code == 200  # resolved today: kept with today
        again = await purge(app, url, days=1)
        assert (again.transfers, again.carried) == (0, 0)
        assert await carried_entries(url) == carried
        assert (await http.get(f"/ibps/v1/transfers/{held}")).json()["status"] == "POSTED"
        check = (await http.get("/ibps/v1/ledger/check")).json()
        assert check["ok"], check["violations"]
        assert check["balances"] == {"CNY": "0.00"}
