"""Malformed input answers 4xx problem+json and never reaches the ledger, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ibps_support import Bank, assert_problem, new_id, new_payment_id


def prepare_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": new_payment_id(),
        "kind": "DEBIT",
        "account_id": new_id(),
        "amount": "1.00",
        "currency": "CNY",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


BAD_PREPARES: list[tuple[str, dict[str, Any], str]] = [
    ("three decimals", prepare_body(amount="1.001"), "VALIDATION_ERROR"),
    ("negative", prepare_body(amount="-1.00"), "VALIDATION_ERROR"),
    ("zero", prepare_body(amount="0.00"), "VALIDATION_ERROR"),
    ("nan", prepare_body(amount="NaN"), "VALIDATION_ERROR"),
    ("infinity", prepare_body(amount="Infinity"), "VALIDATION_ERROR"),
    ("exponent", prepare_body(amount="1e3"), "VALIDATION_ERROR"),
    ("too large", prepare_body(amount="1000000000000.01"), "VALIDATION_ERROR"),
    ("number not string", prepare_body(amount=1.5), "VALIDATION_ERROR"),
    ("null amount", prepare_body(amount=None), "VALIDATION_ERROR"),
    ("missing amount", prepare_body(amount=...), "VALIDATION_ERROR"),
    ("usd", prepare_body(currency="USD"), "CURRENCY_NOT_SUPPORTED"),
    ("lowercase cny", prepare_body(currency="cny"), "CURRENCY_NOT_SUPPORTED"),
    ("currency number", prepare_body(currency=156), "VALIDATION_ERROR"),
    ("bad kind", prepare_body(kind="OPENING"), "VALIDATION_ERROR"),
    ("bad payment id", prepare_body(payment_id="not-a-uuid"), "VALIDATION_ERROR"),
    ("payment id number", prepare_body(payment_id=12), "VALIDATION_ERROR"),
    ("bad account id", prepare_body(account_id="CN 01"), "VALIDATION_ERROR"),
    ("long account id", prepare_body(account_id="C" * 41), "VALIDATION_ERROR"),
    ("account id number", prepare_body(account_id=123), "VALIDATION_ERROR"),
    ("unknown field", prepare_body(extra="x"), "VALIDATION_ERROR"),
]


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in BAD_PREPARES], ids=[n for n, _, _ in BAD_PREPARES]
)
async def test_bad_prepare_bodies(client: httpx.AsyncClient, body: dict[str, Any], code: str) -> None:
    response = await client.post("/ibps/v1/transfers/prepare", json=body)
    problem = assert_problem(response, 422, code)
    assert problem["errors"]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b"null", b'"text"', '{"payment_id": "\u00e9"}'.encode()],
    ids=["empty", "truncated", "array", "null", "string", "unicode"],
)
async def test_unparseable_bodies(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/ibps/v1/transfers/prepare",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 422, "VALIDATION_ERROR")


async def test_bad_account_bodies(bank: Bank) -> None:
    good = bank.account_body(new_id(), "10.00", "张小明")
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "currency": "HKD"}, "CURRENCY_NOT_SUPPORTED"),
        ({**good, "opening_balance": "-5"}, "VALIDATION_ERROR"),
        ({**good, "opening_balance": "5.555"}, "VALIDATION_ERROR"),
        ({**good, "opening_balance": 5}, "VALIDATION_ERROR"),
        ({**good, "holder_name": ""}, "VALIDATION_ERROR"),
        ({**good, "holder_name": "   "}, "VALIDATION_ERROR"),
        ({**good, "holder_name": "张" * 141}, "VALIDATION_ERROR"),
        ({k: v for k, v in good.items() if k != "participant_id"}, "VALIDATION_ERROR"),
        ({**good, "account_id": "CN/01"}, "VALIDATION_ERROR"),
    ]
    for body, code in cases:
        assert_problem(await bank.http.post("/ibps/v1/accounts", json=body), 422, code)
    long_name = await bank.http.post("/ibps/v1/accounts", json={**good, "holder_name": "张" * 140})
    assert long_name.status_code == 201


async def test_bad_participant_and_proxy_bodies(client: httpx.AsyncClient) -> None:
    for body in ({"participant_id": "BK1"}, {"participant_id": "", "name": "x"}, {"name": "x"}):
        response = await client.post("/ibps/v1/participants", json=body)
        assert_problem(response, 422, "VALIDATION_ERROR")
    response = await client.post("/ibps/v1/proxies", json={"proxy_value": 8613800138000})
    assert_problem(response, 422, "VALIDATION_ERROR")


async def test_bad_paths_and_queries(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("POST", "/ibps/v1/transfers/not-a-uuid/commit"),
        ("POST", "/ibps/v1/transfers/not-a-uuid/abort"),
        ("GET", "/ibps/v1/transfers/not-a-uuid"),
        ("GET", "/ibps/v1/transfers?limit=0"),
        ("GET", "/ibps/v1/transfers?limit=1001"),
        ("GET", "/ibps/v1/transfers?after=-1"),
        ("GET", "/ibps/v1/transfers?after=x"),
    ):
        assert_problem(await client.request(method, path), 422, "VALIDATION_ERROR")
    assert_problem(await client.get("/ibps/v1/nowhere"), 404, "NOT_FOUND")
    assert_problem(await client.delete("/ibps/v1/accounts/CN1"), 405, "METHOD_NOT_ALLOWED")
