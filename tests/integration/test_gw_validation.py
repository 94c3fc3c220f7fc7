"""Malformed values in every request field: 4xx problem+json, never a 500, never a partial payment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gw_support import Harness

BAD_AMOUNTS: list[Any] = [
    "-1.00",
    "0",
    "0.00",
    "1.001",
    "abc",
    "",
    "NaN",
    "Infinity",
    "1e400",
    100.5,
    None,
    "1000000000000.01",
    [],
    {"v": 1},
    True,
]


def _problem_4xx(response: Any) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["code"], str) and body["code"]
    return body


@pytest.fixture
async def world(harness: Harness) -> dict[str, Any]:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "1000.00")
    creditor = await h.account(cn, "CNY", "0.00")
    proxy = await h.proxy(cn, creditor)
    return {"hk": hk, "cn": cn, "debtor": debtor, "creditor": creditor, "proxy": proxy}


def _payment_cases(w: dict[str, Any]) -> list[dict[str, Any]]:
    good = {
        "debtor_account_id": w["debtor"],
        "creditor": {"proxy_type": "MOBILE", "proxy_value": w["proxy"]},
        "amount": "10.00",
        "currency": "HKD",
        "purpose": "GIFT",
    }
    cases: list[dict[str, Any]] = [{**good, "amount": a} for a in BAD_AMOUNTS]
    cases += [{**good, "currency": c} for c in ("USD", "hkd", "", None, 1)]
    cases += [{**good, "debtor_account_id": d} for d in ("", "x" * 41, "bad id!", None, 5)]
    cases += [
        {**good, "creditor": c}
        for c in (
            {},
            None,
            "x",
            {"proxy_type": "MOBILE"},
            {"proxy_value": w["proxy"]},
            {"proxy_type": "EMAIL", "proxy_value": "a@b.c"},
            {"proxy_type": "MOBILE", "proxy_value": "12"},
            {"proxy_type": "MOBILE", "proxy_value": "+14155552671"},
            {"proxy_type": "MOBILE", "proxy_value": "x" * 41},
            {"proxy_type": "MOBILE", "proxy_value": w["proxy"], "account_id": w["creditor"]},
            {"account_id": w["creditor"], "extra": 1},
        )
    ]
    cases += [{**good, "quote_id": q} for q in ("not-a-uuid", 12, "")]
    cases += [{**good, "purpose": p} for p in ("", None, "x" * 36, "GIFTS", "fami", "TUITION", "FAMI")]
    cases += [
        {**good, "remittance_info": "x" * 141},
        {**good, "end_to_end_id": "x" * 36},
        {**good, "end_to_end_id": "has space"},
        {**good, "unexpected": "field"},
    ]
    cases += [{k: v for k, v in good.items() if k != missing} for missing in good]
    return cases


async def test_malformed_payments_create_nothing(harness: Harness, world: dict[str, Any]) -> None:
    h = harness
    before = await h.payment_count()
    for case in _payment_cases(world):
        response = await h.http.post(
            "/v1/payments", json=case, headers={**world["hk"].headers, "Idempotency-Key": str(uuid.uuid4())}
        )
        _problem_4xx(response)
    for raw in (b"{", b"[]", b"null", b"\xff\xfe", b""):
        response = await h.http.post(
            "/v1/payments",
            content=raw,
            headers={
                **world["hk"].headers,
                "Idempotency-Key": str(uuid.uuid4()),
                "Content-Type": "application/json",
            },
        )
        _problem_4xx(response)
    assert await h.payment_count() == before
    assert await h.balance(world["debtor"]) == ("1000.00", "0.00")


async def test_malformed_quotes_accounts_proxies_participants(
    harness: Harness, world: dict[str, Any]
) -> None:
    h = harness
    hk = world["hk"]
    quote = {"source_currency": "HKD", "target_currency": "CNY", "amount": "1.00", "amount_type": "SEND"}
    for case in [{**quote, "amount": a} for a in BAD_AMOUNTS] + [
        {**quote, "amount_type": "BOTH"},
        {**quote, "source_currency": "EUR"},
        {**quote, "amount": "0.01"},
    ]:
        body = _problem_4xx(await h.http.post("/v1/quotes", json=case, headers=hk.headers))
        assert body["code"] in {"VALIDATION_ERROR", "AMOUNT_TOO_SMALL"}
    account = {
        "participant_id": hk.participant_id,
        "holder_name": "A B",
        "currency": "HKD",
        "opening_balance": "1",
    }
    for case in [{**account, "opening_balance": a} for a in ("-1", "1.001", "x", 5)] + [
        {**account, "holder_name": ""},
        {**account, "holder_name": "x" * 141},
        {**account, "currency": "USD"},
        {**account, "participant_id": "NOSUCHBANK"},
        {**account, "participant_id": world["cn"].participant_id},
    ]:
        _problem_4xx(await h.http.post("/v1/accounts", json=case, headers=h.operator))
    proxy = {"proxy_type": "MOBILE", "proxy_value": "+85296123456", "account_id": world["debtor"]}
    for case in [
        {**proxy, "proxy_value": "+8613800138000"},  # a mainland number for an FPS account
        {**proxy, "proxy_value": "21234567"},  # a landline
        {**proxy, "proxy_type": "EMAIL"},
        {**proxy, "account_id": "HKNOSUCH"},
        {**proxy, "proxy_value": ""},
    ]:
        _problem_4xx(await h.http.post("/v1/proxies", json=case, headers=hk.headers))
    for case in [
        {"participant_id": "lower", "name": "x", "system": "FPS"},
        {"participant_id": "OK1", "name": "", "system": "FPS"},
        {"participant_id": "OK2", "name": "x", "system": "SWIFT"},
    ]:
        _problem_4xx(await h.http.post("/v1/participants", json=case, headers=h.operator))
    for path in (
        "/v1/proxies/MOBILE/12",
        "/v1/proxies/EMAIL/a@b.c",
        "/v1/proxies/MOBILE/91234567",
        "/v1/payments/not-a-payment",
        "/v1/nothing-here",
    ):
        _problem_4xx(await h.http.get(path, headers=hk.headers))
    _problem_4xx(await h.http.delete("/v1/payments", headers=hk.headers))


async def test_proxy_registration_and_lookup(harness: Harness, world: dict[str, Any]) -> None:
    h = harness
    hk, cn = world["hk"], world["cn"]
    unguessed = await h.http.post(
        "/v1/proxies",
        json={"proxy_type": "MOBILE", "proxy_value": "9612 3456", "account_id": world["debtor"]},
        headers=hk.headers,
    )
    assert unguessed.status_code == 422 and unguessed.json()["code"] == "INVALID_PROXY"
    assert "+852 9123 4567" in unguessed.json()["detail"]
    registered = await h.http.post(
        "/v1/proxies",
        json={"proxy_type": "MOBILE", "proxy_value": "+852 9612 3456", "account_id": world["debtor"]},
        headers=hk.headers,
    )
    if registered.status_code == 409:  # the number is shared by every test run on this database
        assert registered.json()["code"] == "PROXY_ALREADY_REGISTERED"
    else:
        assert registered.status_code == 201, registered.text
        assert registered.json()["proxy_value"] == "+85296123456"
    again = await h.http.post(
        "/v1/proxies",
        json={"proxy_type": "MOBILE", "proxy_value": "+852-9612-3456", "account_id": world["debtor"]},
        headers=hk.headers,
    )
    assert again.json()["code"] == "PROXY_ALREADY_REGISTERED"
    number = world["proxy"]
    spaced = f"{number[:3]} {number[3:6]} {number[6:10]} {number[10:]}"  # +86 138 0013 8000
    for written in (number, number.replace("+", "%2B"), "00" + number[1:], spaced, spaced.replace(" ", "-")):
        found = await h.http.get(f"/v1/proxies/MOBILE/{written}", headers=hk.headers)
        assert found.status_code == 200, found.text
        assert found.json() == {
            "proxy_type": "MOBILE",
            "proxy_value": number,
            "participant_id": cn.participant_id,
            "system": "IBPS",
            "masked_name": "张*明",
            "currency": "CNY",
        }
    dup = await h.http.post(
        "/v1/proxies",
        json={"proxy_type": "MOBILE", "proxy_value": number, "account_id": world["creditor"]},
        headers=cn.headers,
    )
    assert dup.status_code == 409 and dup.json()["code"] == "PROXY_ALREADY_REGISTERED"
    missing = await h.http.get("/v1/proxies/MOBILE/+8613900000001", headers=hk.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "BE23"


async def test_an_amount_sent_as_a_json_number_says_what_to_send(
    harness: Harness, world: dict[str, Any]
) -> None:
    h = harness
    for amount in (1000.5, 1000):
        response = await h.pay(
            world["hk"],
            debtor=world["debtor"],
            proxy=world["proxy"],
            amount=amount,
            currency="HKD",
        )
        body = _problem_4xx(response)
        assert (response.status_code, body["code"]) == (422, "VALIDATION_ERROR")
        assert body["detail"] == 'amount: send amounts as decimal strings such as "1000.00", not JSON numbers'


async def test_a_body_that_is_not_json_says_so_and_where(harness: Harness, world: dict[str, Any]) -> None:
    h = harness
    response = await h.http.post(
        "/v1/payments",
        content=b'{"debtor_account_id": bad}',
        headers={**world["hk"].headers, "Idempotency-Key": "not-json-1", "Content-Type": "application/json"},
    )
    body = _problem_4xx(response)
    assert (response.status_code, body["code"]) == (422, "VALIDATION_ERROR")
    assert body["detail"] == "body: not valid JSON at character 22: Expecting value"
    assert body["errors"] == [{"field": "body", "message": "not valid JSON at character 22: Expecting value"}]


async def test_one_rule_for_numbers_on_every_endpoint(harness: Harness, world: dict[str, Any]) -> None:
    """A payment to a number without its country code is refused like its look-up, never sent to +86."""
    h = harness
    hk = world["hk"]
    local = world["proxy"][3:]  # 13800138000
    before = (await h.http.get("/v1/payments", headers=hk.headers)).json()["items"]
    lookup = await h.http.get(f"/v1/proxies/MOBILE/{local}", headers=hk.headers)
    payment = await h.http.post(
        "/v1/payments",
        json={
            "debtor_account_id": world["debtor"],
            "creditor": {"proxy_type": "MOBILE", "proxy_value": local},
            "amount": "10.00",
            "currency": "HKD",
            "purpose": "FAMILY_SUPPORT",
        },
        headers={**hk.headers, "Idempotency-Key": "no-country-code"},
    )
    for answer in (lookup, payment):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "INVALID_PROXY"
        assert "+86 138 0013 8000 or +852 9123 4567" in answer.json()["detail"]
    after = (await h.http.get("/v1/payments", headers=hk.headers)).json()["items"]
    assert after == before, "nothing was accepted"


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("10.005", "decimal places"),
        ("0.00", "greater than zero"),
        ("-5.00", "greater than zero"),
        ("ten", "not a decimal"),
    ],
)
async def test_amount_errors_are_on_amount_in_plain_words(
    harness: Harness, world: dict[str, Any], amount: str, says: str
) -> None:
    """Checked against the currency's minor units, yet reported on `amount`, not on the body."""
    h = harness
    paid = await h.pay(
        world["hk"], debtor=world["debtor"], proxy=world["proxy"], amount=amount, currency="HKD"
    )
    quoted = await h.http.post(
        "/v1/quotes",
        json={"source_currency": "HKD", "target_currency": "CNY", "amount": amount, "amount_type": "SEND"},
        headers=world["hk"].headers,
    )
    for response in (paid, quoted):
        body = _problem_4xx(response)
        assert body["code"] == "VALIDATION_ERROR"
        assert [e["field"] for e in body["errors"]] == ["amount"], body
        message = body["errors"][0]["message"]
        assert says in message.lower() and "Value error" not in message, message
        assert body["detail"] == f"amount: {message}"


