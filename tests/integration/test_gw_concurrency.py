"""Concurrency through a real gateway with two worker processes sharing one database (I5, I6)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gateway_stack import Stack, served_gateway, settings_for
from gw_support import IBPS_TOKEN, OPERATOR_KEY, funded_bank

from fpslink.context import Gateway
from fpslink.db import create_engine
from fpslink.ibps_client import IbpsClient
from fpslink.invariants import check_invariants

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture(scope="module")
async def server(stack: Stack) -> AsyncIterator[str]:
    async with served_gateway(stack, "gateway", workers=2, FPSLINK_SOUTHBOUND_HOURS="00:00-24:00") as url:
        yield url


async def _invariants(stack: Stack) -> None:
    settings = settings_for(stack)
    engine = create_engine(settings.database_url, pool_size=2)
    ibps = IbpsClient(base_url=stack.ibps_url, token=IBPS_TOKEN, timeout_s=10)
    try:
        report = await check_invariants(Gateway(settings=settings, engine=engine, ibps=ibps))
    finally:
        await ibps.aclose()
        await engine.dispose()
    assert report.ok, "\n".join(report.violations)


async def _world(http: httpx.AsyncClient) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    for system in ("FPS", "IBPS"):
        _, key, account = await funded_bank(http, system)
        ids[system] = {"key": key, "account": account}
    return ids


def _payment(ids: dict[str, Any], amount: str) -> dict[str, Any]:
    return {
        "debtor_account_id": ids["FPS"]["account"],
        "creditor": {"account_id": ids["IBPS"]["account"]},
        "amount": amount,
        "currency": "HKD",
        "purpose": "FAMILY_SUPPORT",
    }


async def test_fifty_concurrent_payments_never_exceed_the_daily_limit(server: str, stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=120) as http:
        ids = await _world(http)
        bank = {"Authorization": f"Bearer {ids['FPS']['key']}"}
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/payments",
                    json=_payment(ids, "1000.00"),
                    headers={**bank, "Idempotency-Key": str(uuid.uuid4())},
                )
                for _ in range(50)
            )
        )
        outcomes = Counter((r.status_code, r.json()["status"], r.json()["reason_code"]) for r in responses)
        assert outcomes == {(201, "SETTLED", None): 10, (201, "REJECTED", "AM14"): 40}, outcomes
        limits = (await http.get(f"/v1/accounts/{ids['FPS']['account']}/limits", headers=bank)).json()
        assert limits["usage"][0]["used"] == "10000.00"
        account = (await http.get(f"/v1/accounts/{ids['FPS']['account']}", headers=bank)).json()
        assert (account["balance"], account["held"]) == ("90000.00", "0.00")
    await _invariants(stack)


async def test_twenty_concurrent_requests_with_one_key_make_one_payment(server: str, stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=120) as http:
        ids = await _world(http)
        bank = {"Authorization": f"Bearer {ids['FPS']['key']}", "Idempotency-Key": str(uuid.uuid4())}
        responses = await asyncio.gather(
            *(http.post("/v1/payments", json=_payment(ids, "250.00"), headers=bank) for _ in range(20))
        )
        codes = Counter(r.status_code for r in responses)
        assert set(codes) <= {201, 409}, [r.text for r in responses]
        created = [r for r in responses if r.status_code == 201]
        assert len({r.json()["payment_id"] for r in created}) == 1
        assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
        for r in responses:
            if r.status_code == 409:
                assert r.json()["code"] == "IDEMPOTENCY_IN_PROGRESS"
        listed = (await http.get("/v1/payments", headers={"Authorization": bank["Authorization"]})).json()
        assert len(listed["items"]) == 1
        account = (await http.get(f"/v1/accounts/{ids['FPS']['account']}", headers=bank)).json()
        assert account["balance"] == "99750.00"
    await _invariants(stack)


async def test_concurrent_southbound_payments_never_overdraw_at_ibps(server: str, stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=120) as http:
        ids = await _world(http)
        cn = {"Authorization": f"Bearer {ids['IBPS']['key']}"}
        body = {
            "debtor_account_id": ids["IBPS"]["account"],
            "creditor": {"account_id": ids["FPS"]["account"]},
            "amount": "9000.00",
            "currency": "CNY",
            "purpose": "EDUCATION",
        }
        responses = await asyncio.gather(
            *(
                http.post("/v1/payments", json=body, headers={**cn, "Idempotency-Key": str(uuid.uuid4())})
                for _ in range(20)
            )
        )
        outcomes = Counter((r.json()["status"], r.json()["reason_code"]) for r in responses)
        assert outcomes == {("SETTLED", None): 11, ("REJECTED", "AM04"): 9}, outcomes
        account = (await http.get(f"/v1/accounts/{ids['IBPS']['account']}", headers=cn)).json()
        assert (account["balance"], account["held"]) == ("1000.00", "0.00")
    await _invariants(stack)
