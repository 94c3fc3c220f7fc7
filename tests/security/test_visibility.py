"""A payment rejected before its creditor's bank became a party is the debtor bank's alone.

Rejected before acceptance (NOT_CROSS_BORDER, a quote or per-transaction limit refusal once the
creditor is resolved, or acceptance's own funds and limit checks), the payment never touched the
creditor's account: the would-be creditor bank does not find it in the API, in the console, or in
its webhook deliveries. A payment refused after acceptance (here IBPS's RR04) did involve the
creditor, and its bank still sees it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pgtest
import pytest
from console_support import browser
from gw_support import Bank, Harness, problem

from fpslink import migrate

SCRATCH = f"fpslink_t_sec_visibility_{pgtest.RUN}"

UNREACHABLE = "http://127.0.0.1:9/fpslink-events"
"""Nothing listens there: deliveries are queued (what is checked), their attempts fail."""
ALLOW_UNREACHABLE = pytest.mark.settings(webhook_allow="127.0.0.1:9")


async def _subscribe(h: Harness, bank: Bank) -> None:
    response = await h.http.post("/v1/webhooks", json={"url": UNREACHABLE}, headers=bank.headers)
    assert response.status_code == 201, response.text


async def _delivered_payments(h: Harness, bank: Bank) -> set[str]:
    page = await h.http.get("/v1/webhooks/deliveries", params={"limit": 200}, headers=bank.headers)
    assert page.status_code == 200, page.text
    return {item["payment_id"] for item in page.json()["items"]}


async def _listed(h: Harness, bank: Bank) -> set[str]:
    page = await h.http.get("/v1/payments", params={"limit": 200}, headers=bank.headers)
    assert page.status_code == 200, page.text
    return {item["payment_id"] for item in page.json()["items"]}


async def _rejected(response: Any, code: str) -> str:
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["reason_code"]) == ("REJECTED", code), body
    payment_id: str = body["payment_id"]
    return payment_id


@ALLOW_UNREACHABLE
async def test_a_payment_rejected_before_the_creditor_was_a_party_is_not_shown_to_its_bank(
    harness: Harness,
) -> None:
    h = harness
    hk, cn, hk_other = await h.bank("FPS"), await h.bank("IBPS"), await h.bank("FPS")
    debtor = await h.account(hk, "HKD", "50.00")
    cn_account = await h.account(cn, "CNY", "0.00")
    hk_other_account = await h.account(hk_other, "HKD", "0.00")
    hk_other_proxy = await h.proxy(hk_other, hk_other_account)
    for bank in (hk, cn, hk_other):
        await _subscribe(h, bank)

    same_system = await _rejected(
        await h.pay(hk, debtor=debtor, proxy=hk_other_proxy, amount="10.00", currency="HKD"),
        "NOT_CROSS_BORDER",
    )
    over_limit = await _rejected(
        await h.pay(hk, debtor=debtor, creditor_account=cn_account, amount="10000.01", currency="HKD"),
        "AM02",
    )
    no_funds = await _rejected(
        await h.pay(hk, debtor=debtor, creditor_account=cn_account, amount="100.00", currency="HKD"),
        "AM04",
    )
    hidden = [(hk_other, hk_other_account, [same_system]), (cn, cn_account, [over_limit, no_funds])]

    # the debtor's bank sees and is told of all three
    assert {same_system, over_limit, no_funds} <= await _listed(h, hk)
    assert {same_system, over_limit, no_funds} <= await _delivered_payments(h, hk)
    for payment_id in (same_system, over_limit, no_funds):
        assert (await h.http.get(f"/v1/payments/{payment_id}", headers=hk.headers)).status_code == 200
        assert (await h.http.get(f"/v1/payments/{payment_id}", headers=h.operator)).status_code == 200

    for bank, _, payment_ids in hidden:
        assert not set(payment_ids) & await _listed(h, bank), bank.participant_id
        assert not set(payment_ids) & await _delivered_payments(h, bank), bank.participant_id
        for payment_id in payment_ids:
            found = await h.http.get(f"/v1/payments/{payment_id}", headers=bank.headers)
            problem(found, 404, "PAYMENT_NOT_FOUND")

    for bank, account, payment_ids in hidden:
        async with browser(h, bank.api_key) as console:
            listing = await console.get("/console/payments")
            account_page = await console.get(f"/console/accounts/{account}")
            by_account = await console.get("/console/payments", params={"q": account})
            assert listing.status_code == account_page.status_code == by_account.status_code == 200
            for payment_id in payment_ids:
                link = f'href="/console/payments/{payment_id}"'
                assert link not in listing.text
                assert link not in account_page.text
                assert link not in by_account.text
                page = await console.get(f"/console/payments/{payment_id}")
                assert page.status_code == 404, page.text[:500]
                searched = await console.get("/console/payments", params={"q": payment_id})
                assert searched.status_code == 200 and 'id="no-payments"' in searched.text

    async with browser(h, hk.api_key) as console:
        listing = await console.get("/console/payments")
        for payment_id in (same_system, over_limit, no_funds):
            assert f'href="/console/payments/{payment_id}"' in listing.text
            assert (await console.get(f"/console/payments/{payment_id}")).status_code == 200


@ALLOW_UNREACHABLE
async def test_a_payment_refused_after_acceptance_is_still_the_creditor_banks(harness: Harness) -> None:
    """IBPS refused the credit (the RR04 magic value) after both sides were asked: the payee's bank
    was a party to it, and sees it and is told of it."""
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "5000.00")
    creditor = await h.account(cn, "CNY", "0.00")
    await _subscribe(h, cn)
    refused = await _rejected(
        await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="404.04", currency="CNY"), "RR04"
    )
    assert refused in await _listed(h, cn)
    assert (await h.http.get(f"/v1/payments/{refused}", headers=cn.headers)).status_code == 200
    for _ in range(100):
        if refused in await _delivered_payments(h, cn):
            break
        await asyncio.sleep(0.05)
    assert refused in await _delivered_payments(h, cn)
    async with browser(h, cn.api_key) as console:
        assert (await console.get(f"/console/payments/{refused}")).status_code == 200


async def test_the_upgrade_takes_such_payments_from_their_would_be_creditor_banks() -> None:
    """Payments recorded by the code before migration 0009 named the would-be creditor's bank; 0009
    clears it where the payment never reached acceptance (no ACCEPTED event) and drops that bank's
    deliveries of it, and leaves every other payment and delivery as it was."""
    url = await pgtest.recreate(SCRATCH)
    try:
        await asyncio.to_thread(migrate.upgrade, url, "0008_ledger_constraints")
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for payment_id, state, creditor, events in (
                ("refused-early", "REJECTED", "HKOTHER", ["REJECTED"]),
                ("refused-by-ibps", "REJECTED", "CNBANK", ["ACCEPTED", "DECIDED_ABORT", "REJECTED"]),
                ("settled", "SETTLED", "CNBANK", ["ACCEPTED", "SETTLED"]),
            ):
                await conn.execute(
                    "INSERT INTO payments (payment_id, participant_id, creditor_participant_id, direction,"
                    " state, debtor_account_id, source_currency, amount_type, purpose, business_date,"
                    " limit_minor, limit_currency, attempts, created_at, updated_at) VALUES ($1, 'HKBANK',"
                    " $2, 'NORTHBOUND', $3, 'HK1', 'HKD', 'SEND', 'FAMILY_SUPPORT', '2026-06-22', 0, 'HKD',"
                    " 0, now(), now())",
                    payment_id,
                    creditor,
                    state,
                )
                for event in events:
                    await conn.execute(
                        "INSERT INTO payment_events (payment_id, at, event) VALUES ($1, now(), $2)",
                        payment_id,
                        event,
                    )
                for bank in ("HKBANK", creditor):
                    await conn.execute(
                        "INSERT INTO webhook_deliveries (delivery_id, webhook_id, participant_id, event,"
                        " payment_id, status, attempts, next_attempt_at, created_at)"
                        " VALUES ($1, $2, $3, 'payment.rejected', $4, 'PENDING', 0, now(), now())",
                        f"{payment_id}:{bank}",
                        f"hook-{bank}",
                        bank,
                        payment_id,
                    )
            await asyncio.to_thread(migrate.upgrade, url)
            creditors = dict(await conn.fetch("SELECT payment_id, creditor_participant_id FROM payments"))
            deliveries = {r[0] for r in await conn.fetch("SELECT delivery_id FROM webhook_deliveries")}
        finally:
            await conn.close()
    finally:
        await pgtest.drop(SCRATCH)
    assert creditors == {"refused-early": None, "refused-by-ibps": "CNBANK", "settled": "CNBANK"}
    assert deliveries == {
        "refused-early:HKBANK",
        "refused-by-ibps:HKBANK",
        "refused-by-ibps:CNBANK",
        "settled:HKBANK",
        "settled:CNBANK",
    }