async def test_an_opening_balance_error_names_opening_balance(harness: Harness) -> None:
    h = harness
    hk = await h.bank("FPS")
    response = await h.http.post(
        "/v1/accounts",
        json={
            "participant_id": hk.participant_id,
            "holder_name": "CHAN Tai Man",
            "currency": "HKD",
            "opening_balance": "1.234",
        },
        headers=h.operator,
    )
    body = _problem_4xx(response)
    assert [e["field"] for e in body["errors"]] == ["opening_balance"], body


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b"debtor_account_id=HK1&amount=10.00", "application/x-www-form-urlencoded", "send the body as JSON"),
        (b'{"amount": "10.00"}', "text/plain", "send the body as JSON"),
        (b'[{"amount": "10.00"}]', "application/json", "the body must be a JSON object"),
        (b'"a string"', "application/json", "the body must be a JSON object"),
    ],
)
async def test_a_body_that_is_not_a_json_object_says_what_to_send(
    harness: Harness, world: dict[str, Any], content: bytes, content_type: str, message: str
) -> None:
    h = harness
    response = await h.http.post(
        "/v1/payments",
        content=content,
        headers={**world["hk"].headers, "Idempotency-Key": "not-an-object", "Content-Type": content_type},
    )
    body = _problem_4xx(response)
    assert (response.status_code, body["code"]) == (422, "VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "body" and body["errors"][0]["message"].startswith(message), body
    if "JSON," in message or "as JSON" in message:
        assert "Content-Type: application/json" in body["detail"]
