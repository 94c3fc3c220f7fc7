"""mock_ibps answers its one caller only: every route but /healthz needs the token.

Its token is the gateway's identity, and with it a caller can credit any mainland account or open
one with any balance (docs/architecture.md#mock_ibps). So no route may answer without it, a
published value never opens one, and an app that has no token lets nobody in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from ibps_wire.credentials import PUBLISHED, new_secret
from mock_ibps.app import create_app
from mock_ibps.config import Settings

TOKEN = new_secret("ibps_")
NOT_A_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/never"
"""The refusals happen before any statement; the lifespan only builds a pool that never connects."""
PATH_VALUES = {
    "payment_id": str(uuid.uuid4()),
    "account_id": "CNDEMO0001",
    "proxy_value": "+8613800138000",
    "business_date": "2026-06-22",
}
OPEN = {("/healthz", "GET")}
"""The one route a load balancer or the sandbox may call without the token."""


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    application = create_app(Settings(database_url=NOT_A_DATABASE, token=TOKEN))
    async with application.router.lifespan_context(application):
        yield application


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """(path with sample values, method) of every route the app serves, docs pages included."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "x"), route.path)
        found += [(path, method) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def test_every_route_is_inspected(app: FastAPI) -> None:
    """The routes that move or create money are among those checked below."""
    served = {
        (re.sub(r"\{\w+\}", "{}", route.path), method)
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
    }
    for needed in [
        ("/ibps/v1/participants", "POST"),
        ("/ibps/v1/accounts", "POST"),
        ("/ibps/v1/transfers/prepare", "POST"),
        ("/ibps/v1/transfers/batch", "POST"),
        ("/ibps/v1/transfers/{}/commit", "POST"),
        ("/ibps/v1/sandbox/faults", "POST"),
        ("/ibps/v1/sandbox/faults", "DELETE"),
        ("/ibps/v1/statements/{}/camt053", "GET"),
    ]:
        assert needed in served, needed


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ibps-sandbox-token", "Bearer ", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN],
    ids=["none", "published-default", "empty", "one-character-short", "not-bearer", "no-scheme"],
)
async def test_every_route_but_health_needs_the_token(app: FastAPI, authorization: str | None) -> None:
    """Before: /docs, /redoc and /openapi.json answered anyone, and `ibps-sandbox-token` was every
    sandbox's token. After: 401 everywhere but /healthz."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    answered: dict[str, int] = {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock-ibps.test") as http:
        for path, method in endpoints(app):
            answer = await http.request(method, path, headers=headers)
            answered[f"{method} {path}"] = answer.status_code
            if (path, method) in OPEN:
                assert answer.status_code == 200
            elif answer.status_code == 401:
                assert answer.headers["content-type"].startswith("application/problem+json")
    opened = {call: code for call, code in answered.items() if code != 401 and call != "GET /healthz"}
    assert not opened, f"answered without the token: {opened}"


async def test_the_token_opens_them(app: FastAPI) -> None:
    """The same routes with the install's token get past the check (the refusals above are the
    token's doing, not a broken app)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://mock-ibps.test") as http:
        faults = await http.get("/ibps/v1/sandbox/faults", headers=headers)
        assert faults.status_code == 200, faults.text
        invalid = await http.post("/ibps/v1/accounts", json={"account_id": "x"}, headers=headers)
        assert invalid.status_code == 422, invalid.text


async def test_an_app_without_a_token_lets_nobody_in() -> None:
    """Serving refuses an empty token; an app built without one (a test, a tool) must not turn
    `Authorization: Bearer ` into a key that fits."""
    application = create_app(Settings(database_url=NOT_A_DATABASE, token=""))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock-ibps.test") as http:
            for authorization in ("Bearer ", "Bearer", *(f"Bearer {value}" for value in sorted(PUBLISHED))):
                answer = await http.get("/ibps/v1/sandbox/faults", headers={"Authorization": authorization})
                assert answer.status_code == 401, (authorization, answer.status_code)
