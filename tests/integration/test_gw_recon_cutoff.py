"""Reconciliation across the midnight cut-off: a payment and its IBPS entry on neighbouring business
dates are a timing difference, not a break, listed in the payment's day only and still compared
field by field.

mock_ibps dates entries with its own clock, so the tests re-date one payment and its entry in both
databases (as a payment accepted just before midnight, or an IBPS clock a little behind, would
leave them) and put them back afterwards.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from gw_support import Harness
from recon_support import ReconStack, ibps_engine, only_break, real_time, recon_stack, reconcile
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.ledger.models import ledger_transfers
from fpslink.payments.models import payments
from fpslink.reconciliation.domain import business_date_of, business_day_bounds
from mock_ibps.models import transfers as ibps_transfers

pytestmark = pytest.mark.settings(southbound_hours="00:00-24:00")

PAYMENT_TIMES = ("created_at", "updated_at", "decided_at", "settled_at")
LEG_TIMES = ("created_at", "resolved_at")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReconStack]:
    async with recon_stack("recon_cutoff", tmp_path_factory.mktemp("recon-cutoff")) as made:
        yield made


def hkt(day: date, seconds: float) -> datetime:
    """`seconds` after the start of `day` in UTC+8 (before it when negative), as a UTC time."""
    return business_day_bounds(day)[0] + timedelta(seconds=seconds)


async def northbound(h: Harness) -> str:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor, creditor = await h.account(hk, "HKD", "5000.00"), await h.account(cn, "CNY", "0.00")
    response = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="1000.00", currency="HKD")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "SETTLED", response.text
    payment_id: str = response.json()["payment_id"]
    return payment_id


def _shifted(row: dict[str, Any], columns: tuple[str, ...], to: datetime) -> dict[str, Any]:
    """The row's times moved together so that `created_at` becomes `to`."""
    created: datetime = row["created_at"]
    delta = to - created
    return {name: row[name] + delta for name in columns if row[name] is not None}


@asynccontextmanager
async def redated(
    h: Harness, stack: ReconStack, payment_id: str, *, accepted_at: datetime, ibps_at: datetime
) -> AsyncIterator[None]:
    """The payment and its FPS leg accepted at `accepted_at`, its IBPS entry created at `ibps_at`."""
    p, f, i = payments.c, ledger_transfers.c, ibps_transfers.c
    async with h.gw.engine.begin() as conn:
        payment = await row_of(conn, payments, payment_id)
        leg = await row_of(conn, ledger_transfers, payment_id)
        await conn.execute(
            update(payments)
            .where(p.payment_id == payment_id)
            .values(
                business_date=business_date_of(accepted_at).isoformat(),
                **_shifted(payment, PAYMENT_TIMES, accepted_at),
            )
        )
        await conn.execute(
            update(ledger_transfers)
            .where(f.payment_id == payment_id)
            .values(**_shifted(leg, LEG_TIMES, accepted_at))
        )
    engine = ibps_engine(stack)
    try:
        async with engine.begin() as conn:
            entry = await row_of(conn, ibps_transfers, payment_id)
            await conn.execute(
                update(ibps_transfers)
                .where(i.payment_id == payment_id)
                .values(**_shifted(entry, LEG_TIMES, ibps_at))
            )
        try:
            yield
        finally:
            async with engine.begin() as conn:
                await conn.execute(delete(ibps_transfers).where(i.payment_id == payment_id))
                await conn.execute(insert(ibps_transfers).values(entry))
            async with h.gw.engine.begin() as conn:
                await conn.execute(
                    update(payments)
                    .where(p.payment_id == payment_id)
                    .values({k: payment[k] for k in ("business_date", *PAYMENT_TIMES)})
                )
                await conn.execute(
                    update(ledger_transfers)
                    .where(f.payment_id == payment_id)
                    .values({k: leg[k] for k in LEG_TIMES})
                )
    finally:
        await engine.dispose()


async def row_of(conn: AsyncConnection, table: Table, payment_id: str) -> dict[str, Any]:
    return dict((await conn.execute(select(table).where(table.c.payment_id == payment_id))).mappings().one())


async def edit_ibps(stack: ReconStack, payment_id: str, **values: Any) -> None:
    engine = ibps_engine(stack)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(ibps_transfers).where(ibps_transfers.c.payment_id == payment_id).values(**values)
            )
    finally:
        await engine.dispose()


