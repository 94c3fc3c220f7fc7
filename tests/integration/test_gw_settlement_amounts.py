"""Settled amounts against figures this test computes itself, from the documented rules alone.

The invariants (I1-I6) hold both ledgers to the payment's own FX record, so a conversion that is
wrong the same way everywhere passes them. Here the expected rate, amounts, ledger entries on both
sides and limit usage come from README.md's "FX and limits" and docs/architecture.md (R5), applied
with `decimal` in this file: rates are CNY per HKD; the customer rate is the mid less the spread,
each fixed to six places half to even; the link pays out `floor(amount * rate)` and collects
`ceil(amount / rate)`, to the cent; limits count the amount in the limit's currency (northbound HKD,
southbound CNY), a northbound CNY debit at the mid rate. Rates unlike the defaults make a mistake in
any step show.

Everything is read through the API, the FPS ledger's transfer rows and mock_ibps's own HTTP API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
from gateway_stack import Stack
from gw_support import IBPS_TOKEN, Bank, Harness
from sqlalchemy import select

from fpslink.ledger.models import ledger_transfers

MID = Decimal("0.913579")
"""CNY per 1 HKD: not the default, and with six places of its own."""
SPREAD_BPS = Decimal("37")
CENT = Decimal("0.01")
MILLIONTH = Decimal("0.000001")

pytestmark = pytest.mark.settings(
    fx_mid_hkd_cny=MID, fx_spread_bps=SPREAD_BPS, southbound_hours="00:00-24:00"
)


def six_places(rate: Decimal) -> Decimal:
    return rate.quantize(MILLIONTH, rounding=ROUND_HALF_EVEN)


def mid_rate(source: str, target: str) -> Decimal:
    if source == target:
        return Decimal(1)
    return six_places(MID) if (source, target) == ("HKD", "CNY") else six_places(1 / MID)


def customer_rate(source: str, target: str) -> Decimal:
    if source == target:
        return Decimal(1)
    return six_places(mid_rate(source, target) * (1 - SPREAD_BPS / 10_000))


@dataclass(frozen=True)
class Expected:
    source: Decimal
    target: Decimal
    rate: Decimal
    mid: Decimal
    limit_usage: Decimal
    limit_currency: str


def expected(*, source: str, target: str, amount: str, fixed: str, direction: str) -> Expected:
    rate, value = customer_rate(source, target), Decimal(amount)
    if fixed == source:  # SEND: the payee gets what the payer's amount buys, rounded down
        sent, received = value, (value * rate).quantize(CENT, rounding=ROUND_FLOOR)
    else:  # RECEIVE: the payer covers the payee's amount, rounded up
        sent, received = (value / rate).quantize(CENT, rounding=ROUND_CEILING), value
    limit_currency = "HKD" if direction == "NORTHBOUND" else "CNY"
    if source == limit_currency:
        usage = sent
    elif target == limit_currency:
        usage = received
    else:  # a northbound CNY debit counts at the mid rate, collected, so rounded up
        usage = (sent * mid_rate(source, limit_currency)).quantize(CENT, rounding=ROUND_CEILING)
    return Expected(sent, received, rate, mid_rate(source, target), usage, limit_currency)


def minor(amount: Decimal) -> int:
    return int(amount.scaleb(2))


def test_the_independent_rates_are_what_the_readme_gives_at_the_defaults() -> None:
    """The same arithmetic at the default 0.92 and 25 bps gives README.md's worked examples."""
    assert six_places(Decimal("0.92") * (1 - Decimal(25) / 10_000)) == Decimal("0.917700")
    assert (Decimal("1000.00") * Decimal("0.917700")).quantize(CENT, rounding=ROUND_FLOOR) == Decimal(
        "917.70"
    )
    assert (Decimal("1000.00") / Decimal("0.917700")).quantize(CENT, rounding=ROUND_CEILING) == Decimal(
        "1089.69"
    )
    # and at this module's rates, figures worked out by hand
    assert customer_rate("HKD", "CNY") == Decimal("0.910199")  # 0.913579 * 0.9963 = 0.91019875...
    assert mid_rate("CNY", "HKD") == Decimal("1.094596")  # 1 / 0.913579 = 1.09459569...
    assert customer_rate("CNY", "HKD") == Decimal("1.090546")  # 1.094596 * 0.9963 = 1.09054599...


