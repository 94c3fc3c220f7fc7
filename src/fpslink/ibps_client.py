"""The gateway's typed client for mock_ibps.

    IbpsError
    ├── IbpsUnavailable   no answer in time, connection refused, or a 5xx: the outcome is unknown
    └── IbpsRefused       a 4xx problem: IBPS understood and said no (carries its `code`)

Every call has an explicit time-out. The client holds one pooled connection set for the process;
all settlement calls are idempotent by payment id, so a caller may repeat any of them safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import httpx

TransferKind = Literal["CREDIT", "DEBIT"]


class IbpsError(Exception):
    pass


class IbpsUnavailable(IbpsError):
    """The call's outcome is unknown; repeat it (it is idempotent) or decide without it."""


class IbpsRefused(IbpsError):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"IBPS answered {status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PrepareOutcome:
    prepared: bool
    reason_code: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class IbpsProxy:
    proxy_value: str
    account_id: str
    participant_id: str
    holder_name: str
    currency: str


class IbpsClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout_s: float,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._root = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/ibps/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise IbpsUnavailable(f"IBPS {method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise IbpsUnavailable(f"IBPS {method} {path}: HTTP {response.status_code}")
        return response

    async def _json(self, method: str, path: str, *, json: Any = None, params: Any = None) -> dict[str, Any]:
        response = await self._call(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise _refusal(response)
        body: dict[str, Any] = response.json()
        return body

    async def healthy(self) -> bool:
        try:
            response = await self._http.get(f"{self._root}/healthz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    # directory and accounts -------------------------------------------------------------------

    async def create_participant(self, *, participant_id: str, name: str) -> None:
        await self._json("POST", "/participants", json={"participant_id": participant_id, "name": name})

    async def open_account(
        self, *, account_id: str, participant_id: str, holder_name: str, opening_balance: str
    ) -> dict[str, Any]:
        return await self._json(
            "POST",
            "/accounts",
            json={
                "account_id": account_id,
                "participant_id": participant_id,
                "holder_name": holder_name,
                "currency": "CNY",
                "opening_balance": opening_balance,
            },
        )

    async def get_account(self, account_id: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/accounts/{account_id}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        body: dict[str, Any] = response.json()
        return body

    async def register_proxy(self, *, proxy_value: str, account_id: str) -> dict[str, Any]:
        return await self._json(
            "POST", "/proxies", json={"proxy_value": proxy_value, "account_id": account_id}
        )

    async def lookup_proxy(self, proxy_value: str) -> IbpsProxy | None:
        response = await self._call("GET", f"/proxies/{proxy_value.replace('+', '%2B')}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        body = response.json()
        return IbpsProxy(
            proxy_value=body["proxy_value"],
            account_id=body["account_id"],
            participant_id=body["participant_id"],
            holder_name=body["holder_name"],
            currency=body["currency"],
        )

    # two-phase settlement ---------------------------------------------------------------------

    async def prepare(
        self, *, payment_id: str, kind: TransferKind, account_id: str, amount: Decimal
    ) -> PrepareOutcome:
        body = await self._json(
            "POST",
            "/transfers/prepare",
            json={
                "payment_id": payment_id,
                "kind": kind,
                "account_id": account_id,
                "amount": f"{amount:f}",
                "currency": "CNY",
            },
        )
        return PrepareOutcome(
            prepared=body["outcome"] == "PREPARED",
            reason_code=body.get("reason_code"),
            reason=body.get("reason"),
        )

    async def commit(self, payment_id: str) -> None:
        await self._json("POST", f"/transfers/{payment_id}/commit")

    async def abort(self, payment_id: str) -> None:
        await self._json("POST", f"/transfers/{payment_id}/abort")

    async def get_transfer(self, payment_id: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/transfers/{payment_id}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        body: dict[str, Any] = response.json()
        return body

    async def list_transfers(self, *, after: int | None, limit: int = 1000) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return await self._json("GET", "/transfers", params=params)

    async def ledger_check(self) -> dict[str, Any]:
        return await self._json("GET", "/ledger/check")


def _refusal(response: httpx.Response) -> IbpsRefused:
    try:
        body = response.json()
        code, detail = str(body.get("code", "IBPS_ERROR")), str(body.get("detail", ""))
    except ValueError:
        code, detail = "IBPS_ERROR", response.text[:200]
    return IbpsRefused(response.status_code, code, detail)
