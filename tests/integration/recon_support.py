"""Helpers for the reconciliation tests: a stack of their own, a real clock, a day of payments.

mock_ibps stamps transfers with its own (real) clock, so these tests run the gateway's fake clock at
the real time too: the IBPS statement and the gateway then agree on the business date. Each test
module gets fresh databases, so "the day" holds only that module's payments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pgtest
from gateway_stack import Stack, stack_on
from gw_support import Harness
from sqlalchemy.ext.asyncio import AsyncEngine

from fpslink.reconciliation.domain import business_date_of
from mock_ibps.db import create_engine as create_ibps_engine

MIDNIGHT_MARGIN_S = 180


ReconStack = Stack
"""A stack of the reconciliation tests' own: their "day" holds only their payments."""


@asynccontextmanager
async def recon_stack(tag: str, workdir: Path) -> AsyncIterator[ReconStack]:
    """Fresh gateway and IBPS databases and a mock_ibps process of their own."""
    names = f"fpslink_t_{tag}_{pgtest.RUN}", f"fpslink_t_{tag}_ibps_{pgtest.RUN}"
    async with stack_on(workdir, *names) as made:
        yield made


async def real_time(h: Harness) -> date:
    """Move the fake clock to now (away from midnight in UTC+8); return today's business date."""
    now = datetime.now(UTC)
    midnight = datetime.combine(business_date_of(now) + timedelta(days=1), datetime.min.time()).replace(
        tzinfo=UTC
    ) - timedelta(hours=8)
    if (midnight - now).total_seconds() < MIDNIGHT_MARGIN_S:
        await asyncio.sleep((midnight - now).total_seconds() + 2)
    h.clock.now = datetime.now(UTC)
    return business_date_of(h.clock.now)


def ibps_engine(stack: Any) -> AsyncEngine:
    return create_ibps_engine(stack.ibps_db)


@dataclass
class Day:
    """A small business day: settled payments both ways, and rejections."""

    northbound: str
    northbound_receive: str
    northbound_cny: str
    southbound_hkd: str
    southbound_cny: str
    rejected_funds: str
    rejected_unknown: str
    fps_account: str
    ibps_account: str


async def a_day(h: Harness) -> Day:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hkd = await h.account(hk, "HKD", "50000.00")
    fps_cny = await h.account(hk, "CNY", "50000.00")
    hkd_payee = await h.account(hk, "HKD", "0.00")
    mainland = await h.account(cn, "CNY", "50000.00")
    payee = await h.account(cn, "CNY", "0.00")

    async def pay(bank: Any, debtor: str, creditor: str, amount: str, currency: str, **extra: Any) -> str:
        response = await h.pay(
            bank, debtor=debtor, creditor_account=creditor, amount=amount, currency=currency, **extra
        )
        assert response.status_code == 201, response.text
        payment_id: str = response.json()["payment_id"]
        return payment_id

    day = Day(
        northbound=await pay(hk, hkd, payee, "1000.00", "HKD"),
        northbound_receive=await pay(hk, hkd, payee, "500.00", "CNY"),
        northbound_cny=await pay(hk, fps_cny, payee, "250.55", "CNY"),
        southbound_hkd=await pay(cn, mainland, hkd_payee, "800.00", "CNY"),
        southbound_cny=await pay(cn, mainland, fps_cny, "120.00", "CNY"),
        rejected_funds=await pay(hk, hkd_payee, payee, "5000.00", "HKD"),
        rejected_unknown=await pay(hk, hkd, "CN0000NOSUCH", "10.00", "HKD"),
        fps_account=hkd,
        ibps_account=payee,
    )
    return day


async def reconcile(h: Harness, business_date: date) -> dict[str, Any]:
    """POST the run, then GET its JSON report."""
    created = await h.http.post(
        "/v1/reconciliations", json={"business_date": business_date.isoformat()}, headers=h.operator
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["reconciliation_id"]
    response = await h.http.get(f"/v1/reconciliations/{run_id}", headers=h.operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "COMPLETED", body
    return body


def only_break(
    report: dict[str, Any], break_type: str, side: str, payment_id: str, *, timing_differences: int = 0
) -> dict[str, Any]:
    """The report holds exactly one break, this one, and that many timing differences; returns it."""
    assert report["break_count"] == 1, report["breaks"]
    assert report["timing_differences"]["count"] == timing_differences, report["timing_differences"]
    assert len(report["breaks"]) == 1
    found: dict[str, Any] = report["breaks"][0]
    assert (found["break_type"], found["side"], found["payment_id"]) == (break_type, side, payment_id), found
    assert report["breaks_by_type"][break_type] == 1
    assert found["suggested_action"]
    assert found["age_s"] >= 0
    return found
