"""Participants and accounts: creation, idempotent replays, conflicts, balances."""

from __future__ import annotations

import httpx
from ibps_support import Bank, assert_problem, new_id


async def test_healthz_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_wrong_or_missing_token_is_401(client: httpx.AsyncClient) -> None:
    for headers in (
        {"Authorization": "Bearer nope"},
        {"Authorization": ""},
        {"Authorization": "x"},
    ):
        response = await client.get("/ibps/v1/ledger/check", headers=headers)
        assert_problem(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_participant_replay_and_conflict(client: httpx.AsyncClient) -> None:
    body = {"participant_id": new_id("BK"), "name": "中国工商银行"}
    first = await client.post("/ibps/v1/participants", json=body)
    assert first.status_code == 201
    assert first.json() == body
    again = await client.post("/ibps/v1/participants", json=body)
    assert again.status_code == 200
    assert again.json() == body
    other = await client.post("/ibps/v1/participants", json={**body, "name": "Other"})
    assert_problem(other, 409, "PARTICIPANT_EXISTS")


async def test_open_account_books_opening_balance(bank: Bank) -> None:
    account_id = new_id()
    body = bank.account_body(account_id, "1000.5", "张小明")
    response = await bank.http.post("/ibps/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "account_id": account_id,
        "participant_id": bank.participant_id,
        "holder_name": "张小明",
        "currency": "CNY",
        "balance": "1000.50",
        "held": "0.00",
        "available_balance": "1000.50",
    }
    assert await bank.balances(account_id) == ("1000.50", "0.00", "1000.50")


async def test_open_account_replay_and_conflict(bank: Bank) -> None:
    account_id = new_id()
    body = bank.account_body(account_id, "50.00", "李四")
    assert (await bank.http.post("/ibps/v1/accounts", json=body)).status_code == 201
    replay = await bank.http.post("/ibps/v1/accounts", json={**body, "opening_balance": "50"})
    assert replay.status_code == 200
    assert replay.json()["balance"] == "50.00"
    for changed in ({"holder_name": "王五"}, {"opening_balance": "51.00"}):
        response = await bank.http.post("/ibps/v1/accounts", json={**body, **changed})
        assert_problem(response, 409, "ACCOUNT_EXISTS")
    other_bank = await Bank.create(bank.http)
    response = await bank.http.post(
        "/ibps/v1/accounts", json={**body, "participant_id": other_bank.participant_id}
    )
    assert_problem(response, 409, "ACCOUNT_EXISTS")


async def test_zero_opening_balance(bank: Bank) -> None:
    account_id = await bank.open_account("0")
    assert await bank.balances(account_id) == ("0.00", "0.00", "0.00")


async def test_unknown_participant_and_account(bank: Bank) -> None:
    body = bank.account_body(new_id(), "1.00", "张三")
    response = await bank.http.post("/ibps/v1/accounts", json={**body, "participant_id": new_id("BK")})
    assert_problem(response, 404, "PARTICIPANT_NOT_FOUND")
    assert_problem(await bank.http.get(f"/ibps/v1/accounts/{new_id()}"), 404, "ACCOUNT_NOT_FOUND")


async def test_scheme_accounts_are_not_customer_accounts(bank: Bank) -> None:
    for scheme_account in ("IBPS-LINK-CNY", "IBPS-FUNDING-CNY"):
        response = await bank.http.get(f"/ibps/v1/accounts/{scheme_account}")
        assert_problem(response, 404, "ACCOUNT_NOT_FOUND")
        response = await bank.http.post(
            "/ibps/v1/accounts", json=bank.account_body(scheme_account, "1.00", "x")
        )
        assert_problem(response, 409, "ACCOUNT_EXISTS")
