"""Helpers shared by the mock_ibps tests: a gateway-like caller, ids, problem+json assertions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

TOKEN = "test-token"


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://mock-ibps.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60.0,
    )


def new_id(prefix: str = "CN") -> str:
    return prefix + uuid.uuid4().hex[:16].upper()


def new_payment_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Bank:
    """Calls the API as the gateway would, asserting the status codes of the happy path."""

    http: httpx.AsyncClient
    participant_id: str

    @classmethod
    async def create(cls, http: httpx.AsyncClient) -> Bank:
        participant_id = new_id("BK")
        response = await http.post(
            "/ibps/v1/participants", json={"participant_id": participant_id, "name": "Test Bank"}
        )
        assert response.status_code == 201, response.text
        return cls(http, participant_id)

    async def open_account(self, opening_balance: str = "1000.00", holder: str = "张小明") -> str:
        account_id = new_id()
        response = await self.http.post(
            "/ibps/v1/accounts", json=self.account_body(account_id, opening_balance, holder)
        )
        assert response.status_code == 201, response.text
        return account_id

    def account_body(self, account_id: str, opening_balance: str, holder: str) -> dict[str, Any]:
        return {
            "account_id": account_id,
            "participant_id": self.participant_id,
            "holder_name": holder,
            "currency": "CNY",
            "opening_balance": opening_balance,
        }

    async def balances(self, account_id: str) -> tuple[str, str, str]:
        response = await self.http.get(f"/ibps/v1/accounts/{account_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        return body["balance"], body["held"], body["available_balance"]

    async def prepare(
        self,
        payment_id: str,
        kind: str,
        account_id: str,
        amount: str,
        references: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A prepare; `references`, what a payment sent as ISO 20022 came with, when given."""
        body: dict[str, Any] = {
            "payment_id": payment_id,
            "kind": kind,
            "account_id": account_id,
            "amount": amount,
            "currency": "CNY",
        }
        if references is not None:
            body["references"] = references
        response = await self.http.post("/ibps/v1/transfers/prepare", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def commit(self, payment_id: str) -> httpx.Response:
        return await self.http.post(f"/ibps/v1/transfers/{payment_id}/commit")

    async def abort(self, payment_id: str) -> httpx.Response:
        return await self.http.post(f"/ibps/v1/transfers/{payment_id}/abort")

    async def batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST the items as one batch; the results, checked to answer each item in order."""
        response = await self.http.post("/ibps/v1/transfers/batch", json={"items": items})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        assert [(r["op"], r["payment_id"]) for r in results] == [
            (item["op"], item["payment_id"].lower()) for item in items
        ]
        return results

    async def single(self, item: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The same item as a single call: (status, body), to compare with a batch result."""
        if item["op"] == "prepare":
            body = {key: value for key, value in item.items() if key != "op"}
            response = await self.http.post("/ibps/v1/transfers/prepare", json=body)
        else:
            response = await self.http.post(f"/ibps/v1/transfers/{item['payment_id']}/{item['op']}")
        answer: dict[str, Any] = response.json()
        return response.status_code, answer


def prepare_item(payment_id: str, kind: str, account_id: str, amount: str) -> dict[str, Any]:
    return {
        "op": "prepare",
        "payment_id": payment_id,
        "kind": kind,
        "account_id": account_id,
        "amount": amount,
        "currency": "CNY",
    }


def commit_item(payment_id: str) -> dict[str, Any]:
    return {"op": "commit", "payment_id": payment_id}


def abort_item(payment_id: str) -> dict[str, Any]:
    return {"op": "abort", "payment_id": payment_id}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert {"type", "title", "detail"} <= body.keys()
    return body
