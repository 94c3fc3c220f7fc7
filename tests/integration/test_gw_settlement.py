"""Both directions settle and move exactly the right amounts on both ledgers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from gw_support import Harness
from sqlalchemy import select

from fpslink.payments.models import payment_events


async def test_northbound_hkd_send_moves_exact_amounts(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "5000.00")
    creditor = await h.account(cn, "CNY", "100.00")
    proxy = await h.proxy(cn, creditor)

    response = await h.pay(hk, debtor=debtor, proxy=proxy, amount="1000.00", currency="HKD")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "SETTLED"
    assert body["direction"] == "NORTHBOUND"
    assert (body["source_amount"], body["source_currency"]) == ("1000.00", "HKD")
    assert (body["target_amount"], body["target_currency"]) == ("917.70", "CNY")
    assert (body["rate"], body["mid_rate"], body["spread_bps"]) == ("0.917700", "0.920000", "25")
    assert body["creditor_account_id"] == creditor
    assert body["creditor_masked_name"] == "张*明"
    assert body["settled_at"] is not None
    assert [e["event"] for e in body["events"]] == [
        "ACCEPTED",
        "FX_FIXED",
        "LIMITS_RESERVED",
        "PREPARED_AT_FPS",
        "PREPARED_AT_IBPS",
        "DECIDED_COMMIT",
        "POSTED_AT_FPS",
        "COMMITTED_AT_IBPS",
        "SETTLED",
    ]
    assert await h.balance(debtor) == ("4000.00", "0.00")
    assert await h.balance(creditor) == ("1017.70", "0.00")


async def test_northbound_receive_amount_rounds_the_source_up(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "5000.00")
    creditor = await h.account(cn, "CNY", "0.00")

    response = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="1000.00", currency="CNY")

    body = response.json()
    assert body["status"] == "SETTLED", body
    # 1000.00 / 0.9177 = 1089.6807...: the payer covers the fraction
    assert body["source_amount"] == "1089.69"
    assert body["target_amount"] == "1000.00"
    assert await h.balance(debtor) == ("3910.31", "0.00")
    assert await h.balance(creditor) == ("1000.00", "0.00")


async def test_northbound_from_an_fps_cny_account_needs_no_fx(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "CNY", "3000.00")
    creditor = await h.account(cn, "CNY", "0.00")

    body = (
        await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="2500.55", currency="CNY")
    ).json()

    assert body["status"] == "SETTLED", body
    assert (body["source_amount"], body["target_amount"], body["rate"]) == ("2500.55", "2500.55", "1.000000")
    assert await h.balance(debtor) == ("499.45", "0.00")
    assert await h.balance(creditor) == ("2500.55", "0.00")


async def test_southbound_to_hkd_and_to_cny(harness: Harness) -> None:
    h = harness
    cn, hk = await h.bank("IBPS"), await h.bank("FPS")
    debtor = await h.account(cn, "CNY", "10000.00")
    hkd_payee = await h.account(hk, "HKD", "0.00")
    cny_payee = await h.account(hk, "CNY", "0.00")
    proxy = await h.proxy(hk, hkd_payee)

    first = (await h.pay(cn, debtor=debtor, proxy=proxy, amount="1000.00", currency="CNY")).json()
    second = (
        await h.pay(cn, debtor=debtor, creditor_account=cny_payee, amount="300.00", currency="CNY")
    ).json()

    assert first["status"] == "SETTLED" and first["direction"] == "SOUTHBOUND", first
    assert first["mid_rate"] == "1.086957"  # 1 / 0.92 to six places
    assert first["rate"] == "1.084240"
    assert first["target_amount"] == "1084.24"
    assert first["creditor_masked_name"] == "CHAN T** M**"
    assert second["status"] == "SETTLED", second
    assert second["target_amount"] == "300.00"
    assert await h.balance(debtor) == ("8700.00", "0.00")
    assert await h.balance(hkd_payee) == ("1084.24", "0.00")
    assert await h.balance(cny_payee) == ("300.00", "0.00")


async def test_many_payments_move_exactly_what_they_report(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hk_acc = await h.account(hk, "HKD", "9000.00")
    cn_acc = await h.account(cn, "CNY", "9000.00")
    hk_expected = cn_expected = Decimal("9000.00")
    for i in range(1, 8):
        amount = f"{i * 11}.{i:02d}"
        north = (
            await h.pay(hk, debtor=hk_acc, creditor_account=cn_acc, amount=amount, currency="HKD")
        ).json()
        south = (
            await h.pay(cn, debtor=cn_acc, creditor_account=hk_acc, amount=amount, currency="CNY")
        ).json()
        assert north["status"] == south["status"] == "SETTLED"
        hk_expected += Decimal(south["target_amount"]) - Decimal(north["source_amount"])
        cn_expected += Decimal(north["target_amount"]) - Decimal(south["source_amount"])
    assert await h.balance(hk_acc) == (f"{hk_expected}", "0.00")
    assert await h.balance(cn_acc) == (f"{cn_expected}", "0.00")


@pytest.mark.settings(fx_mid_hkd_cny="0.935500", fx_spread_bps="0")
async def test_rates_come_from_settings(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    rates = (await h.http.get("/v1/fx/rates", headers=hk.headers)).json()["rates"]
    assert rates[0] == {
        "source_currency": "HKD",
        "target_currency": "CNY",
        "mid_rate": "0.935500",
        "rate": "0.935500",
        "spread_bps": "0",
    }
    debtor = await h.account(hk, "HKD", "100.00")
    creditor = await h.account(cn, "CNY", "0.00")
    body = (await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="100.00", currency="HKD")).json()
    assert body["target_amount"] == "93.55"


async def test_the_stored_timeline_reads_back_as_answered_a_row_per_step(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "5000.00")
    creditor = await h.account(cn, "CNY", "0.00")

    answered = (
        await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD")
    ).json()
    read = (await h.http.get(f"/v1/payments/{answered['payment_id']}", headers=hk.headers)).json()

    assert read["events"] == answered["events"]
    assert len(answered["events"]) == 9
    async with h.gw.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(payment_events.c.event, payment_events.c.more)
                .where(payment_events.c.payment_id == answered["payment_id"])
                .order_by(payment_events.c.seq)
            )
        ).all()
    # acceptance, the decision and phase two: one row each, the step's later events in `more`
    assert [event for event, _ in rows] == ["ACCEPTED", "PREPARED_AT_IBPS", "COMMITTED_AT_IBPS"]
    assert [len(json.loads(more)) for _, more in rows] == [3, 2, 1]