async def test_an_ibps_entry_just_after_midnight_is_a_timing_difference(
    harness: Harness, stack: ReconStack
) -> None:
    h = harness
    today = await real_time(h)
    yesterday = today - timedelta(days=1)
    payment_id = await northbound(h)
    async with redated(h, stack, payment_id, accepted_at=hkt(today, -0.1), ibps_at=hkt(today, 0.05)):
        report = await reconcile(h, yesterday)

        assert report["break_count"] == 0, report["breaks"]
        timing = report["timing_differences"]
        assert (timing["count"], timing["looked_up"], timing["not_looked_up"]) == (1, 1, 0)
        (item,) = timing["items"]
        assert item["payment_id"] == payment_id
        assert (item["ibps_business_date"], item["gateway_state"]) == (today.isoformat(), "SETTLED")
        assert item["ibps_amount"] == item["expected"]
        assert item["ibps_amount"].endswith(" CNY")
        # the entry is in today's IBPS totals, not yesterday's; the payment is in yesterday's
        assert report["totals"]["ibps"] == []
        assert sum(t["count"] for t in report["totals"]["gateway"]) == 1

        listed = await h.http.get(
            f"/v1/reconciliations/{report['reconciliation_id']}?format=csv", headers=h.operator
        )
        (line,) = list(csv.DictReader(io.StringIO(listed.text)))
        assert (line["category"], line["break_type"]) == ("TIMING_DIFFERENCE", "")
        assert line["payment_id"] == payment_id
        page = await h.http.get(
            f"/v1/reconciliations/{report['reconciliation_id']}?format=html", headers=h.operator
        )
        assert 'id="timing-count">1<' in page.text and payment_id in page.text
        assert "No breaks" in page.text

        following = await reconcile(h, today)

        assert following["break_count"] == 0, following["breaks"]
        assert following["timing_differences"]["count"] == 0
        assert following["timing_differences"]["items"] == []
        assert following["unmatched"]["ibps_other_date"] == 1
        assert sum(t["count"] for t in following["totals"]["ibps"]) == 1


async def test_a_timing_difference_is_still_compared(harness: Harness, stack: ReconStack) -> None:
    h = harness
    today = await real_time(h)
    yesterday = today - timedelta(days=1)
    payment_id = await northbound(h)
    async with redated(h, stack, payment_id, accepted_at=hkt(today, -0.1), ibps_at=hkt(today, 0.05)):
        await edit_ibps(stack, payment_id, amount_minor=12_345)

        report = await reconcile(h, yesterday)

        found = only_break(report, "AMOUNT_MISMATCH", "IBPS", payment_id, timing_differences=1)
        assert found["ibps_value"] == "POSTED 123.45 CNY"
        assert found["expected"] != "123.45 CNY"
        following = await reconcile(h, today)
        assert following["break_count"] == 0, following["breaks"]
        assert following["timing_differences"]["count"] == 0


async def test_an_ibps_entry_just_before_midnight_is_a_timing_difference(
    harness: Harness, stack: ReconStack
) -> None:
    """IBPS's clock a little behind the gateway's: the entry is on the previous day's statement."""
    h = harness
    today = await real_time(h)
    yesterday = today - timedelta(days=1)
    payment_id = await northbound(h)
    async with redated(h, stack, payment_id, accepted_at=hkt(today, 0.1), ibps_at=hkt(today, -0.05)):
        report = await reconcile(h, today)

        assert report["break_count"] == 0, report["breaks"]
        timing = report["timing_differences"]
        assert timing["count"] == 1
        assert [(t["payment_id"], t["ibps_business_date"]) for t in timing["items"]] == [
            (payment_id, yesterday.isoformat())
        ]
        previous = await reconcile(h, yesterday)
        assert previous["break_count"] == 0, previous["breaks"]
        assert previous["timing_differences"]["count"] == 0
        assert previous["unmatched"]["ibps_other_date"] == 1


async def test_an_entry_on_no_day_near_midnight_is_still_missing(harness: Harness, stack: ReconStack) -> None:
    h = harness
    today = await real_time(h)
    yesterday = today - timedelta(days=1)
    payment_id = await northbound(h)
    async with redated(h, stack, payment_id, accepted_at=hkt(today, -0.1), ibps_at=hkt(today, 0.05)):
        engine = ibps_engine(stack)
        try:
            async with engine.begin() as conn:
                await conn.execute(delete(ibps_transfers).where(ibps_transfers.c.payment_id == payment_id))
        finally:
            await engine.dispose()

        report = await reconcile(h, yesterday)

        only_break(report, "MISSING_AT_IBPS", "IBPS", payment_id)
        assert (report["timing_differences"]["count"], report["timing_differences"]["looked_up"]) == (0, 1)
