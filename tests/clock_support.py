"""The test clock in integration tests: a gateway whose wall clock stands at the real time, moves of the
sandbox's time through the operator's API, and a small world of two banks paying each other.

Each test that uses it moves the sandbox to noon of a business day of its own (`next_noon`), away
from midnight and from every day another test used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from gateway_stack import Stack, settings_for
from gw_support import FakeClock, Harness

from fpslink.app import create_app
from fpslink.limits.policy import HK_TZ, business_date

DAY_S = 86_400


@asynccontextmanager
async def gateway(stack: Stack, **overrides: Any) -> AsyncIterator[Harness]:
    """A gateway with the test clock on, its wall clock standing at the real time."""
    clock = FakeClock(datetime.now(UTC))
    app = create_app(settings_for(stack, sandbox_clock=True, **overrides), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as http:
            yield Harness(app=app, http=http, clock=clock)


async def clock_of(h: Harness) -> dict[str, Any]:
    response = await h.http.get("/v1/sandbox/clock", headers=h.operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def advance(h: Harness, seconds: int) -> dict[str, Any]:
    response = await h.http.post("/v1/sandbox/clock/advance", json={"seconds": seconds}, headers=h.operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["offset_seconds"] == body["ibps_offset_seconds"], body
    return body


async def move_to(h: Harness, when: datetime) -> dict[str, Any]:
    response = await h.http.put("/v1/sandbox/clock", json={"now": when.isoformat()}, headers=h.operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert datetime.fromisoformat(body["now"]) == when
    assert body["offset_seconds"] == body["ibps_offset_seconds"], body
    return body


def hkt(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HK_TZ)


async def next_noon(h: Harness) -> date:
    """Move to 12:00 HKT of the sandbox's next business day; that day."""
    day = business_date(h.gw.now()) + timedelta(days=1)
    await move_to(h, hkt(day, 12))
    return day


async def world(h: Harness, hk_opening: str = "50000.00", cn_opening: str = "50000.00") -> dict[str, Any]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    return {
        "hk": hk,
        "cn": cn,
        "hk_acc": await h.account(hk, "HKD", hk_opening),
        "cn_acc": await h.account(cn, "CNY", cn_opening),
    }


async def northbound(h: Harness, w: dict[str, Any], amount: str, **extra: Any) -> dict[str, Any]:
    response = await h.pay(
        w["hk"], debtor=w["hk_acc"], creditor_account=w["cn_acc"], amount=amount, currency="HKD", **extra
    )
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


async def southbound(h: Harness, w: dict[str, Any], amount: str) -> dict[str, Any]:
    response = await h.pay(
        w["cn"], debtor=w["cn_acc"], creditor_account=w["hk_acc"], amount=amount, currency="CNY"
    )
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def rejected(body: dict[str, Any], code: str) -> None:
    assert (body["status"], body["reason_code"]) == ("REJECTED", code), body


async def ibps_statement(h: Harness, day: date) -> set[str]:
    """The payment ids on IBPS's statement of a business date."""
    page = await h.gw.ibps.statement_page(day)
    column = page.columns.index("payment_id")
    return {str(entry[column]) for entry in page.entries if entry[column] is not None}
