"""Mobile-number proxies: register once, resolve with '+' raw or escaped."""

from __future__ import annotations

import random

from ibps_support import Bank, assert_problem, new_id


def new_mobile() -> str:
    return "+861" + "".join(random.choices("0123456789", k=10))


async def test_register_and_resolve(bank: Bank) -> None:
    account_id = await bank.open_account(holder="张小明")
    mobile = new_mobile()
    response = await bank.http.post(
        "/ibps/v1/proxies", json={"proxy_value": mobile, "account_id": account_id}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "proxy_type": "MOBILE",
        "proxy_value": mobile,
        "account_id": account_id,
        "participant_id": bank.participant_id,
    }
    expected = {
        "proxy_type": "MOBILE",
        "proxy_value": mobile,
        "account_id": account_id,
        "participant_id": bank.participant_id,
        "holder_name": "张小明",
        "currency": "CNY",
    }
    for path in (mobile, mobile.replace("+", "%2B")):
        resolved = await bank.http.get(f"/ibps/v1/proxies/{path}")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json() == expected


async def test_second_registration_conflicts(bank: Bank) -> None:
    first, second = await bank.open_account(), await bank.open_account()
    mobile = new_mobile()
    body = {"proxy_value": mobile, "account_id": first}
    assert (await bank.http.post("/ibps/v1/proxies", json=body)).status_code == 201
    for account_id in (first, second):
        response = await bank.http.post(
            "/ibps/v1/proxies", json={"proxy_value": mobile, "account_id": account_id}
        )
        assert_problem(response, 409, "PROXY_ALREADY_REGISTERED")


async def test_unknown_proxy_and_unknown_account(bank: Bank) -> None:
    mobile = new_mobile()
    assert_problem(await bank.http.get(f"/ibps/v1/proxies/{mobile}"), 404, "BE23")
    assert_problem(await bank.http.get(f"/ibps/v1/proxies/{mobile.replace('+', '%2B')}"), 404, "BE23")
    response = await bank.http.post("/ibps/v1/proxies", json={"proxy_value": mobile, "account_id": new_id()})
    assert_problem(response, 404, "ACCOUNT_NOT_FOUND")


async def test_malformed_proxy_values(bank: Bank) -> None:
    account_id = await bank.open_account()
    for value in (
        "13800138000",
        "+85291234567",
        "+86138001380001",
        "+86 13800138000",
        "+861380013800a",
    ):
        response = await bank.http.post(
            "/ibps/v1/proxies", json={"proxy_value": value, "account_id": account_id}
        )
        assert_problem(response, 422, "INVALID_PROXY")
    assert_problem(await bank.http.get("/ibps/v1/proxies/12345"), 422, "INVALID_PROXY")
