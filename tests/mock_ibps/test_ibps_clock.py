"""IBPS's clock: the gateway sets its offset (behind the token), and transfers, statements and their
business dates follow it. Each test sets the offset back to zero: the session's database is shared."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from ibps_support import Bank

from ibps_wire.schemas import MAX_CLOCK_OFFSET_US

THREE_DAYS_US = 3 * 86_400 * 1_000_000
UTC8 = timezone(timedelta(hours=8))


@pytest.fixture
async def at_zero(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    try:
        yield client
    finally:
        reset = await client.put("/ibps/v1/sandbox/clock", json={"offset_us": 0})
        assert reset.status_code == 200, reset.text


async def test_only_the_gateway_sets_the_offset_and_only_within_bounds(
    app: FastAPI, at_zero: httpx.AsyncClient
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock-ibps.test") as anonymous:
        refused = await anonymous.put("/ibps/v1/sandbox/clock", json={"offset_us": 1})
    assert refused.status_code == 401, refused.text
    for offset in (-1, MAX_CLOCK_OFFSET_US + 1, "soon"):
        invalid = await at_zero.put("/ibps/v1/sandbox/clock", json={"offset_us": offset})
        assert invalid.status_code == 422, invalid.text
    seen = (await at_zero.get("/ibps/v1/sandbox/clock")).json()
    assert seen["offset_us"] == 0
    assert abs(datetime.fromisoformat(seen["now"]) - datetime.now(UTC)) < timedelta(seconds=5)


async def test_transfers_and_statements_are_dated_by_ibps_time(
    at_zero: httpx.AsyncClient, bank: Bank
) -> None:
    client = at_zero
    moved = await client.put("/ibps/v1/sandbox/clock", json={"offset_us": THREE_DAYS_US})
    assert moved.status_code == 200, moved.text
    later = datetime.fromisoformat(moved.json()["now"])
    assert abs(later - datetime.now(UTC) - timedelta(days=3)) < timedelta(seconds=5)

    payer = await bank.open_account("100.00")
    payment_id = str(uuid.uuid4())
    await bank.prepare(payment_id, "DEBIT", payer, "10.00")
    assert (await bank.commit(payment_id)).status_code == 200
    transfer = (await client.get(f"/ibps/v1/transfers/{payment_id}")).json()
    created = datetime.fromisoformat(transfer["created_at"])
    assert abs(created - later) < timedelta(seconds=5)

    day = created.astimezone(UTC8).date()
    statement = (await client.get(f"/ibps/v1/statements/{day.isoformat()}")).json()
    column = statement["columns"].index("payment_id")
    assert payment_id in {row[column] for row in statement["entries"]}
    today = (await client.get(f"/ibps/v1/statements/{(day - timedelta(days=3)).isoformat()}")).json()
    assert payment_id not in {row[column] for row in today["entries"]}