@pytest.fixture
async def ibps(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """mock_ibps's own API, as IBPS's operator reads it."""
    async with httpx.AsyncClient(
        base_url=f"{stack.ibps_url}/ibps/v1", headers={"Authorization": f"Bearer {IBPS_TOKEN}"}
    ) as client:
        yield client


@dataclass(frozen=True)
class Kind:
    name: str
    direction: str
    debtor_system: str
    debtor_currency: str
    creditor_currency: str
    amount: str
    fixed: str
    """The currency of `amount`: the debtor's fixes what is sent (SEND), the creditor's what is got."""


KINDS = [
    Kind("northbound-send", "NORTHBOUND", "FPS", "HKD", "CNY", "1234.57", "HKD"),
    Kind("northbound-receive", "NORTHBOUND", "FPS", "HKD", "CNY", "777.77", "CNY"),
    Kind("northbound-cny-account", "NORTHBOUND", "FPS", "CNY", "CNY", "333.33", "CNY"),
    Kind("southbound-send", "SOUTHBOUND", "IBPS", "CNY", "HKD", "999.99", "CNY"),
    Kind("southbound-receive", "SOUTHBOUND", "IBPS", "CNY", "HKD", "2468.13", "HKD"),
]


async def _limits_used(h: Harness, bank: Bank, account_id: str) -> dict[str, tuple[str, str]]:
    response = await h.http.get(f"/v1/accounts/{account_id}/limits", headers=bank.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {line["period"]: (body["currency"], line["used"]) for line in body["usage"]}


async def _fps_entry(h: Harness, payment_id: str) -> dict[str, Any]:
    async with h.gw.engine.connect() as conn:
        rows = (
            (await conn.execute(select(ledger_transfers).where(ledger_transfers.c.payment_id == payment_id)))
            .mappings()
            .all()
        )
    assert len(rows) == 1, rows
    return dict(rows[0])


@pytest.mark.parametrize("quoted", [False, True], ids=["no-quote", "quote"])
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
async def test_settled_amounts_ledgers_and_limits_match_the_documented_rules(
    harness: Harness, ibps: httpx.AsyncClient, kind: Kind, quoted: bool
) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor_bank, creditor_bank = (hk, cn) if kind.debtor_system == "FPS" else (cn, hk)
    debtor = await h.account(debtor_bank, kind.debtor_currency, "20000.00")
    creditor = await h.account(creditor_bank, kind.creditor_currency, "100.00")
    source, target = kind.debtor_currency, kind.creditor_currency
    want = expected(
        source=source, target=target, amount=kind.amount, fixed=kind.fixed, direction=kind.direction
    )
    assert want.source != Decimal(kind.amount) or want.target != Decimal(kind.amount) or source == target

    extra: dict[str, Any] = {}
    if quoted:
        quote = await h.http.post(
            "/v1/quotes",
            json={
                "source_currency": source,
                "target_currency": target,
                "amount": kind.amount,
                "amount_type": "SEND" if kind.fixed == source else "RECEIVE",
            },
            headers=debtor_bank.headers,
        )
        assert quote.status_code == 201, quote.text
        q = quote.json()
        assert (Decimal(q["source_amount"]), Decimal(q["target_amount"])) == (want.source, want.target)
        assert (Decimal(q["rate"]), Decimal(q["mid_rate"])) == (want.rate, want.mid)
        extra["quote_id"] = q["quote_id"]

    response = await h.pay(
        debtor_bank,
        debtor=debtor,
        creditor_account=creditor,
        amount=kind.amount,
        currency=kind.fixed,
        **extra,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["direction"]) == ("SETTLED", kind.direction), body
    payment_id = body["payment_id"]
    assert body["source_amount"] == f"{want.source:.2f}" and body["source_currency"] == source
    assert body["target_amount"] == f"{want.target:.2f}" and body["target_currency"] == target
    assert Decimal(body["rate"]) == want.rate and Decimal(body["mid_rate"]) == want.mid
    assert body["quote_id"] == extra.get("quote_id")

    # balances on both sides: the debtor paid exactly the source, the creditor got exactly the target
    assert await h.balance(debtor) == (f"{Decimal('20000.00') - want.source:.2f}", "0.00")
    assert await h.balance(creditor) == (f"{Decimal('100.00') + want.target:.2f}", "0.00")

    # each ledger's entry for the payment: which accounts, which currency, how much, posted
    fps = await _fps_entry(h, payment_id)
    found = await ibps.get(f"/transfers/{payment_id}")
    assert found.status_code == 200, found.text
    at_ibps = found.json()
    if kind.direction == "NORTHBOUND":
        fps_want = ("DEBIT", debtor, f"FPS-LINK-{source}", source, minor(want.source))
        ibps_want = ("CREDIT", "IBPS-LINK-CNY", creditor, "CNY", f"{want.target:.2f}")
    else:
        fps_want = ("CREDIT", f"FPS-LINK-{target}", creditor, target, minor(want.target))
        ibps_want = ("DEBIT", debtor, "IBPS-LINK-CNY", "CNY", f"{want.source:.2f}")
    assert (
        fps["kind"],
        fps["debit_account_id"],
        fps["credit_account_id"],
        fps["currency"],
        fps["amount_minor"],
    ) == fps_want
    assert fps["status"] == "POSTED"
    assert (
        at_ibps["kind"],
        at_ibps["debit_account_id"],
        at_ibps["credit_account_id"],
        at_ibps["currency"],
        at_ibps["amount"],
    ) == ibps_want
    assert at_ibps["status"] == "POSTED"

    # the limits: the day's and the year's usage of this debtor and direction, in the limit's currency
    used = await _limits_used(h, debtor_bank, debtor)
    assert used == {
        "DAY": (want.limit_currency, f"{want.limit_usage:.2f}"),
        "YEAR": (want.limit_currency, f"{want.limit_usage:.2f}"),
    }


async def test_a_rejected_payment_moves_nothing_and_releases_its_limits(
    harness: Harness, ibps: httpx.AsyncClient
) -> None:
    """IBPS refuses the sandbox's magic amount (404.04 CNY, RR04) after the FPS side was held."""
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "20000.00")
    creditor = await h.account(cn, "CNY", "100.00")

    response = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="404.04", currency="CNY")

    body = response.json()
    assert (body["status"], body["reason_code"]) == ("REJECTED", "RR04"), body
    want = expected(source="HKD", target="CNY", amount="404.04", fixed="CNY", direction="NORTHBOUND")
    assert (body["source_amount"], body["target_amount"]) == (None, None), "nothing moved"
    assert (body["quoted_source_amount"], body["quoted_target_amount"]) == (f"{want.source:.2f}", "404.04")
    assert await h.balance(debtor) == ("20000.00", "0.00")
    assert await h.balance(creditor) == ("100.00", "0.00")
    fps = await _fps_entry(h, body["payment_id"])
    assert (fps["amount_minor"], fps["status"]) == (minor(want.source), "VOIDED")
    assert await _limits_used(h, hk, debtor) == {"DAY": ("HKD", "0.00"), "YEAR": ("HKD", "0.00")}
