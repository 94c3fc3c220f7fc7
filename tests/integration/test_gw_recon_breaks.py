"""Reconciliation: a clean day has no breaks; each break type, made by editing one side, shows once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from gw_support import Harness
from recon_support import (
    ReconStack,
    a_day,
    ibps_engine,
    only_break,
    real_time,
    recon_stack,
    reconcile,
)
from sqlalchemy import delete, insert, select, text, update

from fpslink.context import Gateway
from fpslink.ledger.models import ledger_transfers
from fpslink.payments.models import payments
from fpslink.reconciliation import service as recon_service
from mock_ibps.models import transfers as ibps_transfers

pytestmark = pytest.mark.settings(southbound_hours="00:00-24:00")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReconStack]:
    async with recon_stack("recon_breaks", tmp_path_factory.mktemp("recon-breaks")) as made:
        yield made


async def test_a_clean_day_has_no_breaks_and_full_totals(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)

    report = await reconcile(h, today)

    assert report["break_count"] == 0, report["breaks"]
    assert report["breaks"] == []
    assert set(report["breaks_by_type"].values()) == {0}
    gateway = report["totals"]["gateway"]
    assert sum(t["count"] for t in gateway if t["status"] == "SETTLED") >= 5
    assert sum(t["count"] for t in gateway if t["status"] == "REJECTED") >= 2
    northbound_hkd = [
        t
        for t in gateway
        if (t["direction"], t["status"], t["source_currency"]) == ("NORTHBOUND", "SETTLED", "HKD")
    ]
    assert northbound_hkd and northbound_hkd[0]["count"] >= 2
    fps = {(t["kind"], t["status"], t["currency"]): t for t in report["totals"]["fps"]}
    ibps = {(t["kind"], t["status"], t["currency"]): t for t in report["totals"]["ibps"]}
    assert ("DEBIT", "POSTED", "HKD") in fps and ("CREDIT", "POSTED", "HKD") in fps
    assert ("CREDIT", "POSTED", "CNY") in ibps and ("DEBIT", "POSTED", "CNY") in ibps
    net = report["positions"]
    # IBPS paid 917.70 + 500.00 + 250.55 northbound and collected 800.00 + 120.00 southbound
    assert ibps[("CREDIT", "POSTED", "CNY")]["amount"] == "1668.25"
    assert ibps[("DEBIT", "POSTED", "CNY")]["amount"] == "920.00"
    assert net["net_cny_due_to_ibps"] == "748.25"
    pairs = {f["pair"]: f for f in report["fx"]}
    assert pairs["HKD->CNY"]["count"] == 2
    assert pairs["HKD->CNY"]["spread_earned"] != "0.00"
    assert sum(hour["northbound"] + hour["southbound"] for hour in report["hourly"]) == 7
    assert sum(bucket["count"] for bucket in report["latency"]) == 5
    assert day.rejected_unknown


async def test_missing_at_ibps(harness: Harness, stack: ReconStack) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    engine = ibps_engine(stack)
    try:
        async with engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(ibps_transfers).where(ibps_transfers.c.payment_id == day.northbound)
                    )
                )
                .mappings()
                .one()
            )
            await conn.execute(delete(ibps_transfers).where(ibps_transfers.c.payment_id == day.northbound))
        try:
            found = only_break(await reconcile(h, today), "MISSING_AT_IBPS", "IBPS", day.northbound)
            assert found["ibps_value"] == "(no entry)"
            assert found["gateway_value"].startswith("SETTLED 1000.00 HKD -> 917.70 CNY")
            assert found["expected"] == "917.70 CNY"
        finally:
            async with engine.begin() as conn:
                await conn.execute(insert(ibps_transfers).values(dict(row)))
    finally:
        await engine.dispose()


async def test_missing_at_fps(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    async with h.gw.engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(ledger_transfers).where(ledger_transfers.c.payment_id == day.southbound_hkd)
                )
            )
            .mappings()
            .one()
        )
        await conn.execute(
            delete(ledger_transfers).where(ledger_transfers.c.payment_id == day.southbound_hkd)
        )
    try:
        found = only_break(await reconcile(h, today), "MISSING_AT_FPS", "FPS", day.southbound_hkd)
        assert found["fps_value"] == "(no entry)"
        assert found["ibps_value"] == "POSTED 800.00 CNY"
    finally:
        async with h.gw.engine.begin() as conn:
            await conn.execute(insert(ledger_transfers).values(dict(row)))


async def test_unexpected_at_ibps(harness: Harness, stack: ReconStack) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    stray = str(uuid.uuid4())
    engine = ibps_engine(stack)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(ibps_transfers).values(
                    transfer_id=str(uuid.uuid4()),
                    payment_id=stray,
                    kind="CREDIT",
                    account_id=day.ibps_account,
                    debit_account_id="IBPS-LINK-CNY",
                    credit_account_id=day.ibps_account,
                    currency="CNY",
                    amount_minor=12_345,
                    status="PENDING",
                    created_at=datetime.now(UTC),
                )
            )
        try:
            found = only_break(await reconcile(h, today), "UNEXPECTED_AT_IBPS", "IBPS", stray)
            assert found["gateway_value"] == "(no payment)"
            assert found["ibps_value"] == "PENDING 123.45 CNY"
        finally:
            async with engine.begin() as conn:
                await conn.execute(delete(ibps_transfers).where(ibps_transfers.c.payment_id == stray))
    finally:
        await engine.dispose()


async def test_unexpected_at_fps(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    stray = str(uuid.uuid4())
    async with h.gw.engine.begin() as conn:
        # The payment's foreign key refuses this row (migration 0008): only a ledger whose triggers
        # were off, as in a restore without them, can hold one, and that is what the break is for.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            insert(ledger_transfers).values(
                payment_id=stray,
                kind="CREDIT",
                debit_account_id="FPS-LINK-HKD",
                credit_account_id=day.fps_account,
                currency="HKD",
                amount_minor=500,
                status="PENDING",
                created_at=h.clock(),
            )
        )
    try:
        found = only_break(await reconcile(h, today), "UNEXPECTED_AT_FPS", "FPS", stray)
        assert found["fps_value"] == "PENDING 5.00 HKD"
    finally:
        async with h.gw.engine.begin() as conn:
            await conn.execute(delete(ledger_transfers).where(ledger_transfers.c.payment_id == stray))


async def _edit_ibps(stack: ReconStack, payment_id: str, **values: Any) -> dict[str, Any]:
    engine = ibps_engine(stack)
    try:
        async with engine.begin() as conn:
            before = dict(
                (await conn.execute(select(ibps_transfers).where(ibps_transfers.c.payment_id == payment_id)))
                .mappings()
                .one()
            )
            await conn.execute(
                update(ibps_transfers).where(ibps_transfers.c.payment_id == payment_id).values(**values)
            )
    finally:
        await engine.dispose()
    return {k: before[k] for k in values}


async def _edit_gateway(gw: Gateway, table: Any, payment_id: str, **values: Any) -> dict[str, Any]:
    async with gw.engine.begin() as conn:
        before = dict(
            (await conn.execute(select(table).where(table.c.payment_id == payment_id))).mappings().one()
        )
        await conn.execute(update(table).where(table.c.payment_id == payment_id).values(**values))
    return {k: before[k] for k in values}


async def test_amount_mismatch_at_ibps(harness: Harness, stack: ReconStack) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    saved = await _edit_ibps(stack, day.northbound_receive, amount_minor=49_999)
    try:
        found = only_break(await reconcile(h, today), "AMOUNT_MISMATCH", "IBPS", day.northbound_receive)
        assert found["ibps_value"] == "POSTED 499.99 CNY"
        assert found["expected"] == "500.00 CNY"
    finally:
        await _edit_ibps(stack, day.northbound_receive, **saved)


async def test_currency_mismatch_at_fps(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    saved = await _edit_gateway(h.gw, ledger_transfers, day.northbound, currency="CNY")
    try:
        found = only_break(await reconcile(h, today), "CURRENCY_MISMATCH", "FPS", day.northbound)
        assert found["fps_value"] == "POSTED 1000.00 CNY"
        assert found["expected"] == "1000.00 HKD"
    finally:
        await _edit_gateway(h.gw, ledger_transfers, day.northbound, **saved)


async def test_status_mismatch_at_ibps(harness: Harness, stack: ReconStack) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    saved = await _edit_ibps(stack, day.southbound_cny, status="PENDING", resolved_at=None)
    try:
        found = only_break(await reconcile(h, today), "STATUS_MISMATCH", "IBPS", day.southbound_cny)
        assert found["ibps_value"] == "PENDING 120.00 CNY"
        assert found["expected"] == "POSTED"
    finally:
        await _edit_ibps(stack, day.southbound_cny, **saved)


async def test_fx_mismatch(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    saved = await _edit_gateway(h.gw, payments, day.northbound, rate="0.927700")
    try:
        found = only_break(await reconcile(h, today), "FX_MISMATCH", "GATEWAY", day.northbound)
        assert "at 0.927700" in found["gateway_value"]
        assert found["expected"] == "target 927.70 CNY at 0.927700"
    finally:
        await _edit_gateway(h.gw, payments, day.northbound, **saved)


async def test_duplicate_instruction(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor, creditor = await h.account(hk, "HKD", "9000.00"), await h.account(cn, "CNY", "0.00")
    first = await h.pay(
        hk,
        debtor=debtor,
        creditor_account=creditor,
        amount="300.00",
        currency="HKD",
        end_to_end_id="INV-2026-001",
    )
    h.clock.advance(1)
    second = await h.pay(
        hk,
        debtor=debtor,
        creditor_account=creditor,
        amount="300.00",
        currency="HKD",
        end_to_end_id="INV-2026-002",
    )
    first_id, second_id = first.json()["payment_id"], second.json()["payment_id"]
    saved = await _edit_gateway(h.gw, payments, second_id, end_to_end_id="INV-2026-001")
    try:
        found = only_break(await reconcile(h, today), "DUPLICATE", "GATEWAY", second_id)
        assert found["related_payment_id"] == first_id
        assert found["expected"] == f"first payment {first_id}"
    finally:
        await _edit_gateway(h.gw, payments, second_id, **saved)


async def test_duplicate_in_the_ibps_statement(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)

    async def twice(business_date: date) -> AsyncIterator[recon_service.StatementPage]:
        async for page in h.gw.reconciliation.ibps_statement(business_date):
            rows = page.rows()
            extra = [(row[0] + 1_000_000, *row[1:]) for row in rows if row[1] == day.southbound_hkd]
            yield recon_service.StatementPage.of_rows(rows + extra, total=page.total)

    run_id = await h.gw.reconciliation.reconcile(business_date=today, statement=twice)
    response = await h.http.get(f"/v1/reconciliations/{run_id}", headers=h.operator)
    found = only_break(response.json(), "DUPLICATE", "IBPS", day.southbound_hkd)
    assert found["expected"] == "one entry, found 2"


@pytest.mark.settings(southbound_hours="00:00-24:00", settlement_timeout_s=30)
async def test_stuck_pending(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    saved = await _edit_gateway(h.gw, payments, day.northbound_cny, state="COMMITTING", settled_at=None)
    h.clock.advance(31)
    try:
        found = only_break(await reconcile(h, today), "STUCK_PENDING", "GATEWAY", day.northbound_cny)
        assert found["gateway_value"].startswith("COMMITTING")
        assert found["age_s"] >= 31
    finally:
        await _edit_gateway(h.gw, payments, day.northbound_cny, **saved)
