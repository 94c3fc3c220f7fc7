"""Every business rejection answers 201 REJECTED with its code and leaves no trace on the ledgers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gw_support import Harness, cn_mobile, hk_mobile


async def _setup(h: Harness, hk_opening: str = "50000.00", cn_opening: str = "50000.00") -> dict[str, str]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    ids = {
        "hk_acc": await h.account(hk, "HKD", hk_opening),
        "cn_acc": await h.account(cn, "CNY", cn_opening),
    }
    h.__dict__["banks"] = (hk, cn)
    return ids


def _rejected(response_json: dict[str, object], code: str) -> None:
    assert response_json["status"] == "REJECTED", response_json
    assert response_json["reason_code"] == code, response_json
    assert response_json["reason"]
    assert response_json["settled_at"] is None
    # nothing was debited or credited: amounts bound before the refusal are named as quoted only
    assert response_json["source_amount"] is None and response_json["target_amount"] is None


async def _limits_used(h: Harness, account: str, headers: dict[str, str]) -> list[str]:
    body = (await h.http.get(f"/v1/accounts/{account}/limits", headers=headers)).json()
    return [line["used"] for line in body["usage"]]


async def test_unknown_proxy_is_be23(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]
    for number in (cn_mobile(), hk_mobile()):
        response = await h.pay(hk, debtor=ids["hk_acc"], proxy=number, amount="10.00", currency="HKD")
        assert response.status_code == 201
        _rejected(response.json(), "BE23")
    assert await h.balance(ids["hk_acc"]) == ("50000.00", "0.00")


async def test_unknown_creditor_account_is_ac01(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]
    response = await h.pay(
        hk, debtor=ids["hk_acc"], creditor_account="CN0000NOSUCH", amount="10.00", currency="HKD"
    )
    _rejected(response.json(), "AC01")


async def test_same_system_creditor_is_not_cross_border(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]
    other = await h.bank("FPS")
    other_acc = await h.account(other, "HKD", "0.00")
    proxy = await h.proxy(other, other_acc)
    response = await h.pay(hk, debtor=ids["hk_acc"], proxy=proxy, amount="10.00", currency="HKD")
    _rejected(response.json(), "NOT_CROSS_BORDER")
    assert await h.balance(other_acc) == ("0.00", "0.00")


async def test_insufficient_funds_northbound_is_am04_at_fps(harness: Harness) -> None:
    h = harness
    ids = await _setup(h, hk_opening="99.99")
    hk, _ = h.__dict__["banks"]
    response = await h.pay(
        hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount="100.00", currency="HKD"
    )
    _rejected(response.json(), "AM04")
    assert await h.balance(ids["hk_acc"]) == ("99.99", "0.00")
    assert await _limits_used(h, ids["hk_acc"], hk.headers) == ["0.00", "0.00"]


async def test_a_rejected_payment_names_its_amounts_as_quoted_and_its_rate_has_six_places(
    harness: Harness,
) -> None:
    h = harness
    ids = await _setup(h, hk_opening="99.99")
    hk, _ = h.__dict__["banks"]
    refused = (
        await h.pay(hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount="100.00", currency="HKD")
    ).json()
    _rejected(refused, "AM04")
    assert (refused["quoted_source_amount"], refused["quoted_target_amount"]) == ("100.00", "91.77")
    assert refused["rate"] == "0.917700"
    fetched = (await h.http.get(f"/v1/payments/{refused['payment_id']}", headers=hk.headers)).json()
    assert fetched["source_amount"] is None and fetched["quoted_target_amount"] == "91.77"
    paid = (
        await h.pay(hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount="10.00", currency="HKD")
    ).json()
    assert paid["status"] == "SETTLED"
    assert (paid["source_amount"], paid["target_amount"]) == ("10.00", "9.17")
    assert (paid["quoted_source_amount"], paid["quoted_target_amount"]) == ("10.00", "9.17")


async def test_insufficient_funds_southbound_is_refused_by_ibps(harness: Harness) -> None:
    h = harness
    ids = await _setup(h, cn_opening="50.00")
    _, cn = h.__dict__["banks"]
    response = await h.pay(
        cn, debtor=ids["cn_acc"], creditor_account=ids["hk_acc"], amount="50.01", currency="CNY"
    )
    body = response.json()
    _rejected(body, "AM04")
    assert "REFUSED_AT_IBPS" in [e["event"] for e in body["events"]]
    assert await h.balance(ids["cn_acc"]) == ("50.00", "0.00")
    assert await h.balance(ids["hk_acc"]) == ("50000.00", "0.00")
    assert await _limits_used(h, ids["cn_acc"], cn.headers) == ["0.00", "0.00"]


async def test_per_transaction_limit_is_am02(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, cn = h.__dict__["banks"]
    north = await h.pay(
        hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount="10000.01", currency="HKD"
    )
    _rejected(north.json(), "AM02")
    south = await h.pay(
        cn, debtor=ids["cn_acc"], creditor_account=ids["hk_acc"], amount="10000.01", currency="CNY"
    )
    _rejected(south.json(), "AM02")
    exactly = await h.pay(
        hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount="10000.00", currency="HKD"
    )
    assert exactly.json()["status"] == "SETTLED"


@pytest.mark.settings(northbound_daily_hkd="3000.00", northbound_yearly_hkd="4000.00")
async def test_daily_and_yearly_limits_are_am14_and_released_on_rejection(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]
    pay = lambda amount: h.pay(  # noqa: E731
        hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount=amount, currency="HKD"
    )
    assert (await pay("2000.00")).json()["status"] == "SETTLED"
    _rejected((await pay("1000.01")).json(), "AM14")
    assert (await pay("1000.00")).json()["status"] == "SETTLED"
    assert await _limits_used(h, ids["hk_acc"], hk.headers) == ["3000.00", "3000.00"]
    h.clock.advance(24 * 3600)  # next business day: the daily limit is fresh, the yearly is not
    _rejected((await pay("1000.01")).json(), "AM14")
    assert (await pay("1000.00")).json()["status"] == "SETTLED"
    limits = (await h.http.get(f"/v1/accounts/{ids['hk_acc']}/limits", headers=hk.headers)).json()
    assert limits["currency"] == "HKD" and limits["direction"] == "NORTHBOUND"
    assert [(u["period"], u["limit"], u["used"], u["remaining"]) for u in limits["usage"]] == [
        ("DAY", "3000.00", "1000.00", "2000.00"),
        ("YEAR", "4000.00", "4000.00", "0.00"),
    ]


async def test_a_refused_payment_releases_its_limit_usage(harness: Harness) -> None:
    h = harness
    ids = await _setup(h, cn_opening="100.00")
    _, cn = h.__dict__["banks"]
    refused = await h.pay(
        cn, debtor=ids["cn_acc"], creditor_account=ids["hk_acc"], amount="500.00", currency="CNY"
    )
    _rejected(refused.json(), "AM04")
    assert await _limits_used(h, ids["cn_acc"], cn.headers) == ["0.00", "0.00"]


async def test_southbound_outside_service_hours(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    _, cn = h.__dict__["banks"]
    h.clock.now = datetime(2026, 6, 22, 15, 30, tzinfo=UTC)  # 23:30 in Hong Kong
    response = await h.pay(
        cn, debtor=ids["cn_acc"], creditor_account=ids["hk_acc"], amount="10.00", currency="CNY"
    )
    _rejected(response.json(), "OUTSIDE_SERVICE_HOURS")
    h.clock.now = datetime(2026, 6, 21, 23, 0, tzinfo=UTC)  # 07:00 in Hong Kong: open
    ok = await h.pay(cn, debtor=ids["cn_acc"], creditor_account=ids["hk_acc"], amount="10.00", currency="CNY")
    assert ok.json()["status"] == "SETTLED"


@pytest.mark.settings(southbound_hours="00:00-24:00")
async def test_service_hours_can_be_widened_to_24h(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    _, cn = h.__dict__["banks"]
    h.clock.now = datetime(2026, 6, 22, 19, 0, tzinfo=UTC)  # 03:00 in Hong Kong
    ok = await h.pay(cn, debtor=ids["cn_acc"], creditor_account=ids["hk_acc"], amount="10.00", currency="CNY")
    assert ok.json()["status"] == "SETTLED"


async def test_northbound_runs_at_night(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]
    h.clock.now = datetime(2026, 6, 22, 19, 0, tzinfo=UTC)  # 03:00 in Hong Kong
    ok = await h.pay(hk, debtor=ids["hk_acc"], creditor_account=ids["cn_acc"], amount="10.00", currency="HKD")
    assert ok.json()["status"] == "SETTLED"


async def test_quotes_expire_are_single_use_and_must_match(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]

    async def quote(amount: str = "100.00", amount_type: str = "SEND") -> str:
        response = await h.http.post(
            "/v1/quotes",
            json={
                "source_currency": "HKD",
                "target_currency": "CNY",
                "amount": amount,
                "amount_type": amount_type,
            },
            headers=hk.headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["quote_id"])

    async def pay(quote_id: str, amount: str = "100.00", currency: str = "HKD") -> dict[str, object]:
        response = await h.pay(
            hk,
            debtor=ids["hk_acc"],
            creditor_account=ids["cn_acc"],
            amount=amount,
            currency=currency,
            quote_id=quote_id,
        )
        assert response.status_code == 201, response.text
        body: dict[str, object] = response.json()
        return body

    used = await quote()
    first = await pay(used)
    assert first["status"] == "SETTLED" and first["quote_id"] == used
    assert first["target_amount"] == "91.77"
    _rejected(await pay(used), "QUOTE_USED")
    _rejected(await pay(await quote(), amount="100.01"), "QUOTE_MISMATCH")
    _rejected(
        await pay(await quote(amount="91.77", amount_type="RECEIVE"), amount="100.00"), "QUOTE_MISMATCH"
    )
    expiring = await quote()
    h.clock.advance(601)
    _rejected(await pay(expiring), "QUOTE_EXPIRED")
    fresh = await quote()
    h.clock.advance(599)
    assert (await pay(fresh))["status"] == "SETTLED"


async def test_a_quote_locks_its_rate_against_later_rate_changes(harness: Harness) -> None:
    h = harness
    ids = await _setup(h)
    hk, _ = h.__dict__["banks"]
    quote = (
        await h.http.post(
            "/v1/quotes",
            json={
                "source_currency": "HKD",
                "target_currency": "CNY",
                "amount": "100.00",
                "amount_type": "SEND",
            },
            headers=hk.headers,
        )
    ).json()
    h.gw.settings.fx_mid_hkd_cny = h.gw.settings.fx_mid_hkd_cny * 2
    body = (
        await h.pay(
            hk,
            debtor=ids["hk_acc"],
            creditor_account=ids["cn_acc"],
            amount="100.00",
            currency="HKD",
            quote_id=quote["quote_id"],
        )
    ).json()
    assert body["rate"] == quote["rate"] == "0.917700"
    assert body["target_amount"] == quote["target_amount"] == "91.77"


async def test_currency_neither_side_holds_is_422(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "CNY", "100.00")
    creditor = await h.account(cn, "CNY", "0.00")
    response = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD")
    assert response.status_code == 422
    assert response.json()["code"] == "CURRENCY_MISMATCH"
