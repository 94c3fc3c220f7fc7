"""A browser's side of the console for the security tests: a cookie jar per client, log in, CSRF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from gw_support import Harness

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
COOKIE = "fpslink_console"


@asynccontextmanager
async def browser(
    h: Harness, api_key: str | None = None, *, client: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar connecting from `client`, logged in when given a key."""
    transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=True, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as http:
        if api_key is not None:
            await login(http, api_key)
        yield http


async def login(http: httpx.AsyncClient, api_key: str, **headers: str) -> httpx.Response:
    response = await http.post(
        "/console/login", data={"api_key": api_key, "next": "/console/payments"}, headers=headers
    )
    assert response.status_code == 303, response.text
    return response


async def csrf_of(http: httpx.AsyncClient, path: str = "/console/payments") -> str:
    page = await http.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, page.text[:2000]
    return found.group(1)
